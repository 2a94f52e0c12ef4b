//! Normals and uniforms per second from the counter-based RNG, on the active tier and on the
//! portable tier; plus the batch noise fill a GAN consumes (1024 rows × 8 and × 128 draws).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::isa::{self, Tier};
use runtime::rng::{self, Distribution, Stream};
use std::hint::black_box;

fn fills(c: &mut Criterion) {
    let n = 1 << 14;
    let mut out = vec![0f32; n];
    let mut g = c.benchmark_group("rng_fill");
    g.throughput(Throughput::Elements(n as u64));
    let mut tiers = vec![isa::active()];
    if isa::active() != Tier::Portable {
        tiers.push(Tier::Portable);
    }
    for tier in tiers {
        for dist in [Distribution::Normal, Distribution::Uniform] {
            let st = Stream::new(42, 7, 3, 1);
            g.bench_function(BenchmarkId::new(format!("{dist:?}"), tier.name()), |b| {
                b.iter(|| st.fill_on(tier, dist, black_box(0), &mut out))
            });
        }
    }
    g.finish();
}

fn batches(c: &mut Criterion) {
    let rows = 1024;
    let events = vec![5u64; rows];
    let particles: Vec<u32> = (0..rows as u32).collect();
    let mut g = c.benchmark_group("rng_batch_normals");
    for n in [8usize, 128] {
        let mut out = vec![0f32; rows * n];
        g.throughput(Throughput::Elements((rows * n) as u64));
        g.bench_function(BenchmarkId::new("rows1024", n), |b| {
            b.iter(|| {
                rng::fill_batch(
                    42,
                    0,
                    Distribution::Normal,
                    0,
                    black_box(&events),
                    &particles,
                    &mut out,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fills, batches);
criterion_main!(benches);
