//! The LHCb Lamarr-style pipelines.
//!
//! **Charged** (final-state e, μ, π, K, p with `pz > 0`):
//! 1. propagation to the point closest to the beam (straight line, [`kinematics`]);
//! 2. geometrical acceptance: DNN → Bernoulli;
//! 3. tracking efficiency: 4-class DNN (not reconstructed / long / upstream / downstream) →
//!    categorical draw, for accepted particles;
//! 4. tracking resolution: GAN conditioned on the truth and the track type → reco − truth of the
//!    state at the closest-to-beam point, χ²/ndof, ndof (rounded to an integer ≥ 1), ghost
//!    probability;
//! 5. covariance: GAN conditioned also on χ²/ndof, ndof and ghost probability → the Cholesky
//!    factor `L` of the 5×5 covariance of (x, y, tx, ty, q/p): `L_ii = exp(log_l_i)`,
//!    `L_ij = l_ij · L_ii` (j < i), `C = L·Lᵀ`, symmetric positive definite by construction;
//! 6. PID for long tracks of μ, π, K, p: isMuon (DNN → Bernoulli), RICH (GAN), MUON (GAN, only
//!    when isMuon), GlobalPID (GAN, the isMuon or the not-isMuon variant).
//!
//! **Neutral** (final-state photons with `pz > 0`): straight line to the calorimeter face,
//! efficiency (DNN → Bernoulli), resolution (GAN: Δx, Δy, ΔE/E, PhotonID, IsNotE, IsNotH).
//!
//! One output row per simulated particle (charged or photon) and fold, in event, fold, particle
//! order; columns that do not apply to a row are NaN (floats), −1 (integers) or 0 (flags).
use super::kinematics::{charged_truth, eta_of_slopes, photon_features};
use super::{
    expect_model, particle_key, run_model, streams, uniform, Counts, Kind, Pipeline, Table,
};
use crate::event::GenEvent;
use crate::model::{Error, Model};

/// Charged truth features, the input of acceptance and efficiency.
pub const TRUTH: [&str; 12] = [
    "ctb_x", "ctb_y", "ctb_z", "log10_p", "tx", "ty", "eta", "phi", "charge", "is_e", "is_mu",
    "is_h",
];
/// Track-type one-hot.
pub const TYPE: [&str; 3] = ["is_long", "is_upstream", "is_downstream"];
/// Resolution outputs.
pub const RESOLUTION: [&str; 9] = [
    "dx",
    "dy",
    "dz",
    "dtx",
    "dty",
    "dp_rel",
    "chi2_per_dof",
    "ndof",
    "ghost_prob",
];
/// Covariance outputs (Cholesky factor).
pub const COVARIANCE: [&str; 15] = [
    "log_l0", "log_l1", "log_l2", "log_l3", "log_l4", "l10", "l20", "l21", "l30", "l31", "l32",
    "l40", "l41", "l42", "l43",
];
/// PID inputs.
pub const PID: [&str; 8] = [
    "log10_p", "eta", "n_tracks", "charge", "is_mu", "is_pi", "is_k", "is_p",
];
/// RICH outputs.
pub const RICH: [&str; 4] = ["rich_dll_e", "rich_dll_mu", "rich_dll_k", "rich_dll_p"];
/// MUON outputs.
pub const MUON: [&str; 2] = ["muon_mu_ll", "muon_bg_ll"];
/// GlobalPID outputs.
pub const GLOBAL_PID: [&str; 8] = [
    "pid_mu",
    "pid_k",
    "pid_p",
    "pid_e",
    "probnn_mu",
    "probnn_pi",
    "probnn_k",
    "probnn_p",
];
/// Photon features at the calorimeter face.
pub const PHOTON: [&str; 5] = ["ecal_x", "ecal_y", "log10_e", "tx", "ty"];
/// Photon resolution outputs.
pub const PHOTON_RESOLUTION: [&str; 6] =
    ["dx", "dy", "de_rel", "photon_id", "is_not_e", "is_not_h"];

/// Names of the covariance entries in the output (upper triangle of (x, y, tx, ty, qop)).
pub const COV_COLUMNS: [&str; 15] = [
    "cov_x_x",
    "cov_x_y",
    "cov_x_tx",
    "cov_x_ty",
    "cov_x_qop",
    "cov_y_y",
    "cov_y_tx",
    "cov_y_ty",
    "cov_y_qop",
    "cov_tx_tx",
    "cov_tx_ty",
    "cov_tx_qop",
    "cov_ty_ty",
    "cov_ty_qop",
    "cov_qop_qop",
];

/// The models of the Lamarr pipelines.
#[derive(Clone, Copy)]
pub struct LamarrModels<'a> {
    pub acceptance: &'a dyn Model,
    pub efficiency: &'a dyn Model,
    pub resolution: &'a dyn Model,
    pub covariance: &'a dyn Model,
    pub is_muon: &'a dyn Model,
    pub rich: &'a dyn Model,
    pub muon: &'a dyn Model,
    pub global_pid_muon: &'a dyn Model,
    pub global_pid_no_muon: &'a dyn Model,
    pub photon_efficiency: &'a dyn Model,
    pub photon_resolution: &'a dyn Model,
}

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LamarrConfig {
    /// Run seed.
    pub seed: u64,
    /// Times each event is simulated (fold index 0..folds in the output).
    pub folds: u32,
    /// Run the charged chain.
    pub charged: bool,
    /// Run the neutral chain.
    pub neutral: bool,
}

impl Default for LamarrConfig {
    fn default() -> Self {
        LamarrConfig {
            seed: 0,
            folds: 1,
            charged: true,
            neutral: true,
        }
    }
}

/// The Lamarr pipelines with their models.
pub struct Lamarr<'a> {
    models: LamarrModels<'a>,
    config: LamarrConfig,
}

const NAME: &str = "lamarr";

fn cat<const A: usize>(parts: &[&[&'static str]]) -> Vec<&'static str> {
    let v: Vec<_> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    debug_assert_eq!(v.len(), A);
    v
}

impl<'a> Lamarr<'a> {
    /// Checks every model against its stage's column contract and the configuration.
    pub fn new(models: LamarrModels<'a>, config: LamarrConfig) -> Result<Lamarr<'a>, Error> {
        let m = &models;
        let t15 = cat::<15>(&[&TRUTH, &TYPE]);
        let t18 = cat::<18>(&[&TRUTH, &TYPE, &RESOLUTION[6..9]]);
        let pid_mu = cat::<14>(&[&PID, &RICH, &MUON]);
        let pid_nomu = cat::<12>(&[&PID, &RICH]);
        // (stage, model, input columns, output columns, draws noise)
        type Check<'m> = (&'static str, &'m dyn Model, &'m [&'static str], &'m [&'static str], bool);
        let checks: [Check; 11] = [
            ("acceptance", m.acceptance, &TRUTH, &["p_accept"], false),
            (
                "efficiency",
                m.efficiency,
                &TRUTH,
                &["p_not_reco", "p_long", "p_upstream", "p_downstream"],
                false,
            ),
            ("resolution", m.resolution, &t15, &RESOLUTION, true),
            ("covariance", m.covariance, &t18, &COVARIANCE, true),
            ("isMuon", m.is_muon, &PID, &["p_is_muon"], false),
            ("RICH", m.rich, &PID, &RICH, true),
            ("MUON", m.muon, &PID, &MUON, true),
            (
                "GlobalPID (isMuon)",
                m.global_pid_muon,
                &pid_mu,
                &GLOBAL_PID,
                true,
            ),
            (
                "GlobalPID (not isMuon)",
                m.global_pid_no_muon,
                &pid_nomu,
                &GLOBAL_PID,
                true,
            ),
            (
                "photon efficiency",
                m.photon_efficiency,
                &PHOTON,
                &["p_reco"],
                false,
            ),
            (
                "photon resolution",
                m.photon_resolution,
                &PHOTON,
                &PHOTON_RESOLUTION,
                true,
            ),
        ];
        for (role, model, i, o, noise) in checks {
            expect_model(NAME, role, model, i, o, Some(noise))?;
        }
        if config.folds == 0 || config.folds > super::MAX_FOLDS {
            return Err(super::config_error(
                NAME,
                format!("{} folds", config.folds),
                "the oversampling factor must be between 1 and 256",
            ));
        }
        Ok(Lamarr { models, config })
    }

    /// The configuration.
    pub fn config(&self) -> &LamarrConfig {
        &self.config
    }
}

/// The output columns.
pub fn schema() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    let mut s = vec![
        ("event", I64),
        ("gen_event_number", I64),
        ("fold", I32),
        ("particle", I32),
        ("pdg", I32),
        ("charge", F32),
        ("true_p", F32),
        ("true_eta", F32),
        ("true_phi", F32),
        ("true_vx", F32),
        ("true_vy", F32),
        ("true_vz", F32),
        ("true_tx", F32),
        ("true_ty", F32),
        ("ctb_x", F32),
        ("ctb_y", F32),
        ("ctb_z", F32),
        ("accepted", U8),
        ("track_type", I32),
        ("reco_x", F32),
        ("reco_y", F32),
        ("reco_z", F32),
        ("reco_tx", F32),
        ("reco_ty", F32),
        ("reco_p", F32),
        ("reco_eta", F32),
        ("chi2_per_dof", F32),
        ("ndof", I32),
        ("ghost_prob", F32),
    ];
    s.extend(COV_COLUMNS.iter().map(|&c| (c, F32)));
    s.push(("has_pid", U8));
    s.push(("is_muon", U8));
    s.extend(
        RICH.iter()
            .chain(&MUON)
            .chain(&GLOBAL_PID)
            .map(|&c| (c, F32)),
    );
    s.extend([
        ("ecal_x", F32),
        ("ecal_y", F32),
        ("photon_reco", U8),
        ("reco_ecal_x", F32),
        ("reco_ecal_y", F32),
        ("reco_e", F32),
        ("photon_id", F32),
        ("is_not_e", F32),
        ("is_not_h", F32),
    ]);
    s
}

/// Track types as written in `track_type`.
pub const NOT_RECONSTRUCTED: i32 = 0;
pub const LONG: i32 = 1;
pub const UPSTREAM: i32 = 2;
pub const DOWNSTREAM: i32 = 3;

/// The rows of one batch, as columns indexed by row.
struct Rows {
    event: Vec<u64>,
    key: Vec<u32>,
    pdg: Vec<i32>,
    f: Vec<Vec<f32>>,
    names: Vec<&'static str>,
    accepted: Vec<u8>,
    track_type: Vec<i32>,
    ndof: Vec<i32>,
    has_pid: Vec<u8>,
    is_muon: Vec<u8>,
    photon_reco: Vec<u8>,
}

impl Rows {
    fn set(&mut self, name: &str, row: usize, v: f32) {
        let i = self
            .names
            .iter()
            .position(|&n| n == name)
            .expect("float column");
        self.f[i][row] = v;
    }

    fn f32_at(&self, name: &str, row: usize) -> f32 {
        let i = self
            .names
            .iter()
            .position(|&n| n == name)
            .expect("float column");
        self.f[i][row]
    }
}

/// Cholesky factor outputs → the 15 upper-triangle entries of `C = L·Lᵀ`, in [`COV_COLUMNS`]
/// order, computed in `f64`.
#[allow(clippy::needless_range_loop)] // index notation mirrors the matrix formulas
pub fn covariance_from_cholesky(o: &[f32]) -> [f64; 15] {
    let mut l = [[0f64; 5]; 5];
    for i in 0..5 {
        l[i][i] = (o[i] as f64).exp();
    }
    // l10, l20, l21, l30, l31, l32, l40, l41, l42, l43: row-major below the diagonal.
    let mut k = 5;
    for i in 1..5 {
        for j in 0..i {
            l[i][j] = o[k] as f64 * l[i][i];
            k += 1;
        }
    }
    let mut c = [0f64; 15];
    let mut k = 0;
    for i in 0..5 {
        for j in i..5 {
            c[k] = (0..=j.min(i)).map(|m| l[i][m] * l[j][m]).sum();
            k += 1;
        }
    }
    c
}

impl Pipeline for Lamarr<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> Vec<(&'static str, Kind)> {
        schema()
    }

    fn models(&self) -> Vec<&'static str> {
        let m = &self.models;
        [
            m.acceptance,
            m.efficiency,
            m.resolution,
            m.covariance,
            m.is_muon,
            m.rich,
            m.muon,
            m.global_pid_muon,
            m.global_pid_no_muon,
            m.photon_efficiency,
            m.photon_resolution,
        ]
        .iter()
        .map(|m| m.info().name)
        .collect()
    }

    fn simulate(
        &self,
        events: &[(u64, &GenEvent)],
        out: &mut Table,
        counts: &mut Counts,
    ) -> Result<(), Error> {
        let cfg = &self.config;
        let float_names: Vec<&'static str> = schema()
            .into_iter()
            .filter(|c| c.1 == Kind::F32)
            .map(|c| c.0)
            .collect();

        // --- Gather the rows: (event, fold, particle) order.
        let mut ev_idx = Vec::new(); // index into `events`
        let mut fold = Vec::new();
        let mut pidx = Vec::new();
        let mut charged = Vec::new(); // rows of the charged chain, with truth features
        let mut photons = Vec::new();
        let mut truth = Vec::new(); // n_charged × 12
        let mut phot = Vec::new(); // n_photons × 5
        for (e, (_, ev)) in events.iter().enumerate() {
            if ev.particles.len() > super::MAX_PARTICLES_PER_EVENT {
                return Err(super::config_error(
                    NAME,
                    format!("event {} has {} particles", ev.number, ev.particles.len()),
                    "events may have at most 2^24 particles",
                ));
            }
            for f in 0..cfg.folds {
                for (i, p) in ev.particles.iter().enumerate() {
                    if !p.is_final() {
                        continue;
                    }
                    let a = p.pdg_id.unsigned_abs();
                    let row = ev_idx.len();
                    if cfg.charged && matches!(a, 11 | 13 | 211 | 321 | 2212) {
                        if let Some(t) = charged_truth(p) {
                            charged.push(row);
                            truth.extend(t.iter().map(|&x| x as f32));
                        } else {
                            continue;
                        }
                    } else if cfg.neutral && p.pdg_id == 22 {
                        if let Some(t) = photon_features(p) {
                            photons.push(row);
                            phot.extend(t.iter().map(|&x| x as f32));
                        } else {
                            continue;
                        }
                    } else {
                        continue;
                    }
                    ev_idx.push(e);
                    fold.push(f);
                    pidx.push(i);
                }
            }
        }
        let n = ev_idx.len();
        let mut rows = Rows {
            event: ev_idx.iter().map(|&e| events[e].0).collect(),
            key: fold
                .iter()
                .zip(&pidx)
                .map(|(&f, &i)| particle_key(f, i))
                .collect(),
            pdg: ev_idx
                .iter()
                .zip(&pidx)
                .map(|(&e, &i)| events[e].1.particles[i].pdg_id)
                .collect(),
            f: float_names.iter().map(|_| vec![f32::NAN; n]).collect(),
            names: float_names,
            accepted: vec![0; n],
            track_type: vec![-1; n],
            ndof: vec![-1; n],
            has_pid: vec![0; n],
            is_muon: vec![0; n],
            photon_reco: vec![0; n],
        };
        for r in 0..n {
            let p = &events[ev_idx[r]].1.particles[pidx[r]];
            let (tx, ty) = (p.px / p.pz, p.py / p.pz);
            for (name, v) in [
                (
                    "charge",
                    if p.charge < 0.0 {
                        -1.0
                    } else if p.charge > 0.0 {
                        1.0
                    } else {
                        0.0
                    },
                ),
                ("true_p", p.p()),
                ("true_eta", p.eta()),
                ("true_phi", p.phi()),
                ("true_vx", p.vertex.x),
                ("true_vy", p.vertex.y),
                ("true_vz", p.vertex.z),
                ("true_tx", tx),
                ("true_ty", ty),
            ] {
                rows.set(name, r, v as f32);
            }
        }
        if !charged.is_empty() {
            self.charged(
                &mut rows,
                &charged,
                &truth,
                events.len(),
                &ev_idx,
                &fold,
                counts,
            )?;
        }
        if !photons.is_empty() {
            self.neutral(&mut rows, &photons, &phot, counts)?;
        }
        counts.add("events", events.len() as u64 * cfg.folds as u64);

        // --- Emit.
        out.push_i64("event", rows.event.iter().map(|&e| e as i64));
        out.push_i64(
            "gen_event_number",
            ev_idx.iter().map(|&e| events[e].1.number),
        );
        out.push_i32("fold", fold.iter().map(|&f| f as i32));
        out.push_i32("particle", pidx.iter().map(|&i| i as i32));
        out.push_i32("pdg", rows.pdg.iter().copied());
        out.push_u8("accepted", rows.accepted.iter().copied());
        out.push_i32("track_type", rows.track_type.iter().copied());
        out.push_i32("ndof", rows.ndof.iter().copied());
        out.push_u8("has_pid", rows.has_pid.iter().copied());
        out.push_u8("is_muon", rows.is_muon.iter().copied());
        out.push_u8("photon_reco", rows.photon_reco.iter().copied());
        for (name, v) in rows.names.iter().zip(rows.f) {
            out.push_f32(name, v);
        }
        debug_assert_eq!(out.check(), Ok(()));
        Ok(())
    }
}

impl Lamarr<'_> {
    #[allow(clippy::too_many_arguments)]
    fn charged(
        &self,
        rows: &mut Rows,
        charged: &[usize],
        truth: &[f32],
        n_events: usize,
        ev_idx: &[usize],
        fold: &[u32],
        counts: &mut Counts,
    ) -> Result<(), Error> {
        let m = &self.models;
        let seed = self.config.seed;
        let folds = self.config.folds as usize;
        let nc = charged.len();
        counts.add("charged particles", nc as u64);
        for (k, &r) in charged.iter().enumerate() {
            for (j, name) in ["ctb_x", "ctb_y", "ctb_z"].iter().enumerate() {
                rows.set(name, r, truth[k * 12 + j]);
            }
            rows.track_type[r] = NOT_RECONSTRUCTED;
        }
        let events: Vec<u64> = charged.iter().map(|&r| rows.event[r]).collect();
        let keys: Vec<u32> = charged.iter().map(|&r| rows.key[r]).collect();

        // Acceptance.
        let mut o = Vec::new();
        run_model(
            seed,
            streams::ACCEPTANCE,
            m.acceptance,
            truth,
            &events,
            &keys,
            &mut o,
        )?;
        let acc: Vec<usize> = (0..nc)
            .filter(|&k| uniform(seed, streams::ACCEPTANCE, events[k], keys[k], 0) < o[k])
            .collect();
        counts.add("accepted", acc.len() as u64);
        for &k in &acc {
            rows.accepted[charged[k]] = 1;
        }

        // Tracking efficiency: categorical over (not reconstructed, long, upstream, downstream).
        let sub = |idx: &[usize], w: usize, src: &[f32]| -> Vec<f32> {
            idx.iter()
                .flat_map(|&k| src[k * w..(k + 1) * w].iter().copied())
                .collect()
        };
        let acc_truth = sub(&acc, 12, truth);
        let acc_ev: Vec<u64> = acc.iter().map(|&k| events[k]).collect();
        let acc_key: Vec<u32> = acc.iter().map(|&k| keys[k]).collect();
        run_model(
            seed,
            streams::TRACK_TYPE,
            m.efficiency,
            &acc_truth,
            &acc_ev,
            &acc_key,
            &mut o,
        )?;
        let mut reco = Vec::new(); // indices into `acc`
        let mut types = Vec::new();
        for a in 0..acc.len() {
            let u = uniform(seed, streams::TRACK_TYPE, acc_ev[a], acc_key[a], 0);
            let mut cum = 0f32;
            let mut class = 3;
            for c in 0..4 {
                cum += o[a * 4 + c];
                if u < cum {
                    class = c;
                    break;
                }
            }
            rows.track_type[charged[acc[a]]] = class as i32;
            if class != 0 {
                reco.push(a);
                types.push(class);
            }
        }
        for (t, name) in [
            (1, "long tracks"),
            (2, "upstream tracks"),
            (3, "downstream tracks"),
        ] {
            counts.add(name, types.iter().filter(|&&c| c == t).count() as u64);
        }

        // Resolution: TRUTH + TYPE.
        let nr = reco.len();
        let mut x15 = Vec::with_capacity(nr * 15);
        for (i, &a) in reco.iter().enumerate() {
            x15.extend_from_slice(&acc_truth[a * 12..a * 12 + 12]);
            x15.extend((1..4).map(|c| (types[i] == c) as u8 as f32));
        }
        let r_ev: Vec<u64> = reco.iter().map(|&a| acc_ev[a]).collect();
        let r_key: Vec<u32> = reco.iter().map(|&a| acc_key[a]).collect();
        let mut res = Vec::new();
        run_model(
            seed,
            streams::RESOLUTION,
            m.resolution,
            &x15,
            &r_ev,
            &r_key,
            &mut res,
        )?;
        let mut x18 = Vec::with_capacity(nr * 18);
        // Long tracks per event and fold (the PID's `n_tracks`).
        let mut n_long = vec![0u32; n_events * folds];
        // (index into reco, row, species μ π K p, reco p, reco η, charge)
        let mut pid = Vec::new();
        for i in 0..nr {
            let row = charged[acc[reco[i]]];
            let t = &acc_truth[reco[i] * 12..reco[i] * 12 + 12];
            let o = &res[i * 9..i * 9 + 9];
            let ndof = o[7].round().max(1.0);
            rows.ndof[row] = ndof as i32;
            let (tx, ty) = (t[4] + o[3], t[5] + o[4]);
            let p = 10f32.powf(t[3]) * (1.0 + o[5]);
            for (name, v) in [
                ("reco_x", t[0] + o[0]),
                ("reco_y", t[1] + o[1]),
                ("reco_z", t[2] + o[2]),
                ("reco_tx", tx),
                ("reco_ty", ty),
                ("reco_p", p),
                ("reco_eta", eta_of_slopes(tx as f64, ty as f64) as f32),
                ("chi2_per_dof", o[6]),
                ("ghost_prob", o[8]),
            ] {
                rows.set(name, row, v);
            }
            x18.extend_from_slice(&x15[i * 15..i * 15 + 15]);
            x18.extend([o[6], ndof, o[8]]);
            if types[i] == 1 {
                n_long[ev_idx[row] * folds + fold[row] as usize] += 1;
                let species = match rows.pdg[row].unsigned_abs() {
                    13 => Some(0),
                    211 => Some(1),
                    321 => Some(2),
                    2212 => Some(3),
                    _ => None,
                };
                if let Some(s) = species {
                    pid.push((i, row, s, p, rows.f32_at("reco_eta", row), t[8]));
                }
            }
        }

        // Covariance.
        let mut cov = Vec::new();
        run_model(
            seed,
            streams::COVARIANCE,
            m.covariance,
            &x18,
            &r_ev,
            &r_key,
            &mut cov,
        )?;
        for i in 0..nr {
            let row = charged[acc[reco[i]]];
            let c = covariance_from_cholesky(&cov[i * 15..i * 15 + 15]);
            for (name, v) in COV_COLUMNS.iter().zip(c) {
                rows.set(name, row, v as f32);
            }
        }

        // PID for long μ, π, K, p.
        let np = pid.len();
        counts.add("tracks with PID", np as u64);
        let mut xp = Vec::with_capacity(np * 8);
        for &(_, row, sp, p, eta, charge) in &pid {
            let n_tracks = n_long[ev_idx[row] * folds + fold[row] as usize] as f32;
            xp.extend([p.log10(), eta, n_tracks, charge]);
            xp.extend((0..4).map(|s| (s == sp) as u8 as f32));
        }
        let p_ev: Vec<u64> = pid.iter().map(|q| r_ev[q.0]).collect();
        let p_key: Vec<u32> = pid.iter().map(|q| r_key[q.0]).collect();
        let mut ismu = Vec::new();
        run_model(
            seed,
            streams::IS_MUON,
            m.is_muon,
            &xp,
            &p_ev,
            &p_key,
            &mut ismu,
        )?;
        let mut rich = Vec::new();
        run_model(seed, streams::RICH, m.rich, &xp, &p_ev, &p_key, &mut rich)?;
        let is_mu: Vec<bool> = (0..np)
            .map(|k| uniform(seed, streams::IS_MUON, p_ev[k], p_key[k], 0) < ismu[k])
            .collect();
        counts.add("isMuon", is_mu.iter().filter(|&&b| b).count() as u64);
        for (k, &(_, row, ..)) in pid.iter().enumerate() {
            rows.has_pid[row] = 1;
            rows.is_muon[row] = is_mu[k] as u8;
            for (j, name) in RICH.iter().enumerate() {
                rows.set(name, row, rich[k * 4 + j]);
            }
        }
        // MUON and GlobalPID (isMuon variant): PID + RICH (+ MUON).
        for muon in [true, false] {
            let sel: Vec<usize> = (0..np).filter(|&k| is_mu[k] == muon).collect();
            let ev: Vec<u64> = sel.iter().map(|&k| p_ev[k]).collect();
            let ky: Vec<u32> = sel.iter().map(|&k| p_key[k]).collect();
            let mut x = Vec::with_capacity(sel.len() * 14);
            let mut mu_out = Vec::new();
            if muon {
                let xm: Vec<f32> = sel
                    .iter()
                    .flat_map(|&k| xp[k * 8..k * 8 + 8].iter().copied())
                    .collect();
                run_model(seed, streams::MUON, m.muon, &xm, &ev, &ky, &mut mu_out)?;
            }
            for (i, &k) in sel.iter().enumerate() {
                x.extend_from_slice(&xp[k * 8..k * 8 + 8]);
                x.extend_from_slice(&rich[k * 4..k * 4 + 4]);
                if muon {
                    x.extend_from_slice(&mu_out[i * 2..i * 2 + 2]);
                }
            }
            let model = if muon {
                m.global_pid_muon
            } else {
                m.global_pid_no_muon
            };
            let mut g = Vec::new();
            run_model(seed, streams::GLOBAL_PID, model, &x, &ev, &ky, &mut g)?;
            for (i, &k) in sel.iter().enumerate() {
                let row = pid[k].1;
                if muon {
                    for (j, name) in MUON.iter().enumerate() {
                        rows.set(name, row, mu_out[i * 2 + j]);
                    }
                }
                for (j, name) in GLOBAL_PID.iter().enumerate() {
                    rows.set(name, row, g[i * 8 + j]);
                }
            }
        }
        Ok(())
    }

    fn neutral(
        &self,
        rows: &mut Rows,
        photons: &[usize],
        x: &[f32],
        counts: &mut Counts,
    ) -> Result<(), Error> {
        let m = &self.models;
        let seed = self.config.seed;
        let n = photons.len();
        counts.add("photons", n as u64);
        let events: Vec<u64> = photons.iter().map(|&r| rows.event[r]).collect();
        let keys: Vec<u32> = photons.iter().map(|&r| rows.key[r]).collect();
        for (k, &r) in photons.iter().enumerate() {
            rows.set("ecal_x", r, x[k * 5]);
            rows.set("ecal_y", r, x[k * 5 + 1]);
        }
        let mut o = Vec::new();
        run_model(
            seed,
            streams::PHOTON_EFFICIENCY,
            m.photon_efficiency,
            x,
            &events,
            &keys,
            &mut o,
        )?;
        let reco: Vec<usize> = (0..n)
            .filter(|&k| uniform(seed, streams::PHOTON_EFFICIENCY, events[k], keys[k], 0) < o[k])
            .collect();
        counts.add("reconstructed photons", reco.len() as u64);
        let xr: Vec<f32> = reco
            .iter()
            .flat_map(|&k| x[k * 5..k * 5 + 5].iter().copied())
            .collect();
        let ev: Vec<u64> = reco.iter().map(|&k| events[k]).collect();
        let ky: Vec<u32> = reco.iter().map(|&k| keys[k]).collect();
        run_model(
            seed,
            streams::PHOTON_RESOLUTION,
            m.photon_resolution,
            &xr,
            &ev,
            &ky,
            &mut o,
        )?;
        for (i, &k) in reco.iter().enumerate() {
            let r = photons[k];
            let f = &x[k * 5..k * 5 + 5];
            let o = &o[i * 6..i * 6 + 6];
            rows.photon_reco[r] = 1;
            for (name, v) in [
                ("reco_ecal_x", f[0] + o[0]),
                ("reco_ecal_y", f[1] + o[1]),
                ("reco_e", 10f32.powf(f[2]) * (1.0 + o[2])),
                ("photon_id", o[3]),
                ("is_not_e", o[4]),
                ("is_not_h", o[5]),
            ] {
                rows.set(name, r, v);
            }
        }
        Ok(())
    }
}
