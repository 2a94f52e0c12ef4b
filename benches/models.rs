//! Criterion benchmarks of the embedded demo models: time per batch at batch 1, 64 and 1024 on the
//! active ISA tier (`FLASHC_ISA` forces one). `flashc bench` prints the summary table with the FMA
//! peak and the scikinC-style baseline measured in the same run.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const DEMO_MODELS: [&str; 3] = ["tracking_acceptance", "tracking_resolution", "pid_gan"];

fn models(c: &mut Criterion) {
    let tier = runtime::isa::active();
    for name in DEMO_MODELS {
        let model = generated::by_name(name).unwrap_or_else(|| panic!("demo model {name} is not embedded"));
        let info = model.info();
        let mut group = c.benchmark_group(format!("{name}/{tier}"));
        for batch in [1usize, 64, 1024] {
            let inputs: Vec<f32> = (0..batch * info.n_inputs).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let noise: Vec<f32> = (0..batch * info.n_noise).map(|i| ((i * 104729) % 1000) as f32 / 500.0 - 1.0).collect();
            let mut out = vec![0f32; batch * info.n_outputs];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
                b.iter(|| model.run_on(tier, black_box(&inputs), black_box(&noise), &mut out).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, models);
criterion_main!(benches);
