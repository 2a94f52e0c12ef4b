//! Criterion benchmarks of the simulation pipelines on particle-gun events, one thread, batches
//! of 32 events: the Lamarr charged chain with PID (throughput in charged particles), the whole
//! Lamarr pipeline (charged + photons), and FlashSim (throughput in events).
//! `flashc bench` prints the same figures as a table.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runtime::event::{GenEvent, GunConfig, Momentum, Multiplicity, ParticleGun, Species};
use runtime::sim::flashsim::{FlashSim, FlashSimConfig, FlashSimModels, ObjectModels};
use runtime::sim::lamarr::{Lamarr, LamarrConfig, LamarrModels};
use runtime::sim::{Counts, Pipeline, Table};
use runtime::Model;

const CHUNK: usize = 32;

fn m(name: &str) -> &'static dyn Model {
    generated::by_name(name).unwrap_or_else(|| panic!("demo model {name} is not embedded"))
}

fn events(config: GunConfig) -> Vec<(u64, GenEvent)> {
    let gun = ParticleGun::new(config).expect("valid gun");
    (0..256u64).map(|k| (k, gun.event(k))).collect()
}

fn run(p: &dyn Pipeline, events: &[(u64, GenEvent)], table: &mut Table, counts: &mut Counts) {
    for c in events.chunks(CHUNK) {
        let evs: Vec<(u64, &GenEvent)> = c.iter().map(|(i, e)| (*i, e)).collect();
        table.clear();
        p.simulate(&evs, table, counts).expect("simulates");
        black_box(&*table);
    }
}

fn bench(c: &mut Criterion, name: &str, p: &dyn Pipeline, evs: &[(u64, GenEvent)], counted: &[&str]) {
    let mut table = Table::new(&p.schema());
    let mut counts = Counts::default();
    run(p, evs, &mut table, &mut counts);
    let n: u64 = counted.iter().map(|k| counts.get(k)).sum();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n));
    g.bench_function("256 events", |b| b.iter(|| run(p, evs, &mut table, &mut Counts::default())));
    g.finish();
}

fn pipelines(c: &mut Criterion) {
    let lamarr_models = LamarrModels {
        acceptance: m("lamarr_acceptance"),
        efficiency: m("lamarr_efficiency"),
        resolution: m("lamarr_resolution"),
        covariance: m("lamarr_covariance"),
        is_muon: m("lamarr_ismuon"),
        rich: m("lamarr_rich"),
        muon: m("lamarr_muon"),
        global_pid_muon: m("lamarr_gpid_muon"),
        global_pid_no_muon: m("lamarr_gpid_nomuon"),
        photon_efficiency: m("lamarr_photon_efficiency"),
        photon_resolution: m("lamarr_photon_resolution"),
    };
    let forward = events(GunConfig { seed: 1, ..GunConfig::default() });
    let charged = Lamarr::new(lamarr_models, LamarrConfig { seed: 1, neutral: false, ..Default::default() }).unwrap();
    bench(c, "lamarr charged with PID (particles)", &charged, &forward, &["charged particles"]);
    let all = Lamarr::new(lamarr_models, LamarrConfig { seed: 1, ..Default::default() }).unwrap();
    bench(c, "lamarr charged + neutral (particles)", &all, &forward, &["charged particles", "photons"]);

    let object = |o: &str| ObjectModels {
        efficiency: m(&format!("flashsim_{o}_efficiency")),
        flow: m(&format!("flashsim_{o}_flow")),
        targets: m(&format!("flashsim_{o}_targets")),
    };
    let fs = FlashSim::new(
        FlashSimModels { muon: object("muon"), electron: object("electron") },
        FlashSimConfig { seed: 1, ..Default::default() },
    )
    .unwrap();
    let mut species = Vec::new();
    for (id, w) in [(13, 0.3), (11, 0.3), (211, 0.4)] {
        species.push(Species::new(id, w));
        species.push(Species::new(-id, w));
    }
    let central = events(GunConfig {
        seed: 1,
        species,
        momentum: Momentum::Pt { min: 5.0, max: 150.0 },
        eta: (-2.6, 2.6),
        multiplicity: Multiplicity::Poisson(6.0),
        ..GunConfig::default()
    });
    bench(c, "flashsim muons + electrons (events)", &fs, &central, &["events"]);
}

criterion_group!(benches, pipelines);
criterion_main!(benches);
