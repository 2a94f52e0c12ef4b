use runtime::isa::{self, Tier};

#[test]
fn parse_names() {
    assert_eq!(Tier::parse("avx512"), Some(Tier::Avx512));
    assert_eq!(Tier::parse(" AVX2 "), Some(Tier::Avx2Fma));
    assert_eq!(Tier::parse("avx2+fma"), Some(Tier::Avx2Fma));
    assert_eq!(Tier::parse("neon"), Some(Tier::Neon));
    assert_eq!(Tier::parse("Portable"), Some(Tier::Portable));
    assert_eq!(Tier::parse("sse4"), None);
    assert_eq!(Tier::parse(""), None);
    for t in Tier::ALL {
        assert_eq!(Tier::parse(t.name()), Some(t));
        assert_eq!(t.to_string(), t.name());
    }
}

#[test]
fn resolve_policy() {
    let best = isa::detect();
    assert_eq!(isa::resolve(None), (best, None));
    assert_eq!(isa::resolve(Some("")), (best, None));
    assert_eq!(isa::resolve(Some("portable")), (Tier::Portable, None));
    let (t, w) = isa::resolve(Some("bogus"));
    assert_eq!(t, best);
    assert!(w.unwrap().contains("not a tier name"));
    for tier in Tier::ALL {
        let (t, w) = isa::resolve(Some(tier.name()));
        if tier.is_supported() {
            assert_eq!((t, w), (tier, None));
        } else {
            assert_eq!(t, best);
            assert!(w.unwrap().contains("cannot run"));
        }
    }
}

#[test]
fn supported_is_ordered_and_ends_portable() {
    let s = isa::supported();
    assert_eq!(*s.last().unwrap(), Tier::Portable);
    assert_eq!(s[0], isa::detect());
    assert!(s.contains(&isa::active()));
    #[cfg(target_arch = "x86_64")]
    assert!(!s.contains(&Tier::Neon));
}
