/* The batch-1 memory floor of a dense network: the time one core takes to read N bytes (the
 * network's f32 weights) that are already in its caches, with wide loads and no other work.
 * An engine that streams every weight once per row cannot run one row faster than this.
 *
 *   gcc -O3 -march=native -o l2_floor l2_floor.c && ./l2_floor BYTES REPS MIN_SECONDS
 *
 * Prints {"b1": {"calls_per_rep": K, "ns": [ns per pass, one per repetition]}}. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static v16 *buf;
static size_t nv;
static volatile float sink;

static void passes(long k) {
  v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
  for (long r = 0; r < k; ++r)
    for (size_t i = 0; i + 4 <= nv; i += 4) {
      s0 += buf[i];
      s1 += buf[i + 1];
      s2 += buf[i + 2];
      s3 += buf[i + 3];
    }
  v16 s = s0 + s1 + s2 + s3;
  sink = s[0] + s[15];
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s BYTES REPS MIN_SECONDS\n", argv[0]); return 2; }
  size_t bytes = (size_t)atol(argv[1]);
  int reps = atoi(argv[2]);
  double min_s = atof(argv[3]);
  nv = (bytes + 255) / 256 * 4;
  buf = aligned_alloc(64, nv * sizeof(v16));
  if (!buf) return 1;
  for (size_t i = 0; i < nv; ++i)
    for (int j = 0; j < 16; ++j) buf[i][j] = 1e-7f * (float)(i + j);
  long k = 1;
  for (;;) {
    double t0 = now();
    passes(k);
    double dt = now() - t0;
    if (dt >= min_s) break;
    k = dt > 0 && (long)(k * 1.2 * min_s / dt) + 1 < k * 10 ? (long)(k * 1.2 * min_s / dt) + 1 : k * 10;
  }
  printf("{\"b1\": {\"calls_per_rep\": %ld, \"ns\": [", k);
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    passes(k);
    printf("%s%.1f", r ? ", " : "", 1e9 * (now() - t0) / (double)k);
  }
  printf("]}}\n");
  return 0;
}
