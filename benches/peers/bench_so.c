/* Timing host for shared libraries with the scikinC / flashc C ABI, loaded with dlopen + dlsym as
 * Lamarr (SQLamarr BasePlugin, LbLamarr) loads them.
 *
 *   bench_so LIB SYMBOL ABI N_IN N_NOISE N_OUT DATA.bin ROWS REPS MIN_SECONDS
 *
 * ABI: "flashc"  -> float* SYMBOL(out, in[, random]) and int SYMBOL_batch(out, in, random, n)
 *      "rowonly" -> float* SYMBOL(out, in[, random]) only (scikinC); batch n is n row calls
 * DATA.bin: ROWS rows of N_IN inputs followed by ROWS rows of N_NOISE noise values (f32, row-major).
 * Prints one JSON object: ns per sample for every repetition at batch 1 (one row per call, the rows
 * taken in turn) and at batch 1024 (one batch call of 1024 rows, or 1024 row calls for rowonly).
 * Each repetition runs at least MIN_SECONDS; a first, untimed repetition warms up. */
#define _POSIX_C_SOURCE 199309L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef float *(*row2_fn)(float *, const float *);
typedef float *(*row3_fn)(float *, const float *, const float *);
typedef int (*batch_fn)(float *, const float *, const float *, size_t);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *row_fn;
static batch_fn bfn;
static int n_in, n_noise, n_out, rows;
static float *in, *noise, *out;
static volatile float sink;

static int call_row(int i) {
  const float *x = in + (size_t)i * n_in;
  float *y = out + (size_t)i * n_out;
  float *r;
  if (n_noise)
    r = ((row3_fn)row_fn)(y, x, noise + (size_t)i * n_noise);
  else
    r = ((row2_fn)row_fn)(y, x);
  return r != NULL;
}

/* One unit of work: batch 1 -> one row call (next row); batch B -> B rows. Returns samples done. */
static long work(int batch, long units, int *next) {
  long done = 0;
  for (long u = 0; u < units; ++u) {
    if (batch == 1) {
      if (!call_row(*next)) { fprintf(stderr, "row call failed\n"); exit(3); }
      *next = (*next + 1) % rows;
      done += 1;
    } else if (bfn) {
      if (bfn(out, in, n_noise ? noise : NULL, (size_t)batch) != 0) { fprintf(stderr, "batch call failed\n"); exit(3); }
      done += batch;
    } else {
      for (int i = 0; i < batch; ++i)
        if (!call_row(i)) { fprintf(stderr, "row call failed\n"); exit(3); }
      done += batch;
    }
  }
  sink += out[0];
  return done;
}

static void measure(const char *label, int batch, int reps, double min_s, int last) {
  int next = 0;
  long units = 1;
  /* calibrate (and warm up): grow until one repetition takes min_s */
  for (;;) {
    double t0 = now();
    work(batch, units, &next);
    double dt = now() - t0;
    if (dt >= min_s) break;
    long grow = dt > 0 ? (long)(units * (1.2 * min_s / dt)) + 1 : units * 10;
    units = grow > units * 10 ? units * 10 : grow;
  }
  printf("\"%s\": {\"calls_per_rep\": %ld, \"ns\": [", label, units);
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    long done = work(batch, units, &next);
    double dt = now() - t0;
    printf("%s%.1f", r ? ", " : "", 1e9 * dt / (double)done);
  }
  printf("]}%s", last ? "" : ", ");
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: %s LIB SYMBOL flashc|rowonly N_IN N_NOISE N_OUT DATA.bin ROWS REPS MIN_SECONDS\n", argv[0]);
    return 2;
  }
  const char *lib = argv[1], *sym = argv[2], *abi = argv[3];
  n_in = atoi(argv[4]);
  n_noise = atoi(argv[5]);
  n_out = atoi(argv[6]);
  rows = atoi(argv[8]);
  int reps = atoi(argv[9]);
  double min_s = atof(argv[10]);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen %s: %s\n", lib, dlerror()); return 1; }
  row_fn = dlsym(h, sym);
  if (!row_fn) { fprintf(stderr, "dlsym %s in %s: %s\n", sym, lib, dlerror()); return 1; }
  bfn = NULL;
  if (strcmp(abi, "flashc") == 0) {
    char name[256];
    snprintf(name, sizeof name, "%s_batch", sym);
    bfn = (batch_fn)dlsym(h, name);
    if (!bfn) { fprintf(stderr, "dlsym %s in %s: %s\n", name, lib, dlerror()); return 1; }
  } else if (strcmp(abi, "rowonly") != 0) {
    fprintf(stderr, "ABI must be flashc or rowonly, not %s\n", abi);
    return 2;
  }
  in = malloc(sizeof(float) * (size_t)rows * n_in);
  noise = malloc(sizeof(float) * (size_t)rows * (n_noise ? n_noise : 1));
  out = malloc(sizeof(float) * (size_t)rows * n_out);
  FILE *f = fopen(argv[7], "rb");
  if (!f) { fprintf(stderr, "cannot open %s\n", argv[7]); return 1; }
  if (fread(in, sizeof(float), (size_t)rows * n_in, f) != (size_t)rows * n_in ||
      (n_noise && fread(noise, sizeof(float), (size_t)rows * n_noise, f) != (size_t)rows * n_noise)) {
    fprintf(stderr, "%s: expected %d rows of %d inputs + %d noise\n", argv[7], rows, n_in, n_noise);
    return 1;
  }
  fclose(f);
  if (rows < 1024) { fprintf(stderr, "need at least 1024 rows\n"); return 2; }
  printf("{");
  measure("b1", 1, reps, min_s, 0);
  measure("b1024", 1024, reps, min_s, 1);
  printf("}\n");
  return 0;
}
