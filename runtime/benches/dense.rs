//! Dense kernel throughput: 128×128 tanh + residual (a Lamarr-style layer) at batch 1, 64 and
//! 1024 on every supported tier, reported as GFLOP/s (2·n_in·n_out per row), plus the tier's
//! FMA peak for comparison.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::dense::{self, Dense, Residual};
use runtime::{isa, peak, Activation};
use std::hint::black_box;

fn bench_dense(c: &mut Criterion) {
    let (n_in, n_out) = (128usize, 128usize);
    let w: Vec<f32> = (0..n_in * n_out).map(|i| ((i * 7919) % 1000) as f32 * 1e-4 - 0.05).collect();
    let b: Vec<f32> = (0..n_out).map(|i| i as f32 * 1e-3).collect();
    let packed = dense::pack(&w, n_in, n_out);
    let bias = dense::pack_bias(&b, n_out);
    let d = Dense { n_in, n_out, kernel: &packed, bias: &bias, act: Activation::Tanh, residual: Residual::AfterAct };
    for tier in isa::supported() {
        eprintln!("{tier}: FMA peak {:.1} GFLOP/s", peak::fma_peak_gflops(tier));
        let mut g = c.benchmark_group(format!("dense128_tanh_res/{tier}"));
        for rows in [1usize, 64, 1024] {
            let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 31) % 97) as f32 * 0.01 - 0.5).collect();
            let mut y = vec![0.0f32; rows * n_out];
            g.throughput(Throughput::Elements((2 * n_in * n_out * rows) as u64));
            g.bench_with_input(BenchmarkId::from_parameter(rows), &rows, |bch, &rows| {
                bch.iter(|| dense::dense(tier, &d, rows, black_box(&x), n_in, &mut y, n_out, Some((&x, n_in))))
            });
        }
        // Kernel alone (no activation, no residual) at a large batch.
        let rows = 1024;
        let lin = Dense { act: Activation::Linear, residual: Residual::None, ..d };
        let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 31) % 97) as f32 * 0.01 - 0.5).collect();
        let mut y = vec![0.0f32; rows * n_out];
        g.throughput(Throughput::Elements((2 * n_in * n_out * rows) as u64));
        g.bench_function("linear_1024", |bch| bch.iter(|| dense::dense(tier, &lin, rows, black_box(&x), n_in, &mut y, n_out, None)));
        g.finish();
    }
}

criterion_group!(benches, bench_dense);
criterion_main!(benches);
