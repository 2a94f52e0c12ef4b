/* A C host that uses a flashc-compiled shared library the way SQLamarr uses scikinC libraries:
 * dlopen(path, RTLD_LAZY), dlsym of each model's function, one call per row.
 *
 *   sqlamarr_like run LIB NAME ROWS IN.f32 NOISE.f32 OUT_ROW.f32 OUT_BATCH.f32
 *       Runs ROWS rows row by row and in one batch, writes both outputs (raw little-endian f32),
 *       checks the error codes, in-place calls and metadata, and prints what it found.
 *   sqlamarr_like bench SECONDS LIB NAME N_IN N_NOISE N_OUT BATCH ROWS IN.f32 NOISE.f32 [...]
 *       Per group of 9 arguments: times NAME from LIB (BATCH 0: the row function, one call per
 *       row; BATCH > 0: NAME_batch over BATCH rows per call) cycling over ROWS rows, and prints
 *       "bench NAME BATCH min_ns median_ns" per row. Sizes are given because a scikinC library has
 *       no metadata functions.
 *
 * Built by tests/c_abi.rs with  cc -std=c99 -Wall -Wextra -pedantic-errors -O2 ... -ldl
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef float* (*plain_fn)(float*, const float*);
typedef float* (*gen_fn)(float*, const float*, const float*);
typedef int (*batch_fn)(float*, const float*, const float*, size_t);
typedef size_t (*size_fn)(void);
typedef const char* (*name_fn)(size_t);
typedef const char* (*str_fn)(void);

static void* handle_or_die(const char* path) {
    void* h = dlopen(path, RTLD_LAZY);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        exit(2);
    }
    return h;
}

/* dlsym as SQLamarr does, with the POSIX-sanctioned cast through void**. */
static void* sym_or_die(void* h, const char* name, const char* suffix) {
    char full[512];
    void* p;
    snprintf(full, sizeof full, "%s%s", name, suffix);
    dlerror();
    p = dlsym(h, full);
    if (!p) {
        fprintf(stderr, "dlsym %s: %s\n", full, dlerror());
        exit(2);
    }
    return p;
}

static float* read_f32(const char* path, size_t count) {
    float* buf = (float*)malloc((count ? count : 1) * sizeof(float));
    FILE* f = fopen(path, "rb");
    if (!buf || !f || fread(buf, sizeof(float), count, f) != count) {
        fprintf(stderr, "cannot read %zu floats from %s\n", count, path);
        exit(2);
    }
    fclose(f);
    return buf;
}

static void write_f32(const char* path, const float* data, size_t count) {
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(data, sizeof(float), count, f) != count) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* One row through the scikinC-style entry point (2 or 3 arguments). */
static float* call_row(void* fn, size_t n_noise, float* out, const float* in, const float* rnd) {
    plain_fn p;
    gen_fn g;
    if (n_noise == 0) {
        memcpy(&p, &fn, sizeof p);
        return p(out, in);
    }
    memcpy(&g, &fn, sizeof g);
    return g(out, in, rnd);
}

static int failures = 0;
#define CHECK(cond, what)                                   \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "FAILED: %s\n", what);          \
            failures++;                                     \
        }                                                   \
    } while (0)

static int run(int argc, char** argv) {
    const char* name;
    void *h, *row;
    size_t rows, ni, nz, no, r, i, width;
    float *in, *rnd, *out_row, *out_batch, *buf;
    batch_fn batch;
    name_fn in_name, out_name;
    str_fn dist, isa;
    size_fn n_in_fn, n_noise_fn, n_out_fn;
    if (argc != 9) {
        fprintf(stderr, "usage: %s run LIB NAME ROWS IN NOISE OUT_ROW OUT_BATCH\n", argv[0]);
        return 2;
    }
    h = handle_or_die(argv[2]);
    name = argv[3];
    rows = (size_t)strtoul(argv[4], NULL, 10);
    row = sym_or_die(h, name, "");
    *(void**)(&batch) = sym_or_die(h, name, "_batch");
    *(void**)(&n_in_fn) = sym_or_die(h, name, "_n_inputs");
    *(void**)(&n_noise_fn) = sym_or_die(h, name, "_n_noise");
    *(void**)(&n_out_fn) = sym_or_die(h, name, "_n_outputs");
    *(void**)(&in_name) = sym_or_die(h, name, "_input_name");
    *(void**)(&out_name) = sym_or_die(h, name, "_output_name");
    *(void**)(&dist) = sym_or_die(h, name, "_noise_distribution");
    *(void**)(&isa) = sym_or_die(h, name, "_isa");
    ni = n_in_fn();
    nz = n_noise_fn();
    no = n_out_fn();
    printf("model %s: %zu inputs, %zu noise (%s), %zu outputs, isa %s\n", name, ni, nz, dist(), no, isa());
    for (i = 0; i < ni; i++) printf("input %zu %s\n", i, in_name(i));
    for (i = 0; i < no; i++) printf("output %zu %s\n", i, out_name(i));
    CHECK(in_name(ni) == NULL && out_name(no) == NULL, "names past the end are NULL");

    in = read_f32(argv[5], rows * ni);
    rnd = read_f32(argv[6], rows * nz);
    out_row = (float*)calloc(rows * no + 1, sizeof(float));
    out_batch = (float*)calloc(rows * no + 1, sizeof(float));
    for (r = 0; r < rows; r++) {
        float* o = out_row + r * no;
        CHECK(call_row(row, nz, o, in + r * ni, rnd + r * nz) == o, "the row function returns out");
    }
    CHECK(batch(out_batch, in, rnd, rows) == 0, "the batch function returns 0");
    write_f32(argv[7], out_row, rows * no);
    write_f32(argv[8], out_batch, rows * no);
    for (r = 0; r < rows && r < 3; r++) {
        printf("row %zu:", r);
        for (i = 0; i < no; i++) printf(" %.7g", out_row[r * no + i]);
        printf("\n");
    }

    /* In place (out == in), as scikinC allowed: same result as out-of-place. */
    width = ni > no ? ni : no;
    buf = (float*)calloc(width + 1, sizeof(float));
    for (r = 0; r < rows && r < 16; r++) {
        memcpy(buf, in + r * ni, ni * sizeof(float));
        CHECK(call_row(row, nz, buf, buf, rnd + r * nz) == buf, "in-place row call succeeds");
        CHECK(memcmp(buf, out_row + r * no, no * sizeof(float)) == 0, "in-place row call gives the same result");
    }
    /* In-place batch over the first rows: inputs copied into a buffer wide enough for both. */
    if (rows >= 4) {
        float* inplace = (float*)calloc(4 * width + 1, sizeof(float));
        memcpy(inplace, in, 4 * ni * sizeof(float));
        CHECK(batch(inplace, inplace, rnd, 4) == 0, "in-place batch succeeds");
        CHECK(memcmp(inplace, out_row, 4 * no * sizeof(float)) == 0, "in-place batch gives the same result");
        free(inplace);
    }

    /* Errors: codes, never a crash. */
    CHECK(batch(NULL, in, rnd, 1) == 1, "NULL out gives FLASHC_ERR_NULL");
    CHECK(batch(out_batch, NULL, rnd, 1) == 1, "NULL in gives FLASHC_ERR_NULL");
    if (nz > 0) CHECK(batch(out_batch, in, NULL, 1) == 1, "NULL random gives FLASHC_ERR_NULL for a generator");
    else CHECK(batch(out_batch, in, NULL, 1) == 0, "random may be NULL for a model without noise");
    CHECK(batch(NULL, NULL, NULL, 0) == 0, "n = 0 is a no-op");
    CHECK(batch(out_batch, in, rnd, (size_t)-1) == 2, "an overflowing n gives FLASHC_ERR_SIZE");
    CHECK(call_row(row, nz, NULL, in, rnd) == NULL, "the row function returns NULL for NULL out");
    CHECK(call_row(row, nz, out_batch, NULL, rnd) == NULL, "the row function returns NULL for NULL in");

    free(buf);
    free(in);
    free(rnd);
    free(out_row);
    free(out_batch);
    dlclose(h);
    if (failures) return 1;
    printf("checks ok\n");
    return 0;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static volatile float sink;

static int bench(int argc, char** argv) {
    double seconds;
    int g;
    if (argc < 3 || (argc - 3) % 9 != 0) {
        fprintf(stderr, "usage: %s bench SECONDS [LIB NAME N_IN N_NOISE N_OUT BATCH ROWS IN NOISE]...\n", argv[0]);
        return 2;
    }
    seconds = atof(argv[2]);
    for (g = 3; g < argc; g += 9) {
        enum { REPS = 7 };
        void* h = handle_or_die(argv[g]);
        const char* name = argv[g + 1];
        size_t ni = (size_t)strtoul(argv[g + 2], NULL, 10), nz = (size_t)strtoul(argv[g + 3], NULL, 10);
        size_t no = (size_t)strtoul(argv[g + 4], NULL, 10), nb = (size_t)strtoul(argv[g + 5], NULL, 10);
        size_t rows = (size_t)strtoul(argv[g + 6], NULL, 10), cur = 0, calls = 0, per_rep, k, per_call_rows;
        float* in = read_f32(argv[g + 7], rows * ni);
        float* rnd = read_f32(argv[g + 8], rows * nz);
        float* out = (float*)calloc((nb ? nb : 1) * no + 1, sizeof(float));
        void* row = nb ? NULL : sym_or_die(h, name, "");
        batch_fn batch = NULL;
        double t0, times[REPS];
        int rep;
        if (nb) {
            *(void**)(&batch) = sym_or_die(h, name, "_batch");
            if (nb > rows) {
                fprintf(stderr, "BATCH %zu > ROWS %zu\n", nb, rows);
                return 2;
            }
        }
        per_call_rows = nb ? nb : 1;
#define ONE_CALL()                                                                    \
    do {                                                                              \
        if (nb) {                                                                     \
            if (cur + nb > rows) cur = 0;                                             \
            batch(out, in + cur * ni, rnd + cur * nz, nb);                            \
            cur += nb;                                                                \
        } else {                                                                      \
            call_row(row, nz, out, in + cur * ni, rnd + cur * nz);                    \
            cur = cur + 1 == rows ? 0 : cur + 1;                                      \
        }                                                                             \
        sink = out[0];                                                                \
    } while (0)
        /* warm-up: a tenth of the budget */
        t0 = now_ns();
        while (now_ns() - t0 < seconds * 1e8 || calls < 3) {
            ONE_CALL();
            calls++;
        }
        per_rep = (size_t)((seconds * 1e9 / REPS) / ((now_ns() - t0) / (double)calls)) + 1;
        for (rep = 0; rep < REPS; rep++) {
            t0 = now_ns();
            for (k = 0; k < per_rep; k++) ONE_CALL();
            times[rep] = (now_ns() - t0) / (double)(per_rep * per_call_rows);
        }
        qsort(times, REPS, sizeof times[0], cmp_double);
        printf("bench %s %zu %.1f %.1f\n", name, nb, times[0], times[REPS / 2]);
        fflush(stdout);
        free(in);
        free(rnd);
        free(out);
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc >= 2 && strcmp(argv[1], "run") == 0) return run(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) return bench(argc, argv);
    fprintf(stderr, "usage: %s run|bench ...\n", argv[0]);
    return 2;
}
