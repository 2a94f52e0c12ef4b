//! Every model under `models/`, compiled by flashc at build time.
//!
//! Each model is a unit struct implementing [`runtime::Model`] (e.g. [`TrackingResolution`]),
//! with a static instance (e.g. [`TRACKING_RESOLUTION`]); [`MODELS`] lists them all, sorted by
//! name, and [`by_name`] finds one. [`digest`] identifies a model by its content.

include!(concat!(env!("OUT_DIR"), "/flashc_models.rs"));
include!(concat!(env!("OUT_DIR"), "/model_digests.rs"));

/// The content digest of the model named `name`: `fnv1a64:` and 16 hex digits, the 64-bit FNV-1a
/// hash of its spec file's bytes followed by its weights file's bytes, computed at build time.
/// Two builds embed the same model exactly when the digests agree (it is a check against
/// mix-ups, not a cryptographic hash). Written into every output of `flashc simulate` as
/// `model.NAME`.
pub fn digest(name: &str) -> Option<&'static str> {
    DIGESTS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| DIGESTS[i].1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_model_has_a_digest() {
        assert_eq!(super::DIGESTS.len(), super::MODELS.len());
        for m in super::MODELS {
            let d = super::digest(m.info().name).unwrap();
            assert!(d.starts_with("fnv1a64:") && d.len() == 24, "{d}");
        }
        assert_eq!(super::digest("no_such_model"), None);
        // Different models, different digests.
        let mut all: Vec<&str> = super::DIGESTS.iter().map(|(_, d)| *d).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), super::DIGESTS.len());
    }
}
