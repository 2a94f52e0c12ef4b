//! Pipeline logic with small hand-written models: column contracts, decisions, covariance,
//! oversampling, and independence of the batching.
#![allow(clippy::needless_range_loop)] // index notation mirrors the matrix formulas
use super::flashsim::{self, FlashSim, FlashSimConfig, FlashSimModels, ObjectModels};
use super::lamarr::{self, Lamarr, LamarrConfig, LamarrModels};
use super::{Counts, Pipeline, Table, Values};
use crate::event::{GenEvent, GunConfig, Momentum, Multiplicity, ParticleGun, Species};
use crate::isa::Tier;
use crate::model::{Model, ModelInfo, Noise};

/// A model computing `f(inputs, noise, out)` row by row.
struct Fake {
    info: &'static ModelInfo,
    f: fn(&[f32], &[f32], &mut [f32]),
}

impl Model for Fake {
    fn info(&self) -> &'static ModelInfo {
        self.info
    }
    fn run_unchecked(&self, _: Tier, rows: usize, x: &[f32], z: &[f32], out: &mut [f32]) {
        let (ni, nz, no) = (self.info.n_inputs, self.info.n_noise, self.info.n_outputs);
        for r in 0..rows {
            (self.f)(
                &x[r * ni..(r + 1) * ni],
                &z[r * nz..(r + 1) * nz],
                &mut out[r * no..(r + 1) * no],
            );
        }
    }
}

fn leak(v: Vec<&'static str>) -> &'static [&'static str] {
    Box::leak(v.into_boxed_slice())
}

fn fake(
    name: &'static str,
    inputs: &[&'static str],
    noise: usize,
    outputs: &[&'static str],
    f: fn(&[f32], &[f32], &mut [f32]),
) -> Fake {
    Fake {
        // Tests leak one small description per model.
        info: Box::leak(Box::new(ModelInfo {
            name,
            source: "test",
            n_inputs: inputs.len(),
            n_noise: noise,
            n_outputs: outputs.len(),
            input_columns: leak(inputs.to_vec()),
            output_columns: leak(outputs.to_vec()),
            noise: if noise > 0 {
                Noise::Normal
            } else {
                Noise::None
            },
            macs_per_row: 0,
        })),
        f,
    }
}

fn cat(parts: &[&[&'static str]]) -> Vec<&'static str> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

struct LamarrFakes(Vec<Fake>);

fn lamarr_fakes() -> LamarrFakes {
    use lamarr::*;
    LamarrFakes(vec![
        // Acceptance: falls with |η − 3.5|.
        fake("acc", &TRUTH, 0, &["p_accept"], |x, _, o| {
            o[0] = (1.0 - 0.3 * (x[6] - 3.5).abs()).clamp(0.0, 1.0)
        }),
        fake(
            "eff",
            &TRUTH,
            0,
            &["p_not_reco", "p_long", "p_upstream", "p_downstream"],
            |_, _, o| o.copy_from_slice(&[0.1, 0.6, 0.2, 0.1]),
        ),
        fake("res", &cat(&[&TRUTH, &TYPE]), 8, &RESOLUTION, |x, z, o| {
            for j in 0..6 {
                o[j] = 0.01 * z[j];
            }
            o[6] = 1.0 + 0.1 * z[6].abs();
            o[7] = 20.0 + 10.0 * x[12] + z[7];
            o[8] = 0.05;
        }),
        fake(
            "cov",
            &cat(&[&TRUTH, &TYPE, &RESOLUTION[6..9]]),
            15,
            &COVARIANCE,
            |_, z, o| {
                for j in 0..15 {
                    o[j] = if j < 5 {
                        -2.0 + 0.3 * z[j]
                    } else {
                        0.5 * z[j].tanh()
                    };
                }
            },
        ),
        fake("ismu", &PID, 0, &["p_is_muon"], |x, _, o| {
            o[0] = if x[4] == 1.0 { 0.9 } else { 0.05 }
        }),
        fake("rich", &PID, 4, &RICH, |x, z, o| {
            for j in 0..4 {
                o[j] = z[j] + x[5 + j.min(2)];
            }
        }),
        fake("muon", &PID, 2, &MUON, |_, z, o| {
            o.copy_from_slice(&[z[0], z[1] - 3.0])
        }),
        fake(
            "gmu",
            &cat(&[&PID, &RICH, &MUON]),
            2,
            &GLOBAL_PID,
            |x, z, o| {
                for j in 0..8 {
                    o[j] = x[12] + x[13] + z[j % 2];
                }
            },
        ),
        fake("gnomu", &cat(&[&PID, &RICH]), 2, &GLOBAL_PID, |x, z, o| {
            for j in 0..8 {
                o[j] = x[8] - z[j % 2];
            }
        }),
        fake("peff", &PHOTON, 0, &["p_reco"], |x, _, o| {
            o[0] = if x[2] > 0.5 { 0.8 } else { 0.3 }
        }),
        fake("pres", &PHOTON, 6, &PHOTON_RESOLUTION, |_, z, o| {
            for j in 0..6 {
                o[j] = 0.02 * z[j];
            }
        }),
    ])
}

impl LamarrFakes {
    fn models(&self) -> LamarrModels<'_> {
        let m = |i: usize| &self.0[i] as &dyn Model;
        LamarrModels {
            acceptance: m(0),
            efficiency: m(1),
            resolution: m(2),
            covariance: m(3),
            is_muon: m(4),
            rich: m(5),
            muon: m(6),
            global_pid_muon: m(7),
            global_pid_no_muon: m(8),
            photon_efficiency: m(9),
            photon_resolution: m(10),
        }
    }
}

fn events(config: GunConfig, n: u64) -> Vec<(u64, GenEvent)> {
    let gun = ParticleGun::new(config).unwrap();
    (0..n).map(|k| (k, gun.event(k))).collect()
}

/// The table of `events` simulated in chunks of `chunk` events.
fn simulate(p: &dyn Pipeline, events: &[(u64, GenEvent)], chunk: usize) -> (Table, Counts) {
    let mut all = Table::new(&p.schema());
    let mut counts = Counts::default();
    for c in events.chunks(chunk) {
        let evs: Vec<(u64, &GenEvent)> = c.iter().map(|(i, e)| (*i, e)).collect();
        let mut t = Table::new(&p.schema());
        p.simulate(&evs, &mut t, &mut counts).unwrap();
        assert_eq!(t.check(), Ok(()));
        all.append(&t);
    }
    (all, counts)
}

/// Bitwise equality (NaN payloads included).
fn same_bits(a: &Table, b: &Table) -> bool {
    a.schema() == b.schema()
        && a.columns()
            .iter()
            .zip(b.columns())
            .all(|(x, y)| match (&x.values, &y.values) {
                (Values::F32(u), Values::F32(v)) => u
                    .iter()
                    .map(|f| f.to_bits())
                    .eq(v.iter().map(|f| f.to_bits())),
                (u, v) => u == v,
            })
}

fn f32s<'a>(t: &'a Table, name: &str) -> &'a [f32] {
    match t.column(name) {
        Some(Values::F32(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn i32s<'a>(t: &'a Table, name: &str) -> &'a [i32] {
    match t.column(name) {
        Some(Values::I32(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn u8s<'a>(t: &'a Table, name: &str) -> &'a [u8] {
    match t.column(name) {
        Some(Values::U8(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn lamarr_rejects_a_model_with_the_wrong_columns() {
    let f = lamarr_fakes();
    let mut m = f.models();
    m.acceptance = &f.0[1];
    let e = Lamarr::new(m, LamarrConfig::default())
        .err()
        .expect("contract error")
        .to_string();
    assert!(
        e.contains("acceptance model `eff`") && e.contains("p_accept"),
        "{e}"
    );
    let mut m = f.models();
    m.resolution = &f.0[0];
    assert!(Lamarr::new(m, LamarrConfig::default()).is_err());
    let e = Lamarr::new(
        f.models(),
        LamarrConfig {
            folds: 0,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("0 folds"), "{e}");
}

#[test]
fn lamarr_output_does_not_depend_on_batching_and_is_consistent() {
    let f = lamarr_fakes();
    let p = Lamarr::new(
        f.models(),
        LamarrConfig {
            seed: 7,
            ..Default::default()
        },
    )
    .unwrap();
    let evs = events(
        GunConfig {
            seed: 7,
            ..GunConfig::default()
        },
        40,
    );
    let (one, counts) = simulate(&p, &evs, 40);
    for chunk in [1, 3, 17] {
        assert!(
            same_bits(&one, &simulate(&p, &evs, chunk).0),
            "chunks of {chunk}"
        );
    }
    // A different seed changes the decisions.
    let q = Lamarr::new(
        f.models(),
        LamarrConfig {
            seed: 8,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!same_bits(&one, &simulate(&q, &evs, 40).0));

    let n = one.rows();
    let charged = counts.get("charged particles") as usize;
    let photons = counts.get("photons") as usize;
    assert_eq!(n, charged + photons);
    assert!(charged > 500 && photons > 20, "{counts:?}");
    let (pdg, acc, tt, pid) = (
        i32s(&one, "pdg"),
        u8s(&one, "accepted"),
        i32s(&one, "track_type"),
        u8s(&one, "has_pid"),
    );
    let (ndof, ismu, mu_ll, rx) = (
        i32s(&one, "ndof"),
        u8s(&one, "is_muon"),
        f32s(&one, "muon_mu_ll"),
        f32s(&one, "reco_x"),
    );
    let photon_reco = u8s(&one, "photon_reco");
    let mut long = 0;
    for r in 0..n {
        if pdg[r] == 22 {
            assert_eq!((acc[r], tt[r], pid[r]), (0, -1, 0));
            assert_eq!(photon_reco[r] == 1, f32s(&one, "reco_e")[r].is_finite());
            continue;
        }
        assert!(acc[r] == 1 || tt[r] == 0);
        assert_eq!(
            tt[r] > 0,
            rx[r].is_finite(),
            "reco values exactly for reconstructed tracks"
        );
        assert_eq!(tt[r] > 0, ndof[r] >= 1);
        let species = matches!(pdg[r].abs(), 13 | 211 | 321 | 2212);
        assert_eq!(
            pid[r] == 1,
            tt[r] == 1 && species,
            "PID exactly for long μ, π, K, p"
        );
        assert_eq!(mu_ll[r].is_finite(), ismu[r] == 1);
        assert!(ismu[r] == 0 || pid[r] == 1);
        long += (tt[r] == 1) as u64;
    }
    assert_eq!(long, counts.get("long tracks"));
    // Acceptance near its expectation (fake: 1 − 0.3 |η − 3.5| for η in 2..5 → mean 0.775).
    let a = counts.get("accepted") as f64 / charged as f64;
    assert!((a - 0.775).abs() < 0.05, "acceptance {a}");
    let l = long as f64 / counts.get("accepted") as f64;
    assert!((l - 0.6).abs() < 0.06, "long fraction {l}");
    // Every covariance is symmetric positive definite.
    for r in (0..n).filter(|&r| tt[r] > 0) {
        let mut c = [[0f64; 5]; 5];
        let mut k = 0;
        for i in 0..5 {
            for j in i..5 {
                let v = f32s(&one, lamarr::COV_COLUMNS[k])[r] as f64;
                c[i][j] = v;
                c[j][i] = v;
                k += 1;
            }
        }
        assert!(cholesky_ok(c), "row {r}: {c:?}");
    }
}

fn cholesky_ok(mut a: [[f64; 5]; 5]) -> bool {
    for j in 0..5 {
        for k in 0..j {
            for i in j..5 {
                a[i][j] -= a[i][k] * a[j][k];
            }
        }
        if a[j][j].is_nan() || a[j][j] <= 0.0 {
            return false;
        }
        let d = a[j][j].sqrt();
        for i in j..5 {
            a[i][j] /= d;
        }
    }
    true
}

#[test]
fn covariance_is_l_times_l_transposed() {
    let o: [f32; 15] = [
        -1.0, -2.0, -3.0, -4.0, 0.5, 0.3, -0.2, 0.9, 0.1, 0.2, -0.7, 0.0, 0.4, -0.5, 0.6,
    ];
    let c = lamarr::covariance_from_cholesky(&o);
    let mut l = [[0f64; 5]; 5];
    let mut k = 5;
    for i in 0..5 {
        l[i][i] = (o[i] as f64).exp();
        for j in 0..i {
            l[i][j] = o[k] as f64 * l[i][i];
            k += 1;
        }
    }
    let mut k = 0;
    for i in 0..5 {
        for j in i..5 {
            let want: f64 = (0..5).map(|m| l[i][m] * l[j][m]).sum();
            assert!(
                (c[k] - want).abs() <= 1e-15 * want.abs().max(1.0),
                "({i},{j})"
            );
            k += 1;
        }
    }
    assert!((c[0] - (-2.0f64).exp()).abs() < 1e-15);
}

#[test]
fn oversampling_folds_are_independent_and_numbered() {
    let f = lamarr_fakes();
    let p = Lamarr::new(
        f.models(),
        LamarrConfig {
            seed: 3,
            folds: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let one = Lamarr::new(
        f.models(),
        LamarrConfig {
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let evs = events(
        GunConfig {
            seed: 3,
            ..GunConfig::default()
        },
        5,
    );
    let (t3, _) = simulate(&p, &evs, 5);
    let (t1, _) = simulate(&one, &evs, 5);
    assert_eq!(t3.rows(), 3 * t1.rows());
    let fold = i32s(&t3, "fold");
    // Fold 0 equals the single-fold run.
    let rows0: Vec<usize> = (0..t3.rows()).filter(|&r| fold[r] == 0).collect();
    let rx3 = f32s(&t3, "reco_x");
    let rx1 = f32s(&t1, "reco_x");
    assert!(rows0
        .iter()
        .zip(rx1)
        .all(|(&r, b)| rx3[r].to_bits() == b.to_bits()));
    // Other folds differ.
    let rows1: Vec<usize> = (0..t3.rows()).filter(|&r| fold[r] == 1).collect();
    assert!(rows1
        .iter()
        .zip(rx1)
        .any(|(&r, b)| rx3[r].to_bits() != b.to_bits()));
}

struct FlashFakes(Vec<Fake>);

fn flash_fakes() -> FlashFakes {
    use flashsim::*;
    let mu_in = cat(&[&STATE, &MUON_CONTEXT, &["t"]]);
    let el_in = cat(&[&STATE, &ELECTRON_CONTEXT, &["t"]]);
    FlashFakes(vec![
        fake("mu_eff", &MUON_CONTEXT, 0, &["p_reco"], |_, _, o| {
            o[0] = 0.9
        }),
        // v = −x: x(1) = z·e^−1 (RK4 with 8 steps is accurate to ~1e-6).
        fake("mu_flow", &mu_in, 0, &VELOCITY, |x, _, o| {
            for j in 0..4 {
                o[j] = -x[j];
            }
        }),
        fake("mu_targets", &STATE, 0, &TARGETS, |x, _, o| {
            o.copy_from_slice(&[1.0 + 0.01 * x[0], 0.001 * x[1], 0.001 * x[2], x[3].abs()])
        }),
        // Electrons: efficiency 0.2 next to a muon, 0.95 away from muons.
        fake("el_eff", &ELECTRON_CONTEXT, 0, &["p_reco"], |x, _, o| {
            o[0] = if x[5] < 0.4 { 0.2 } else { 0.95 }
        }),
        fake("el_flow", &el_in, 0, &VELOCITY, |x, _, o| {
            for j in 0..4 {
                o[j] = -x[j] + x[8] * 0.0;
            }
        }),
        fake("el_targets", &STATE, 0, &TARGETS, |x, _, o| {
            o.copy_from_slice(&[1.0, 0.0, 0.0, x[0] * x[0]])
        }),
    ])
}

impl FlashFakes {
    fn models(&self) -> FlashSimModels<'_> {
        let m = |i: usize| &self.0[i] as &dyn Model;
        FlashSimModels {
            muon: ObjectModels {
                efficiency: m(0),
                flow: m(1),
                targets: m(2),
            },
            electron: ObjectModels {
                efficiency: m(3),
                flow: m(4),
                targets: m(5),
            },
        }
    }
}

fn central_gun(seed: u64) -> GunConfig {
    let mut species = Vec::new();
    for id in [13, 11] {
        species.push(Species::new(id, 1.0));
        species.push(Species::new(-id, 1.0));
    }
    GunConfig {
        seed,
        species,
        momentum: Momentum::Pt {
            min: 5.0,
            max: 50.0,
        },
        eta: (-2.4, 2.4),
        multiplicity: Multiplicity::Poisson(5.0),
        ..GunConfig::default()
    }
}

#[test]
fn flashsim_samples_conditions_and_is_batch_independent() {
    let f = flash_fakes();
    let cfg = FlashSimConfig {
        seed: 11,
        folds: 2,
        ..Default::default()
    };
    let p = FlashSim::new(f.models(), cfg).unwrap();
    let evs = events(central_gun(11), 60);
    let (t, counts) = simulate(&p, &evs, 60);
    for chunk in [1, 7] {
        assert!(
            same_bits(&t, &simulate(&p, &evs, chunk).0),
            "chunks of {chunk}"
        );
    }
    let n = t.rows();
    assert_eq!(
        n as u64,
        counts.get("generator muons") + counts.get("generator electrons")
    );
    let (pdg, reco, nmu, dr) = (
        i32s(&t, "pdg"),
        u8s(&t, "reco"),
        i32s(&t, "n_reco_muons"),
        f32s(&t, "dr_muon"),
    );
    let (gpt, pt, iso) = (f32s(&t, "gen_pt"), f32s(&t, "reco_pt"), f32s(&t, "iso"));
    let mut z = Vec::new();
    for r in 0..n {
        assert_eq!(reco[r] == 1, pt[r].is_finite());
        if pdg[r].abs() == 13 {
            assert_eq!((nmu[r], dr[r].is_nan()), (-1, true));
            if reco[r] == 1 {
                // pt_ratio = 1 + 0.01·x0 with x0 = z0·e^−1.
                z.push(((pt[r] / gpt[r] - 1.0) / 0.01) as f64 * std::f64::consts::E);
                assert!(iso[r] >= 0.0);
            }
        } else {
            assert!(nmu[r] >= 0 && dr[r] > 0.0 && dr[r] <= 5.0);
            assert_eq!(dr[r] == 5.0, nmu[r] == 0 || dr[r] == 5.0);
        }
    }
    // The base noise is standard normal.
    let m = z.iter().sum::<f64>() / z.len() as f64;
    let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / z.len() as f64;
    assert!(
        z.len() > 200 && m.abs() < 0.15 && (v - 1.0).abs() < 0.2,
        "n {} mean {m} var {v}",
        z.len()
    );
    // Conditioning on earlier objects: electrons near a reco muon are kept far less often.
    let rate = |near: bool| {
        let rows: Vec<usize> = (0..n)
            .filter(|&r| pdg[r].abs() == 11 && (dr[r] < 0.4) == near)
            .collect();
        rows.iter().filter(|&&r| reco[r] == 1).count() as f64 / rows.len().max(1) as f64
    };
    assert!(rate(false) > 0.85, "far {}", rate(false));
    // Folds: both present, and they differ.
    let fold = i32s(&t, "fold");
    assert!(fold.contains(&0) && fold.contains(&1));
}

#[test]
fn flashsim_refuses_adaptive_steps() {
    let f = flash_fakes();
    let cfg = FlashSimConfig {
        method: crate::ode::Method::Dopri5(Default::default()),
        ..Default::default()
    };
    let e = FlashSim::new(f.models(), cfg).err().unwrap().to_string();
    assert!(e.contains("fixed-step"), "{e}");
    let mut m = f.models();
    m.electron.flow = &f.0[1];
    let e = FlashSim::new(m, FlashSimConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("electron flow model `mu_flow`"), "{e}");
}
