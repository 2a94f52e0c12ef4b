//! Test tables shared by the integration tests.
#![allow(dead_code)]

use ntuple::{Chunk, ColumnData, ColumnType, Metadata, Schema};

/// One column of each type.
pub fn schema() -> Schema {
    Schema::new([
        ("px", ColumnType::F32),
        ("weight", ColumnType::F64),
        ("pid", ColumnType::I32),
        ("event", ColumnType::I64),
        ("track_type", ColumnType::U8),
        ("is_muon", ColumnType::Bool),
    ])
    .unwrap()
}

/// Special floats placed at fixed rows: NaN, infinities, signed zero, subnormal, extremes.
const F32_SPECIAL: [f32; 8] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    -0.0,
    f32::MIN_POSITIVE / 4.0,
    f32::MAX,
    f32::MIN,
    f32::EPSILON,
];
const F64_SPECIAL: [f64; 8] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    f64::MIN_POSITIVE / 4.0,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
];

/// Rows `start..start + n` of the test table: every value a function of the row number.
pub fn chunk(schema: &Schema, start: u64, n: usize) -> Chunk {
    let rows = start..start + n as u64;
    let px = rows
        .clone()
        .map(|i| {
            if i % 97 < 8 {
                F32_SPECIAL[(i % 97) as usize]
            } else {
                (i as f32) * 0.37 - 1000.0
            }
        })
        .collect::<Vec<_>>();
    let weight = rows
        .clone()
        .map(|i| {
            if i % 89 < 8 {
                F64_SPECIAL[(i % 89) as usize]
            } else {
                (i as f64).sqrt() * 1e-3 - 7.5
            }
        })
        .collect::<Vec<_>>();
    let pid = rows
        .clone()
        .map(|i| [211, -211, 321, -321, 2212, i32::MIN, i32::MAX][(i % 7) as usize])
        .collect::<Vec<_>>();
    let event = rows
        .clone()
        .map(|i| {
            if i % 1000 == 999 {
                i64::MIN + i as i64
            } else {
                (i as i64) * 3_000_000_007
            }
        })
        .collect();
    let track_type = rows.clone().map(|i| (i % 256) as u8).collect();
    let is_muon = rows.map(|i| i % 3 == 0).collect();
    Chunk::new(
        schema,
        [
            ("px", ColumnData::F32(px)),
            ("weight", ColumnData::F64(weight)),
            ("pid", ColumnData::I32(pid)),
            ("event", ColumnData::I64(event)),
            ("track_type", ColumnData::U8(track_type)),
            ("is_muon", ColumnData::Bool(is_muon)),
        ],
    )
    .unwrap()
}

/// Metadata like the simulator's, with a non-ASCII value, an empty one and a long one.
pub fn metadata() -> Metadata {
    Metadata::new()
        .with(ntuple::keys::FLASHC_VERSION, "0.1.0")
        .with(ntuple::keys::PIPELINE, "lamarr_charged")
        .with(ntuple::keys::SEED, "12345")
        .with(ntuple::keys::FIRST_EVENT, "1000")
        .with(ntuple::keys::N_EVENTS, "500")
        .with("model.acceptance", "sha256:0f1e2d3c")
        .with("model.tracking_resolution", "sha256:aabbccdd")
        .with("comment", "μ → e ν ν̄, 100% \"quoted\"")
        .with("empty", "")
        // Longer than 255 bytes: ROOT strings switch to a 4-byte length there.
        .with(
            "config",
            (0..40).map(|i| format!("stage{i}=on;")).collect::<String>(),
        )
}
