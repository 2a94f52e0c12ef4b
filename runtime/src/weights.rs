//! Aligned static weight blobs.
//!
//! Generated code embeds each model's packed weights as one little-endian `f32` blob:
//!
//! ```
//! // Generated code writes `Aligned(*include_bytes!("NAME.weights.bin"))`; here, 1.0 and 2.0.
//! static BLOB: &runtime::weights::Aligned<[u8]> = &runtime::weights::Aligned([0, 0, 128, 63, 0, 0, 0, 64]);
//! let w: &'static [f32] = runtime::weights::f32s(BLOB);
//! assert_eq!(w, &[1.0, 2.0]);
//! ```
//!
//! The 64-byte alignment makes the reinterpretation as `f32` free (no copy) and keeps every
//! panel on cache-line boundaries when the transpiler aligns the offsets.
#[cfg(target_endian = "big")]
compile_error!("flashc weight blobs are little-endian; big-endian targets are not supported");

/// A value aligned to 64 bytes (a cache line, and an AVX-512 vector).
#[repr(C, align(64))]
pub struct Aligned<T: ?Sized>(pub T);

/// Reinterprets an aligned little-endian blob as `f32`s without copying.
///
/// Panics if the blob length is not a multiple of 4 (a blob not written by the transpiler).
#[allow(clippy::manual_is_multiple_of)] // rust-version 1.85 predates is_multiple_of
pub fn f32s(bytes: &'static Aligned<[u8]>) -> &'static [f32] {
    assert!(bytes.0.len() % 4 == 0, "weight blob of {} bytes is not a whole number of f32 values", bytes.0.len());
    bytemuck::cast_slice(&bytes.0)
}
