// Timing and agreement host for a SOFIE-generated header (the `sofie` PyPI package's C++ output,
// symbolic batch dimension N, weights read from its .dat file, matrix products through OpenBLAS).
//
//   g++ -O3 -march=native -DSOFIE_HEADER='"x.hxx"' [-DHAS_NOISE] bench_sofie.cpp -lopenblas
//   OPENBLAS_NUM_THREADS=1 ./bench_sofie WEIGHTS.dat N_IN N_NOISE N_OUT DATA.bin ROWS REPS MIN_SECONDS [OUT.bin]
//
// One Session sized for N = 1024 rows. With OUT.bin: writes the outputs of all ROWS rows computed
// 1024 at a time, then those of the first 64 rows computed one row per call, and exits. Otherwise
// prints a JSON object with ns per sample per repetition at batch 1 (doInfer with N = 1, rows in turn)
// and at batch 1024; each repetition runs at least MIN_SECONDS after an untimed warm-up.
#include SOFIE_HEADER

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

static int n_in, n_noise, n_out, rows;
static std::vector<float> in, noise, out;
static volatile float sink;

static void infer(const SOFIE_model::Session &s, size_t n, size_t row) {
#ifdef HAS_NOISE
  SOFIE_model::doInfer(s, n, in.data() + row * n_in, noise.data() + row * n_noise, out.data() + row * n_out);
#else
  SOFIE_model::doInfer(s, n, in.data() + row * n_in, out.data() + row * n_out);
#endif
}

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static long work(const SOFIE_model::Session &s, int batch, long units, int &next) {
  long done = 0;
  for (long u = 0; u < units; ++u) {
    if (batch == 1) {
      infer(s, 1, next);
      next = (next + 1) % rows;
      done += 1;
    } else {
      infer(s, batch, 0);
      done += batch;
    }
  }
  sink = sink + out[0];
  return done;
}

static void measure(const SOFIE_model::Session &s, const char *label, int batch, int reps, double min_s, bool last) {
  int next = 0;
  long units = 1;
  for (;;) {
    double t0 = now();
    work(s, batch, units, next);
    double dt = now() - t0;
    if (dt >= min_s) break;
    long grow = dt > 0 ? (long)(units * (1.2 * min_s / dt)) + 1 : units * 10;
    units = grow > units * 10 ? units * 10 : grow;
  }
  std::printf("\"%s\": {\"calls_per_rep\": %ld, \"ns\": [", label, units);
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    long done = work(s, batch, units, next);
    double dt = now() - t0;
    std::printf("%s%.1f", r ? ", " : "", 1e9 * dt / (double)done);
  }
  std::printf("]}%s", last ? "" : ", ");
  std::fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 9 && argc != 10) {
    std::fprintf(stderr, "usage: %s WEIGHTS.dat N_IN N_NOISE N_OUT DATA.bin ROWS REPS MIN_SECONDS [OUT.bin]\n", argv[0]);
    return 2;
  }
  n_in = std::atoi(argv[2]);
  n_noise = std::atoi(argv[3]);
  n_out = std::atoi(argv[4]);
  rows = std::atoi(argv[6]);
  int reps = std::atoi(argv[7]);
  double min_s = std::atof(argv[8]);
  if (rows < 1024 || rows % 1024 != 0) { std::fprintf(stderr, "ROWS must be a multiple of 1024\n"); return 2; }
  in.resize((size_t)rows * n_in);
  noise.resize((size_t)rows * (n_noise ? n_noise : 1));
  out.resize((size_t)rows * n_out);
  FILE *f = std::fopen(argv[5], "rb");
  if (!f) { std::fprintf(stderr, "cannot open %s\n", argv[5]); return 1; }
  if (std::fread(in.data(), 4, in.size(), f) != in.size() ||
      (n_noise && std::fread(noise.data(), 4, noise.size(), f) != noise.size())) {
    std::fprintf(stderr, "%s: too short\n", argv[5]);
    return 1;
  }
  std::fclose(f);
  SOFIE_model::Session s(argv[1], 1024);
  if (argc == 10) {
    for (int r = 0; r < rows; r += 1024) infer(s, 1024, r);
    std::vector<float> batch(out);
    for (int r = 0; r < 64; ++r) infer(s, 1, r);
    FILE *o = std::fopen(argv[9], "wb");
    if (!o) { std::fprintf(stderr, "cannot write %s\n", argv[9]); return 1; }
    std::fwrite(batch.data(), 4, batch.size(), o);
    std::fwrite(out.data(), 4, (size_t)64 * n_out, o);
    std::fclose(o);
    return 0;
  }
  std::printf("{");
  measure(s, "b1", 1, reps, min_s, false);
  measure(s, "b1024", 1024, reps, min_s, true);
  std::printf("}\n");
  return 0;
}
