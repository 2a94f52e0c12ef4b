//! PDG Monte Carlo particle codes: charges, masses and names of common particles.
//!
//! # Charge
//!
//! [`three_charge`] gives three times the charge (an integer, so quarks are exact):
//! * quarks 1..=6, leptons 11..=16, gauge and Higgs bosons 21..=25, 37: from a table;
//! * hadrons and diquarks (codes `±n nr nL nq1 nq2 nq3 nJ` with `n` 0 or 9): from the quark
//!   content in the numbering scheme: baryons `nq1 + nq2 + nq3`, diquarks `nq1 + nq2`, mesons
//!   `q(nq2) − q(nq3)` when `nq2` is up-type and `q(nq3) − q(nq2)` when it is down-type (e.g. 211 π⁺ =
//!   u d̄, 321 K⁺ = u s̄, 521 B⁺ = u b̄); K⁰_L 130 and K⁰_S 310 are neutral;
//! * nuclei `10LZZZAAAI`: `3 Z`;
//! * anything else (generator-internal codes 81..=100, BSM states, malformed codes): unknown.
//!
//! [`charge`] is `three_charge / 3`, and **0 for unknown codes**: such particles are treated as
//! neutral by the simulation; call [`three_charge`] to tell them apart.
//!
//! # Masses
//!
//! [`mass`] knows the long-lived particles a particle gun shoots (values in GeV, PDG 2024).

/// Three times the charge of a quark (1 d, 2 u, 3 s, 4 c, 5 b, 6 t).
fn quark3(q: u32) -> Option<i32> {
    match q {
        1 | 3 | 5 => Some(-1),
        2 | 4 | 6 => Some(2),
        _ => None,
    }
}

/// Three times the electric charge of `pdg_id`, or `None` when the code is unknown.
pub fn three_charge(pdg_id: i32) -> Option<i32> {
    let sign = if pdg_id < 0 { -1 } else { 1 };
    let a = pdg_id.unsigned_abs();
    let c = match a {
        0 => return None,
        1..=6 => quark3(a)?,
        11 | 13 | 15 => -3,
        12 | 14 | 16 => 0,
        21 | 22 | 23 | 25 => 0,
        24 | 37 => 3,
        130 | 310 => 0,
        1_000_000_000.. => {
            // Nucleus 10LZZZAAAI.
            let z = (a / 10_000) % 1000;
            let n_a = (a / 10) % 1000;
            if a >= 1_100_000_000 || z > n_a || n_a == 0 {
                return None;
            }
            3 * z as i32
        }
        _ => {
            let nj = a % 10;
            let nq3 = (a / 10) % 10;
            let nq2 = (a / 100) % 10;
            let nq1 = (a / 1000) % 10;
            let n = (a / 1_000_000) % 10;
            if a >= 10_000_000 || !(n == 0 || n == 9) || nj == 0 {
                return None;
            }
            if nq1 == 0 && nq2 >= 1 && nq3 >= 1 {
                // Meson.
                let (q2, q3) = (quark3(nq2)?, quark3(nq3)?);
                if nq2 & 1 == 0 {
                    q2 - q3
                } else {
                    q3 - q2
                }
            } else if nq1 >= 1 && nq2 >= 1 && nq3 == 0 {
                // Diquark.
                quark3(nq1)? + quark3(nq2)?
            } else if nq1 >= 1 && nq2 >= 1 && nq3 >= 1 {
                // Baryon.
                quark3(nq1)? + quark3(nq2)? + quark3(nq3)?
            } else {
                return None;
            }
        }
    };
    Some(sign * c)
}

/// Electric charge of `pdg_id` in units of e; 0 for unknown codes (see the module docs).
pub fn charge(pdg_id: i32) -> f64 {
    three_charge(pdg_id).map_or(0.0, |c| c as f64 / 3.0)
}

/// Name, PDG id and mass (GeV) of the particles [`mass`] and [`from_name`] know (particles; the
/// antiparticles are the negated codes).
const TABLE: &[(&str, i32, f64)] = &[
    ("e-", 11, 0.000_510_998_95),
    ("nu_e", 12, 0.0),
    ("mu-", 13, 0.105_658_375_5),
    ("nu_mu", 14, 0.0),
    ("tau-", 15, 1.776_86),
    ("nu_tau", 16, 0.0),
    ("gamma", 22, 0.0),
    ("pi0", 111, 0.134_976_8),
    ("pi+", 211, 0.139_570_39),
    ("eta", 221, 0.547_862),
    ("K0L", 130, 0.497_611),
    ("K0S", 310, 0.497_611),
    ("K0", 311, 0.497_611),
    ("K+", 321, 0.493_677),
    ("D+", 411, 1.869_66),
    ("D0", 421, 1.864_84),
    ("Ds+", 431, 1.968_35),
    ("B0", 511, 5.279_65),
    ("B+", 521, 5.279_34),
    ("Bs0", 531, 5.366_88),
    ("J/psi", 443, 3.096_900),
    ("n", 2112, 0.939_565_420_52),
    ("p", 2212, 0.938_272_088_16),
    ("Lambda0", 3122, 1.115_683),
    ("Sigma+", 3222, 1.189_37),
    ("Sigma-", 3112, 1.197_449),
    ("Xi-", 3312, 1.321_71),
    ("Xi0", 3322, 1.314_86),
    ("Omega-", 3334, 1.672_45),
    ("Lambda_c+", 4122, 2.286_46),
    ("Lambda_b0", 5122, 5.619_60),
];

/// Mass in GeV of a common particle or antiparticle, `None` for others.
pub fn mass(pdg_id: i32) -> Option<f64> {
    let a = pdg_id.checked_abs()?;
    TABLE.iter().find(|(_, id, _)| *id == a).map(|(_, _, m)| *m)
}

/// Name of a common particle or antiparticle (`pi-`, `K+`, `pbar`, `e+`, `gamma`...).
pub fn name(pdg_id: i32) -> Option<String> {
    let a = pdg_id.checked_abs()?;
    let (n, _, _) = TABLE.iter().find(|(_, id, _)| *id == a)?;
    if pdg_id > 0 {
        return Some(n.to_string());
    }
    // Antiparticles: flip the charge sign, or add "bar" to neutral names.
    Some(if let Some(stem) = n.strip_suffix('+') {
        format!("{stem}-")
    } else if let Some(stem) = n.strip_suffix('-') {
        format!("{stem}+")
    } else if matches!(a, 22 | 111 | 221 | 130 | 310 | 443) {
        return None; // self-conjugate: no distinct antiparticle code
    } else {
        format!("{n}bar")
    })
}

/// The PDG id of a name accepted by [`name`] (or the id itself written as an integer).
pub fn from_name(s: &str) -> Option<i32> {
    if let Ok(id) = s.parse::<i32>() {
        return Some(id);
    }
    TABLE
        .iter()
        .flat_map(|&(_, id, _)| [id, -id])
        .find(|&id| name(id).as_deref() == Some(s))
}
