//! The pipelines' models (the embedded demo models, see docs/toy-detector.md) and the particle
//! gun each pipeline runs by default.

use anyhow::{Context, Result};
use runtime::event::{FourVector, GunConfig, Momentum, Multiplicity, Species};
use runtime::sim::flashsim::{FlashSim, FlashSimConfig, FlashSimModels, ObjectModels};
use runtime::sim::lamarr::{Lamarr, LamarrConfig, LamarrModels};
use runtime::sim::Pipeline;
use runtime::Model;

use crate::device::{self, Device, Runner};

/// The pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PipelineKind {
    /// LHCb Lamarr-like: charged particles (tracking, covariance, PID) and photons.
    Lamarr,
    /// CMS FlashSim-like: muon and electron objects from efficiency + flow-matching models.
    Flashsim,
}

impl PipelineKind {
    pub fn name(self) -> &'static str {
        match self {
            PipelineKind::Lamarr => "lamarr",
            PipelineKind::Flashsim => "flashsim",
        }
    }
}

/// The embedded models of the Lamarr pipelines, by stage.
pub const LAMARR: [&str; 11] = [
    "lamarr_acceptance",
    "lamarr_efficiency",
    "lamarr_resolution",
    "lamarr_covariance",
    "lamarr_ismuon",
    "lamarr_rich",
    "lamarr_muon",
    "lamarr_gpid_muon",
    "lamarr_gpid_nomuon",
    "lamarr_photon_efficiency",
    "lamarr_photon_resolution",
];

/// The embedded models of the FlashSim pipeline: efficiency, flow, targets per object.
pub const FLASHSIM: [&str; 6] = [
    "flashsim_muon_efficiency",
    "flashsim_muon_flow",
    "flashsim_muon_targets",
    "flashsim_electron_efficiency",
    "flashsim_electron_flow",
    "flashsim_electron_targets",
];

/// The models, placed on a device.
pub struct Models {
    device: Device,
    runners: Vec<(&'static str, Runner)>,
}

impl Models {
    /// The embedded models of `pipelines`, on `device`.
    pub fn new(device: Device, pipelines: &[PipelineKind]) -> Result<Models> {
        let mut m = Models {
            device,
            runners: Vec::new(),
        };
        let mut notices = Vec::new();
        for p in pipelines {
            m.load(
                match p {
                    PipelineKind::Lamarr => &LAMARR,
                    PipelineKind::Flashsim => &FLASHSIM,
                },
                &mut notices,
            )?;
        }
        // One line for the run, not one per model.
        if let Some(first) = notices.first() {
            match notices.len() {
                1 => eprintln!("{first}"),
                n => eprintln!("{first} (and {} more models)", n - 1),
            }
        }
        Ok(m)
    }

    fn load(&mut self, names: &[&'static str], notices: &mut Vec<String>) -> Result<()> {
        for &name in names {
            if self.runners.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let model = generated::by_name(name).with_context(|| {
                format!(
                    "this flashc has no embedded model `{name}`; hint: models/ must hold the demo \
                     models (python models/toy_detector.py writes them), then rebuild"
                )
            })?;
            let (runner, notice) = device::place(model, self.device);
            notices.extend(notice);
            self.runners.push((name, runner));
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&dyn Model> {
        match self.runners.iter().find(|(n, _)| *n == name) {
            Some((_, r)) => Ok(r),
            None => anyhow::bail!(
                "model `{name}` was not loaded (Models::new names the pipelines to load)"
            ),
        }
    }

    /// The pipeline `kind` with its embedded models.
    pub fn pipeline(
        &self,
        kind: PipelineKind,
        seed: u64,
        folds: u32,
    ) -> Result<Box<dyn Pipeline + '_>> {
        Ok(match kind {
            PipelineKind::Lamarr => Box::new(self.lamarr(LamarrConfig {
                seed,
                folds,
                ..LamarrConfig::default()
            })?),
            PipelineKind::Flashsim => Box::new(self.flashsim(FlashSimConfig {
                seed,
                folds,
                ..FlashSimConfig::default()
            })?),
        })
    }

    /// The Lamarr pipelines with the embedded models.
    pub fn lamarr(&self, config: LamarrConfig) -> Result<Lamarr<'_>> {
        {
            {
                let m = LAMARR
                    .iter()
                    .map(|n| self.get(n))
                    .collect::<Result<Vec<_>>>()?;
                let g = |i: usize| m[i];
                let models = LamarrModels {
                    acceptance: g(0),
                    efficiency: g(1),
                    resolution: g(2),
                    covariance: g(3),
                    is_muon: g(4),
                    rich: g(5),
                    muon: g(6),
                    global_pid_muon: g(7),
                    global_pid_no_muon: g(8),
                    photon_efficiency: g(9),
                    photon_resolution: g(10),
                };
                Ok(Lamarr::new(models, config)?)
            }
        }
    }

    /// The FlashSim pipeline with the embedded models.
    pub fn flashsim(&self, config: FlashSimConfig) -> Result<FlashSim<'_>> {
        {
            {
                let m = FLASHSIM
                    .iter()
                    .map(|n| self.get(n))
                    .collect::<Result<Vec<_>>>()?;
                let g = |i: usize| m[i];
                let models = FlashSimModels {
                    muon: ObjectModels {
                        efficiency: g(0),
                        flow: g(1),
                        targets: g(2),
                    },
                    electron: ObjectModels {
                        efficiency: g(3),
                        flow: g(4),
                        targets: g(5),
                    },
                };
                Ok(FlashSim::new(models, config)?)
            }
        }
    }
}

/// The particle gun of a pipeline.
pub fn gun_config(kind: PipelineKind, seed: u64) -> GunConfig {
    match kind {
        // The forward-spectrometer default: π, K, p, μ, e of both signs and photons, p 2..100 GeV,
        // η 2..5, Poisson(20) per event.
        PipelineKind::Lamarr => GunConfig {
            seed,
            ..GunConfig::default()
        },
        // A central detector: muons, electrons and pions, pT 5..150 GeV, |η| < 2.6, Poisson(6).
        PipelineKind::Flashsim => {
            let mut species = Vec::new();
            for (id, w) in [(13, 0.3), (11, 0.3), (211, 0.4)] {
                species.push(Species::new(id, w));
                species.push(Species::new(-id, w));
            }
            GunConfig {
                seed,
                species,
                momentum: Momentum::Pt {
                    min: 5.0,
                    max: 150.0,
                },
                eta: (-2.6, 2.6),
                multiplicity: Multiplicity::Poisson(6.0),
                origin: FourVector::ZERO,
                origin_sigma: FourVector::new(0.01, 0.01, 35.0, 0.0),
            }
        }
    }
}

/// A one-line description of a pipeline's default gun (written into the output's metadata).
pub fn gun_name(kind: PipelineKind) -> &'static str {
    match kind {
        PipelineKind::Lamarr => "forward: pi K p mu e photons, p 2-100 GeV, eta 2-5, Poisson(20)",
        PipelineKind::Flashsim => "central: mu e pi, pT 5-150 GeV, |eta| < 2.6, Poisson(6)",
    }
}
