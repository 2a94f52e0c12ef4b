//! Event inputs: HepMC3 and HepMC2 readers (hand-written files, files written by the HepMC3
//! library, gzip, malformed input, streaming), PDG charges and the particle gun.

use runtime::event::{
    self, pdg, Error, EventReader, Format, FourVector, GenEvent, GunConfig, Momentum, Multiplicity,
    ParticleGun, Species,
};
use std::io::{Read, Write};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_all(path: &PathBuf) -> Vec<GenEvent> {
    event::open(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

fn assert_pos(got: FourVector, want: [f64; 4], what: &str) {
    let g = [got.x, got.y, got.z, got.t];
    for k in 0..4 {
        assert!(
            close(g[k], want[k]),
            "{what}: position {g:?}, expected {want:?}"
        );
    }
}

/// The two hand-written files describe the same two events.
fn check_two_events(events: &[GenEvent], hepmc2: bool) {
    assert_eq!(events.len(), 2);
    let e1 = &events[0];
    assert_eq!(e1.number, 1);
    assert_eq!(e1.weights, vec![1.0, 2.5]);
    let n1 = if hepmc2 { 7 } else { 9 };
    assert_eq!(e1.particles.len(), n1);
    let by_pdg = |ev: &GenEvent, id: i32| {
        ev.particles
            .iter()
            .find(|p| p.pdg_id == id)
            .unwrap()
            .clone()
    };
    let beam = &e1.particles[0];
    assert_eq!(
        (beam.pdg_id, beam.status, beam.pz, beam.mass),
        (2212, 4, 6500.0, 0.938272)
    );
    assert_pos(beam.vertex, [0.0; 4], "beam");
    let pi = by_pdg(e1, 211);
    assert_eq!(
        (pi.px, pi.py, pi.pz, pi.e, pi.mass, pi.status, pi.charge),
        (1.2, 0.5, 20.0, 20.0482, 0.13957, 1, 1.0)
    );
    assert_pos(pi.vertex, [0.01, -0.02, 1.5, 0.3], "pi+");
    let k = by_pdg(e1, -321);
    assert_eq!((k.status, k.charge), (2, -1.0));
    let mu = by_pdg(e1, 13);
    assert_eq!(mu.charge, -1.0);
    assert_pos(
        mu.vertex,
        [0.5, 0.2, 40.0, 41.0],
        "mu- from the displaced vertex",
    );
    assert_pos(by_pdg(e1, -14).vertex, [0.5, 0.2, 40.0, 41.0], "anti-nu_mu");
    if hepmc2 {
        assert_pos(by_pdg(e1, 22).vertex, [0.01, -0.02, 1.5, 0.3], "photon");
        assert_eq!(e1.final_state().count(), 4);
    } else {
        // Photons whose mother is a particle: the implicit end vertex of the pi0 inherits the
        // position of the pi0's production vertex.
        let photons: Vec<_> = e1.particles.iter().filter(|p| p.pdg_id == 22).collect();
        assert_eq!(photons.len(), 2);
        for g in photons {
            assert_pos(g.vertex, [0.01, -0.02, 1.5, 0.3], "photon from pi0");
            assert_eq!(g.charge, 0.0);
        }
        assert_eq!(e1.final_state().count(), 5);
    }
    // Event 2 is in MeV and cm.
    let e2 = &events[1];
    assert_eq!(e2.number, 2);
    assert_eq!(e2.particles.len(), 4);
    let pbar = by_pdg(e2, -2212);
    assert!(
        close(pbar.px, 1.0)
            && close(pbar.py, -2.0)
            && close(pbar.pz, 30.0)
            && close(pbar.e, 30.1005)
    );
    assert!(close(pbar.mass, 0.938272));
    assert_eq!(pbar.charge, -1.0);
    assert_pos(pbar.vertex, [1.0, 2.0, -30.0, 0.0], "event 2 (cm → mm)");
    let positron = by_pdg(e2, -11);
    assert_eq!(positron.charge, 1.0);
    assert!(close(positron.mass, 0.000511));
    assert_eq!(e2.final_state().count(), 2);
    if hepmc2 {
        assert_eq!(e2.weights, vec![0.5]);
        assert_pos(e2.particles[0].vertex, [0.0; 4], "orphan beam");
    } else {
        assert_eq!(e2.weights, vec![0.5, 1.0]);
        // Beams without a production vertex get the event position of the E record.
        assert_pos(
            e2.particles[0].vertex,
            [1.0, 2.0, -30.0, 0.0],
            "beam at the event position",
        );
    }
}

#[test]
fn hand_written_hepmc3() {
    let r = event::open(data("two_events.hepmc3")).unwrap();
    assert_eq!(r.format(), Format::HepMC3);
    let events: Vec<_> = r.map(Result::unwrap).collect();
    check_two_events(&events, false);
    // The format-specific reader gives the same.
    let direct: Vec<_> = event::hepmc3::Reader::open(data("two_events.hepmc3"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(direct, events);
}

#[test]
fn hand_written_hepmc2() {
    let r = event::open(data("two_events.hepmc2")).unwrap();
    assert_eq!(r.format(), Format::HepMC2);
    let events: Vec<_> = r.map(Result::unwrap).collect();
    check_two_events(&events, true);
    let direct: Vec<_> = event::hepmc2::Reader::open(data("two_events.hepmc2"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(direct, events);
}

#[test]
fn format_specific_readers_refuse_the_other_format() {
    let e = event::hepmc3::Reader::open(data("two_events.hepmc2"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("two_events.hepmc2") && e.contains("HepMC2"),
        "{e}"
    );
    let e = event::hepmc2::Reader::open(data("two_events.hepmc3"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("two_events.hepmc3") && e.contains("HepMC3"),
        "{e}"
    );
}

/// Minimal JSON reader for the expected-values files (numbers, strings, arrays, objects).
mod json {
    #[derive(Debug, Clone)]
    pub enum V {
        Num(f64),
        Str(String),
        Arr(Vec<V>),
        Obj(Vec<(String, V)>),
    }
    impl V {
        pub fn get(&self, k: &str) -> &V {
            match self {
                V::Obj(m) => &m.iter().find(|(n, _)| n == k).unwrap().1,
                _ => panic!("not an object"),
            }
        }
        pub fn arr(&self) -> &[V] {
            match self {
                V::Arr(a) => a,
                _ => panic!("not an array"),
            }
        }
        pub fn num(&self) -> f64 {
            match self {
                V::Num(x) => *x,
                _ => panic!("not a number"),
            }
        }
    }
    pub fn parse(s: &str) -> V {
        let b = s.as_bytes();
        let mut i = 0;
        value(b, &mut i)
    }
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(b: &[u8], i: &mut usize) -> V {
        ws(b, i);
        match b[*i] {
            b'{' => {
                *i += 1;
                let mut m = Vec::new();
                loop {
                    ws(b, i);
                    if b[*i] == b'}' {
                        *i += 1;
                        return V::Obj(m);
                    }
                    let V::Str(k) = value(b, i) else { panic!() };
                    ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    m.push((k, value(b, i)));
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
            }
            b'[' => {
                *i += 1;
                let mut a = Vec::new();
                loop {
                    ws(b, i);
                    if b[*i] == b']' {
                        *i += 1;
                        return V::Arr(a);
                    }
                    a.push(value(b, i));
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
            }
            b'"' => {
                let start = *i + 1;
                *i = start;
                while b[*i] != b'"' {
                    *i += 1;
                }
                *i += 1;
                V::Str(String::from_utf8(b[start..*i - 1].to_vec()).unwrap())
            }
            _ => {
                let start = *i;
                while *i < b.len()
                    && (b[*i] == b'-'
                        || b[*i] == b'+'
                        || b[*i] == b'.'
                        || b[*i] == b'e'
                        || b[*i] == b'E'
                        || b[*i].is_ascii_digit())
                {
                    *i += 1;
                }
                V::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
            }
        }
    }
}

/// Files written by the HepMC3 library (pyhepmc), and the values that library reads back.
fn check_against_reference(file: &str) {
    let events = read_all(&data(file));
    let expected =
        json::parse(&std::fs::read_to_string(data(&format!("{file}.expected.json"))).unwrap());
    let expected = expected.arr();
    assert_eq!(events.len(), expected.len());
    for (ev, ex) in events.iter().zip(expected) {
        assert_eq!(ev.number as f64, ex.get("number").num());
        let w: Vec<f64> = ex.get("weights").arr().iter().map(|v| v.num()).collect();
        assert_eq!(ev.weights, w);
        let parts = ex.get("particles").arr();
        assert_eq!(ev.particles.len(), parts.len(), "event {}", ev.number);
        for (p, x) in ev.particles.iter().zip(parts) {
            let what = format!("{file} event {} particle {}", ev.number, p.id);
            assert_eq!(p.pdg_id as f64, x.get("pdg").num(), "{what}");
            assert_eq!(p.status as f64, x.get("status").num(), "{what}");
            let m: Vec<f64> = x.get("p").arr().iter().map(|v| v.num()).collect();
            for (k, (a, b)) in [p.px, p.py, p.pz, p.e, p.mass].iter().zip(&m).enumerate() {
                assert!(close(*a, *b), "{what}: momentum component {k}: {a} vs {b}");
            }
            let pos: Vec<f64> = x.get("x").arr().iter().map(|v| v.num()).collect();
            assert_pos(p.vertex, [pos[0], pos[1], pos[2], pos[3]], &what);
            assert_eq!(p.charge, pdg::charge(p.pdg_id));
        }
    }
}

#[test]
fn hepmc3_written_by_the_reference_library() {
    check_against_reference("pyhepmc_events.hepmc3");
}

#[test]
fn hepmc2_written_by_the_reference_library() {
    check_against_reference("pyhepmc_events.hepmc2");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_input_is_detected_by_content() {
    let dir = tempdir();
    for name in ["two_events.hepmc3", "two_events.hepmc2"] {
        let plain = std::fs::read(data(name)).unwrap();
        // A name without .gz: detection is by the magic bytes.
        let path = dir.join(format!("{name}.compressed"));
        std::fs::write(&path, gzip(&plain)).unwrap();
        assert_eq!(read_all(&path), read_all(&data(name)), "{name}");
        // Multi-member gzip (concatenated .gz files), through an in-memory reader.
        let cut = plain.len() / 2;
        let mut two = gzip(&plain[..cut]);
        two.extend(gzip(&plain[cut..]));
        let r = EventReader::from_reader(std::io::Cursor::new(two), "memory.gz").unwrap();
        let events: Vec<_> = r.map(Result::unwrap).collect();
        assert_eq!(events, read_all(&data(name)), "{name} multi-member");
    }
    // A corrupt gzip stream is an error naming the file, not a panic.
    let mut bad = gzip(&std::fs::read(data("two_events.hepmc3")).unwrap());
    let n = bad.len();
    bad.truncate(n / 2);
    let path = dir.join("truncated.gz");
    std::fs::write(&path, bad).unwrap();
    let err = match event::open(&path) {
        Err(e) => e,
        Ok(r) => r
            .filter_map(Result::err)
            .next()
            .expect("a truncated gzip file must give an error"),
    };
    assert!(err.to_string().contains("truncated.gz"), "{err}");
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "flashc-event-io-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Reads `text` as a file called `name` and returns the first error.
fn first_error(text: &str, name: &str) -> Error {
    match EventReader::from_reader(std::io::Cursor::new(text.as_bytes().to_vec()), name) {
        Err(e) => e,
        Ok(r) => {
            let mut r = r;
            let mut errors = Vec::new();
            for item in r.by_ref() {
                if let Err(e) = item {
                    errors.push(e);
                }
            }
            assert!(r.next().is_none(), "the reader must stop after an error");
            assert_eq!(
                errors.len(),
                1,
                "{name}: exactly one error expected, got {errors:?}"
            );
            errors.pop().unwrap()
        }
    }
}

fn expect_error(text: &str, name: &str, line: u64, needles: &[&str]) {
    let e = first_error(text, name);
    let msg = e.to_string();
    match &e {
        Error::Parse { file, line: l, .. } => {
            assert_eq!(file, name);
            assert_eq!(*l, line, "{msg}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let prefix = if line == 0 {
        format!("{name}: ")
    } else {
        format!("{name}:{line}: ")
    };
    assert!(msg.starts_with(&prefix), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "`{msg}` should mention `{n}`");
    }
}

const H3: &str = "HepMC::Version 3.02.06\nHepMC::Asciiv3-START_EVENT_LISTING\n";
const H2: &str = "HepMC::Version 2.06.09\nHepMC::IO_GenEvent-START_EVENT_LISTING\n";
const END3: &str = "HepMC::Asciiv3-END_EVENT_LISTING\n";
const END2: &str = "HepMC::IO_GenEvent-END_EVENT_LISTING\n";

#[test]
fn malformed_hepmc3() {
    let ok_event =
        "E 7 1 2\nU GEV MM\nP 1 0 2212 0 0 1 1 0.9 4\nV -1 0 [1]\nP 2 -1 211 1 2 3 4 0.1 1\n";
    // Sanity: the pieces are valid.
    let good = format!("{H3}{ok_event}{END3}");
    let events: Vec<_> =
        EventReader::from_reader(std::io::Cursor::new(good.into_bytes()), "ok.hepmc3")
            .unwrap()
            .collect();
    assert_eq!(events.len(), 1);
    assert!(events[0].is_ok());

    // Truncated line.
    expect_error(
        &format!("{H3}E 7 1 2\nU GEV MM\nP 1 0 2212 0 0\n"),
        "a.hepmc3",
        5,
        &["P record ends early", "expected pz"],
    );
    // Bad number.
    expect_error(
        &format!("{H3}E 7 1 1\nP 1 0 2212 0 abc 1 1 0.9 1\n"),
        "b.hepmc3",
        4,
        &["expected py", "found `abc`"],
    );
    expect_error(
        &format!("{H3}E x 1 1\n"),
        "b2.hepmc3",
        3,
        &["expected the event number", "found `x`"],
    );
    expect_error(
        &format!("{H3}E 7 1 1\nP 1 0 2212 0 nan 1 1 0.9 1\n"),
        "b3.hepmc3",
        4,
        &["finite"],
    );
    // Unknown record.
    expect_error(
        &format!("{H3}{ok_event}X 1 2 3\n{END3}"),
        "c.hepmc3",
        8,
        &["unknown record `X`", "E, U, W, A, T, V or P"],
    );
    expect_error(
        &format!("{H3}Q 1\n"),
        "c2.hepmc3",
        3,
        &["unknown record `Q`"],
    );
    // Particle before any event.
    expect_error(
        &format!("{H3}P 1 0 2212 0 0 1 1 0.9 4\n{ok_event}"),
        "d.hepmc3",
        3,
        &["P record before any E record"],
    );
    // Fewer particles than declared (truncated event), reported at the E line.
    expect_error(
        &format!("{H3}E 7 1 3\nP 1 0 2212 0 0 1 1 0.9 4\nE 8 0 0\n{END3}"),
        "e.hepmc3",
        3,
        &["declares 3 particles but has 1"],
    );
    // More particles than declared.
    expect_error(
        &format!("{H3}E 7 0 1\nP 1 0 2212 0 0 1 1 0.9 4\nP 2 0 2212 0 0 1 1 0.9 4\n"),
        "f.hepmc3",
        5,
        &["declares 1 particles"],
    );
    // A file cut after a complete event: the missing END line is reported.
    expect_error(
        &format!("{H3}{ok_event}"),
        "g.hepmc3",
        7,
        &["ends without", "END_EVENT_LISTING"],
    );
    // References to missing vertices and particles.
    expect_error(
        &format!("{H3}E 7 1 1\nP 1 -5 211 1 2 3 4 0.1 1\n{END3}"),
        "h.hepmc3",
        4,
        &["vertex -5", "does not have"],
    );
    expect_error(
        &format!("{H3}E 7 1 1\nP 1 9 211 1 2 3 4 0.1 1\n{END3}"),
        "i.hepmc3",
        4,
        &["mother particle 9"],
    );
    expect_error(
        &format!("{H3}E 7 1 1\nV -1 0 [4]\nP 1 -1 211 1 2 3 4 0.1 1\n{END3}"),
        "j.hepmc3",
        4,
        &["particle 4"],
    );
    expect_error(
        &format!("{H3}E 7 1 1\nV -1 0 [1\nP 1 -1 211 1 2 3 4 0.1 1\n{END3}"),
        "k.hepmc3",
        4,
        &["closing `]`"],
    );
    expect_error(
        &format!("{H3}E 7 1 1\nV 3 0 [1]\n"),
        "l.hepmc3",
        4,
        &["negative vertex id"],
    );
    // Units.
    expect_error(
        &format!("{H3}E 7 0 0\nU KEV MM\n"),
        "m.hepmc3",
        4,
        &["GEV or MEV", "`KEV`"],
    );
    // Not HepMC at all, or another listing.
    expect_error("hello world\n", "n.txt", 1, &["not a HepMC ASCII file"]);
    expect_error(
        "HepMC::IO_Ascii-START_EVENT_LISTING\n",
        "o.txt",
        1,
        &["unsupported listing"],
    );
    expect_error("", "empty.hepmc3", 0, &["ends before any header"]);
    // Something after the END line.
    expect_error(
        &format!("{H3}{ok_event}{END3}E 9 0 0\n"),
        "p.hepmc3",
        9,
        &["after `HepMC::Asciiv3-END_EVENT_LISTING`"],
    );
    // Ancestry loop: particle 1's mother is 2 and 2's mother is 1.
    expect_error(
        &format!("{H3}E 7 0 2\nP 1 2 211 1 2 3 4 0.1 1\nP 2 1 211 1 2 3 4 0.1 1\n{END3}"),
        "q.hepmc3",
        4,
        &["loops"],
    );
}

#[test]
fn deep_decay_chains_resolve_without_recursion() {
    // 100000 generations, each the only daughter of the previous: positions are inherited from
    // the one positioned vertex at the top.
    let n = 100_000;
    let mut t = format!("{H3}E 1 {n} {n}\nP 1 0 2212 0 0 1 1 0.9 4\nV -1 0 [1] @ 1 2 3 4\nP 2 -1 211 0 0 1 1 0.1 2\n");
    for k in 3..=n {
        t.push_str(&format!("P {k} {} 211 0 0 1 1 0.1 2\n", k - 1));
    }
    t.push_str(END3);
    let mut r =
        EventReader::from_reader(std::io::Cursor::new(t.into_bytes()), "deep.hepmc3").unwrap();
    let ev = r.next().unwrap().unwrap();
    assert_eq!(ev.particles.len(), n);
    assert_pos(
        ev.particles[n - 1].vertex,
        [1.0, 2.0, 3.0, 4.0],
        "last generation",
    );
    assert!(r.next().is_none());
}

#[test]
fn malformed_hepmc2() {
    let e = "E 1 0 -1 -1 -1 0 0 1 1 2 0 0\n";
    let v = "V -1 0 0 0 0 0 1 1 0\n";
    let p1 = "P 1 2212 0 0 1 1 0.9 4 0 0 -1 0\n";
    let p2 = "P 2 211 1 2 3 4 0.1 1 0 0 0 0\n";
    let good = format!("{H2}{e}{v}{p1}{p2}{END2}");
    let events: Vec<_> =
        EventReader::from_reader(std::io::Cursor::new(good.into_bytes()), "ok.hepmc2")
            .unwrap()
            .map(Result::unwrap)
            .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].particles.len(), 2);

    // Truncated line.
    expect_error(
        &format!("{H2}{e}{v}P 1 2212 0 0\n"),
        "a.hepmc2",
        5,
        &["P record ends early", "expected pz"],
    );
    expect_error(
        &format!("{H2}E 1 0 -1 -1\n"),
        "a2.hepmc2",
        3,
        &["E record ends early", "expected alpha_QED"],
    );
    // Bad number.
    expect_error(
        &format!("{H2}{e}{v}P 1 2212 0 0 1 1 0.9 x 0 0 -1 0\n"),
        "b.hepmc2",
        5,
        &["expected the status", "found `x`"],
    );
    // Unknown record.
    expect_error(
        &format!("{H2}{e}{v}{p1}{p2}Z 3\n{END2}"),
        "c.hepmc2",
        7,
        &["unknown record `Z`", "E, N, U, C, H, F, V or P"],
    );
    // Particle before any event, and before any vertex.
    expect_error(
        &format!("{H2}{p1}"),
        "d.hepmc2",
        3,
        &["P record before any E record"],
    );
    expect_error(
        &format!("{H2}{e}{p1}"),
        "d2.hepmc2",
        4,
        &["P record before any V record"],
    );
    // A vertex announces more particles than follow.
    expect_error(
        &format!("{H2}{e}{v}{p1}{END2}"),
        "e.hepmc2",
        6,
        &["line 4 announces 1 more P records"],
    );
    expect_error(
        &format!("{H2}{e}{v}{p1}"),
        "e2.hepmc2",
        4,
        &["announces 1 more P records", "truncated"],
    );
    // And fewer.
    expect_error(
        &format!("{H2}{e}{v}{p1}{p2}{p2}{END2}"),
        "f.hepmc2",
        7,
        &["announces fewer particles"],
    );
    // Vertex count.
    expect_error(
        &format!("{H2}E 1 0 -1 -1 -1 0 0 2 1 2 0 0\n{v}{p1}{p2}{END2}"),
        "g.hepmc2",
        3,
        &["declares 2 vertices but has 1"],
    );
    // Missing END.
    expect_error(
        &format!("{H2}{e}{v}{p1}{p2}"),
        "h.hepmc2",
        6,
        &["ends without", "IO_GenEvent-END_EVENT_LISTING"],
    );
    // A huge announced count is refused without allocating.
    expect_error(
        &format!("{H2}E 1 0 -1 -1 -1 0 0 1 1 2 999999999999 0\n"),
        "i.hepmc2",
        3,
        &["random-state integers", "from 0 to"],
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let e = event::open("/nonexistent/dir/events.hepmc3").err().unwrap();
    assert!(matches!(e, Error::Io { .. }));
    assert!(
        e.to_string().contains("/nonexistent/dir/events.hepmc3"),
        "{e}"
    );
}

/// An endless HepMC3 stream: the reader must yield events without reading to the end.
struct Endless {
    buf: Vec<u8>,
    pos: usize,
    next_event: u64,
    produced: u64,
}

impl Read for Endless {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.next_event == 0 {
                self.buf.extend_from_slice(H3.as_bytes());
            }
            let n = self.next_event;
            self.buf.extend_from_slice(
                format!("E {n} 1 3\nU GEV MM\nP 1 0 2212 0 0 1 1 0.9 4\nV -1 0 [1] @ 0 0 {n} 0\nP 2 -1 211 1 2 3 4 0.1 1\nP 3 -1 -211 1 2 3 4 0.1 1\n").as_bytes(),
            );
            self.next_event += 1;
        }
        let k = out.len().min(self.buf.len() - self.pos);
        out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
        self.pos += k;
        self.produced += k as u64;
        Ok(k)
    }
}

#[test]
fn readers_stream() {
    let src = Endless {
        buf: Vec::new(),
        pos: 0,
        next_event: 0,
        produced: 0,
    };
    let mut r = EventReader::from_reader(src, "endless").unwrap();
    for k in 0..20_000u64 {
        let ev = r.next().unwrap().unwrap();
        assert_eq!(ev.number, k as i64);
        assert_eq!(ev.particles[2].vertex.z, k as f64);
    }
}

#[test]
fn pdg_charges() {
    let cases = [
        (11, -1.0),
        (-11, 1.0),
        (13, -1.0),
        (-13, 1.0),
        (15, -1.0),
        (12, 0.0),
        (-14, 0.0),
        (22, 0.0),
        (21, 0.0),
        (23, 0.0),
        (24, 1.0),
        (-24, -1.0),
        (25, 0.0),
        (211, 1.0),
        (-211, -1.0),
        (111, 0.0),
        (130, 0.0),
        (310, 0.0),
        (311, 0.0),
        (321, 1.0),
        (-321, -1.0),
        (411, 1.0),
        (421, 0.0),
        (431, 1.0),
        (511, 0.0),
        (521, 1.0),
        (-521, -1.0),
        (531, 0.0),
        (541, 1.0),
        (443, 0.0),
        (213, 1.0),
        (313, 0.0),
        (323, 1.0),
        (2212, 1.0),
        (-2212, -1.0),
        (2112, 0.0),
        (3122, 0.0),
        (3222, 1.0),
        (3112, -1.0),
        (3312, -1.0),
        (3334, -1.0),
        (4122, 1.0),
        (4222, 2.0),
        (5122, 0.0),
        (5132, -1.0),
        (2224, 2.0),
        (1114, -1.0),
        (9000211, 1.0),
        (100211, 1.0),
        (10321, 1.0),
        (20213, 1.0),
        (1000020040, 2.0),
        (1000822080, 82.0),
        (-1000010020, -1.0),
    ];
    for (id, q) in cases {
        assert_eq!(pdg::charge(id), q, "PDG {id}");
    }
    assert_eq!(pdg::three_charge(1), Some(-1));
    assert_eq!(pdg::three_charge(2), Some(2));
    assert_eq!(pdg::three_charge(-2), Some(-2));
    assert_eq!(pdg::three_charge(2101), Some(1)); // ud diquark
                                                  // Unknown codes: None, and charge 0.
    for id in [0, 81, 90, 99, 1000022, 4_000_011, 12345678, i32::MIN] {
        assert_eq!(pdg::three_charge(id), None, "PDG {id}");
        assert_eq!(pdg::charge(id), 0.0);
    }
    assert_eq!(pdg::name(-211).as_deref(), Some("pi-"));
    assert_eq!(pdg::name(-2212).as_deref(), Some("pbar"));
    assert_eq!(pdg::name(22).as_deref(), Some("gamma"));
    assert_eq!(pdg::name(-22), None);
    assert_eq!(pdg::from_name("K-"), Some(-321));
    assert_eq!(pdg::from_name("e+"), Some(-11));
    assert_eq!(pdg::from_name("-13"), Some(-13));
    assert_eq!(pdg::from_name("nonsense"), None);
    assert!((pdg::mass(-2212).unwrap() - 0.938272).abs() < 1e-6);
    assert_eq!(pdg::mass(1000022), None);
}

#[test]
fn gun_is_a_pure_function_of_seed_and_event() {
    let gun = ParticleGun::new(GunConfig {
        seed: 42,
        ..GunConfig::default()
    })
    .unwrap();
    let again = ParticleGun::new(GunConfig {
        seed: 42,
        ..GunConfig::default()
    })
    .unwrap();
    let all: Vec<_> = gun.events(0, 40).collect();
    // Split into shards, in any order.
    let mut shards: Vec<GenEvent> = Vec::new();
    for (first, n) in [(30, 10), (0, 13), (13, 17)] {
        shards.extend(again.events(first, n));
    }
    shards.sort_by_key(|e| e.number);
    assert_eq!(all, shards);
    for k in [0u64, 7, 39] {
        assert_eq!(gun.event(k), all[k as usize]);
    }
    // Threads.
    let from_threads: Vec<GenEvent> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let g = &gun;
                s.spawn(move || g.events(t * 10, 10).collect::<Vec<_>>())
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(all, from_threads);
    // Another seed, another event.
    let other = ParticleGun::new(GunConfig {
        seed: 43,
        ..GunConfig::default()
    })
    .unwrap();
    assert_ne!(other.event(0), gun.event(0));
    assert_ne!(gun.event(1), gun.event(0));
}

#[test]
fn gun_distributions() {
    let cfg = GunConfig {
        seed: 7,
        species: vec![
            Species::new(211, 3.0),
            Species::new(-321, 1.0),
            Species::new(22, 0.0),
        ],
        momentum: Momentum::P {
            min: 5.0,
            max: 50.0,
        },
        eta: (2.0, 4.5),
        multiplicity: Multiplicity::Poisson(12.5),
        origin: FourVector::new(0.1, -0.2, 3.0, 0.0),
        origin_sigma: FourVector::new(0.05, 0.05, 40.0, 0.0),
    };
    let gun = ParticleGun::new(cfg).unwrap();
    let n_ev = 4000;
    let mut n_tot = 0usize;
    let mut n_pi = 0usize;
    let mut zs = Vec::new();
    let mut etas = Vec::new();
    for ev in gun.events(1000, n_ev) {
        n_tot += ev.particles.len();
        if let Some(p) = ev.particles.first() {
            zs.push(p.vertex.z);
        }
        for p in &ev.particles {
            assert!(
                p.pdg_id == 211 || p.pdg_id == -321,
                "weight-0 species drawn"
            );
            if p.pdg_id == 211 {
                n_pi += 1;
                assert_eq!(p.charge, 1.0);
            } else {
                assert_eq!(p.charge, -1.0);
            }
            let pm = p.p();
            assert!((5.0..=50.0).contains(&pm), "p {pm}");
            assert!((2.0..=4.5).contains(&p.eta()), "eta {}", p.eta());
            assert!(((p.e * p.e - pm * pm).sqrt() - p.mass).abs() < 1e-6);
            assert_eq!(p.status, 1);
            assert_eq!(p.vertex, ev.particles[0].vertex);
            assert_eq!(p.vertex.t, 0.0);
            etas.push(p.eta());
        }
    }
    let mean = n_tot as f64 / n_ev as f64;
    assert!(
        (mean - 12.5).abs() < 5.0 * (12.5f64 / n_ev as f64).sqrt(),
        "mean multiplicity {mean}"
    );
    let f_pi = n_pi as f64 / n_tot as f64;
    assert!(
        (f_pi - 0.75).abs() < 5.0 * (0.75f64 * 0.25 / n_tot as f64).sqrt(),
        "pion fraction {f_pi}"
    );
    let zm = zs.iter().sum::<f64>() / zs.len() as f64;
    let zsd = (zs.iter().map(|z| (z - zm).powi(2)).sum::<f64>() / zs.len() as f64).sqrt();
    assert!(
        (zm - 3.0).abs() < 5.0 * 40.0 / (zs.len() as f64).sqrt(),
        "z mean {zm}"
    );
    assert!((zsd - 40.0).abs() < 3.0, "z sigma {zsd}");
    let em = etas.iter().sum::<f64>() / etas.len() as f64;
    assert!((em - 3.25).abs() < 0.02, "eta mean {em}");

    // pT mode and a fixed multiplicity.
    let gun = ParticleGun::new(GunConfig {
        momentum: Momentum::Pt { min: 1.0, max: 2.0 },
        multiplicity: Multiplicity::Fixed(9),
        species: vec![Species {
            pdg_id: 1000022,
            weight: 1.0,
            mass: Some(100.0),
        }],
        ..GunConfig::default()
    })
    .unwrap();
    for ev in gun.events(0, 50) {
        assert_eq!(ev.particles.len(), 9);
        for p in &ev.particles {
            assert!((1.0..=2.0).contains(&p.pt()));
            assert_eq!(p.mass, 100.0);
            assert_eq!(p.charge, 0.0);
        }
    }
}

#[test]
fn gun_config_errors() {
    let bad = |cfg: GunConfig, needle: &str| {
        let e = ParticleGun::new(cfg).expect_err("must be refused");
        assert!(matches!(e, Error::Config { .. }));
        let m = e.to_string();
        assert!(
            m.contains(needle) && m.contains("hint"),
            "`{m}` should mention `{needle}`"
        );
    };
    let d = GunConfig::default;
    bad(
        GunConfig {
            species: vec![],
            ..d()
        },
        "no species",
    );
    bad(
        GunConfig {
            species: vec![Species::new(211, 0.0)],
            ..d()
        },
        "sum to 0",
    );
    bad(
        GunConfig {
            species: vec![Species::new(211, -1.0)],
            ..d()
        },
        "weight -1",
    );
    bad(
        GunConfig {
            species: vec![Species::new(1000022, 1.0)],
            ..d()
        },
        "no mass known for PDG id 1000022",
    );
    bad(
        GunConfig {
            momentum: Momentum::P { min: 5.0, max: 1.0 },
            ..d()
        },
        "p range 5..1",
    );
    bad(
        GunConfig {
            momentum: Momentum::Pt {
                min: -1.0,
                max: 1.0,
            },
            ..d()
        },
        "pT range",
    );
    bad(
        GunConfig {
            eta: (f64::NAN, 1.0),
            ..d()
        },
        "eta range",
    );
    bad(
        GunConfig {
            multiplicity: Multiplicity::Poisson(-1.0),
            ..d()
        },
        "Poisson mean -1",
    );
    bad(
        GunConfig {
            multiplicity: Multiplicity::Fixed(1_000_000),
            ..d()
        },
        "multiplicity 1000000",
    );
    bad(
        GunConfig {
            origin_sigma: FourVector::new(-1.0, 0.0, 0.0, 0.0),
            ..d()
        },
        "widths",
    );
    // Zero multiplicity is fine.
    let g = ParticleGun::new(GunConfig {
        multiplicity: Multiplicity::Poisson(0.0),
        ..d()
    })
    .unwrap();
    assert!(g.event(3).particles.is_empty());
}
