//! Every model under `models/`, compiled by flashc at build time.
//!
//! Each model is a unit struct implementing [`runtime::Model`] (e.g. [`TrackingResolution`]),
//! with a static instance (e.g. [`TRACKING_RESOLUTION`]); [`MODELS`] lists them all, sorted by
//! name, and [`by_name`] finds one.

include!(concat!(env!("OUT_DIR"), "/flashc_models.rs"));
