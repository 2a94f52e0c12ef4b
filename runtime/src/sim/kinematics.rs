//! Straight-line propagation and the kinematic features the pipelines feed their models.
//!
//! Units: GeV and mm, like [`crate::event`]. All in `f64`; features are rounded to `f32` once,
//! when they become model inputs.
use crate::event::GenParticle;

/// z of the electromagnetic calorimeter's front face in the forward spectrometer (mm).
pub const ECAL_FACE_Z: f64 = 12_620.0;

/// The point of closest approach to the beam line (the z axis) of the straight line through
/// `(x0, y0, z0)` with slopes `tx = px/pz`, `ty = py/pz`:
/// `s = −(x0·tx + y0·ty) / (tx² + ty²)`, point `(x0 + tx·s, y0 + ty·s, z0 + s)`.
/// A line parallel to the beam (`tx = ty = 0`) keeps its origin.
pub fn closest_to_beam(x0: f64, y0: f64, z0: f64, tx: f64, ty: f64) -> (f64, f64, f64) {
    let t2 = tx * tx + ty * ty;
    if t2 == 0.0 {
        return (x0, y0, z0);
    }
    let s = -(x0 * tx + y0 * ty) / t2;
    (x0 + tx * s, y0 + ty * s, z0 + s)
}

/// Where the straight line through `(x0, y0, z0)` with slopes `(tx, ty)` crosses the plane `z`.
pub fn at_z(x0: f64, y0: f64, z0: f64, tx: f64, ty: f64, z: f64) -> (f64, f64) {
    (x0 + tx * (z - z0), y0 + ty * (z - z0))
}

/// Pseudorapidity of a direction with slopes `(tx, ty)` and `pz > 0`: `asinh(1 / √(tx² + ty²))`.
pub fn eta_of_slopes(tx: f64, ty: f64) -> f64 {
    (1.0 / tx.hypot(ty)).asinh()
}

/// `phi` wrapped into `(−π, π]`.
pub fn wrap_phi(phi: f64) -> f64 {
    use std::f64::consts::PI;
    let mut p = phi % (2.0 * PI);
    if p > PI {
        p -= 2.0 * PI;
    } else if p <= -PI {
        p += 2.0 * PI;
    }
    p
}

/// ΔR = √(Δη² + Δφ²), with Δφ wrapped.
pub fn delta_r(eta1: f64, phi1: f64, eta2: f64, phi2: f64) -> f64 {
    (eta1 - eta2).hypot(wrap_phi(phi1 - phi2))
}

/// The 12 truth features of a charged particle (the `TRUTH` columns of `docs/pipelines.md`):
/// closest-to-beam point, log10 p, slopes, η, φ, charge, and the e / μ / hadron one-hot.
/// `None` unless `pz > 0`.
pub fn charged_truth(p: &GenParticle) -> Option<[f64; 12]> {
    if p.pz.is_nan() || p.pz <= 0.0 {
        return None;
    }
    let (tx, ty) = (p.px / p.pz, p.py / p.pz);
    let v = &p.vertex;
    let (cx, cy, cz) = closest_to_beam(v.x, v.y, v.z, tx, ty);
    let a = p.pdg_id.unsigned_abs();
    let charge = if p.charge < 0.0 { -1.0 } else { 1.0 };
    Some([
        cx,
        cy,
        cz,
        p.p().log10(),
        tx,
        ty,
        p.eta(),
        p.phi(),
        charge,
        (a == 11) as u8 as f64,
        (a == 13) as u8 as f64,
        matches!(a, 211 | 321 | 2212) as u8 as f64,
    ])
}

/// The 5 features of a photon at the calorimeter face (`PHOTON` of `docs/pipelines.md`):
/// x and y at z = [`ECAL_FACE_Z`], log10 E, slopes. `None` unless `pz > 0`.
pub fn photon_features(p: &GenParticle) -> Option<[f64; 5]> {
    if p.pz.is_nan() || p.pz <= 0.0 {
        return None;
    }
    let (tx, ty) = (p.px / p.pz, p.py / p.pz);
    let v = &p.vertex;
    let (x, y) = at_z(v.x, v.y, v.z, tx, ty, ECAL_FACE_Z);
    Some([x, y, p.e.log10(), tx, ty])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_to_beam_is_the_minimum_distance() {
        let (x0, y0, z0, tx, ty) = (0.3, -0.2, 10.0, 0.05, 0.02);
        let (x, y, z) = closest_to_beam(x0, y0, z0, tx, ty);
        let d = x.hypot(y);
        for ds in [-1.0, -0.01, 0.01, 1.0] {
            let (xs, ys) = at_z(x0, y0, z0, tx, ty, z + ds);
            assert!(xs.hypot(ys) > d);
        }
        // On the line.
        let (xl, yl) = at_z(x0, y0, z0, tx, ty, z);
        assert!((xl - x).abs() < 1e-12 && (yl - y).abs() < 1e-12);
        assert_eq!(closest_to_beam(1.0, 2.0, 3.0, 0.0, 0.0), (1.0, 2.0, 3.0));
    }

    #[test]
    fn eta_from_slopes_matches_momentum() {
        let (px, py, pz) = (1.2f64, -0.7f64, 35.0f64);
        let eta = (pz / px.hypot(py)).asinh();
        assert!((eta_of_slopes(px / pz, py / pz) - eta).abs() < 1e-12);
    }

    #[test]
    fn phi_wraps() {
        use std::f64::consts::PI;
        assert!((wrap_phi(3.0 * PI / 2.0) + PI / 2.0).abs() < 1e-12);
        assert!((wrap_phi(-3.0 * PI / 2.0) - PI / 2.0).abs() < 1e-12);
        assert!((delta_r(0.0, PI - 0.1, 0.0, -PI + 0.1) - 0.2).abs() < 1e-12);
    }
}
