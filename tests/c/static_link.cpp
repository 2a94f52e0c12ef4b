// A C++ host linked against a flashc-compiled static library through its generated header.
//
//   static_link DIR
// For every model of the header's X-macro, reads DIR/NAME.in.f32 and DIR/NAME.noise.f32, runs all
// rows row by row, in one batch, and from 4 threads at once (rows interleaved), checks that the
// three agree bit for bit, and writes DIR/NAME.cpp.f32. Built by tests/c_abi.rs with
//   c++ -std=c++11 -Wall -Wextra -pedantic-errors -O2 -pthread -include HEADER static_link.cpp LIB.a ...
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifndef FLASHC_FOREACH
#error "compile with -DFLASHC_FOREACH=FLASHC_<STEM>_FOREACH and -include the generated header"
#endif

namespace {

// The scikinC entry point has 2 or 3 parameters; overloads pick the right call.
float* call_row(float* (*f)(float*, const float*), float* out, const float* in, const float*) {
    return f(out, in);
}
float* call_row(float* (*f)(float*, const float*, const float*), float* out, const float* in, const float* rnd) {
    return f(out, in, rnd);
}

bool read_file(const std::string& path, std::vector<float>& data) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    float x;
    data.clear();
    while (std::fread(&x, sizeof x, 1, f) == 1) data.push_back(x);
    std::fclose(f);
    return true;
}

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
        ++failures;
    }
}

template <class Row, class Batch>
void run_model(const std::string& dir, const char* name, Row row, Batch batch, size_t ni, size_t nz, size_t no,
               size_t (*n_inputs)(), size_t (*n_noise)(), size_t (*n_outputs)(), const char* (*isa)()) {
    check(ni == n_inputs() && nz == n_noise() && no == n_outputs(),
          std::string(name) + ": header sizes agree with the library");
    std::vector<float> in, rnd;
    if (!read_file(dir + "/" + name + ".in.f32", in) || !read_file(dir + "/" + name + ".noise.f32", rnd)) {
        check(false, std::string(name) + ": cannot read its inputs");
        return;
    }
    const size_t rows = in.size() / ni;
    check(rnd.size() == rows * nz, std::string(name) + ": noise size");
    std::vector<float> out_row(rows * no + 1), out_batch(rows * no + 1), out_threads(rows * no + 1);
    for (size_t r = 0; r < rows; ++r) {
        float* o = &out_row[r * no];
        check(call_row(row, o, &in[r * ni], nz ? &rnd[r * nz] : nullptr) == o, std::string(name) + ": row call");
    }
    check(batch(&out_batch[0], &in[0], nz ? &rnd[0] : nullptr, rows) == FLASHC_OK, std::string(name) + ": batch call");
    // Concurrent calls from several host threads (as Gaudi does): rows interleaved.
    const size_t n_threads = 4;
    std::vector<std::thread> pool;
    for (size_t t = 0; t < n_threads; ++t) {
        pool.emplace_back([&, t]() {
            for (size_t r = t; r < rows; r += n_threads) {
                if (r % 2 == 0) {
                    call_row(row, &out_threads[r * no], &in[r * ni], nz ? &rnd[r * nz] : nullptr);
                } else {
                    batch(&out_threads[r * no], &in[r * ni], nz ? &rnd[r * nz] : nullptr, 1);
                }
            }
        });
    }
    for (auto& th : pool) th.join();
    check(std::memcmp(&out_row[0], &out_batch[0], rows * no * sizeof(float)) == 0,
          std::string(name) + ": row and batch results are identical");
    check(std::memcmp(&out_row[0], &out_threads[0], rows * no * sizeof(float)) == 0,
          std::string(name) + ": results from 4 threads are identical");
    std::string path = dir + "/" + name + ".cpp.f32";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    check(f && std::fwrite(&out_row[0], sizeof(float), rows * no, f) == rows * no, "write " + path);
    if (f) std::fclose(f);
    std::printf("%s: %zu rows, isa %s\n", name, rows, isa());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    size_t models = 0;
#define RUN_ONE(NAME, NI, NZ, NO)                                                                            \
    run_model(dir, #NAME, &NAME, &NAME##_batch, NI, NZ, NO, &NAME##_n_inputs, &NAME##_n_noise, &NAME##_n_outputs, \
              &NAME##_isa);                                                                                 \
    ++models;
    FLASHC_FOREACH(RUN_ONE)
    std::printf("%zu models\n", models);
    if (failures) return 1;
    std::printf("checks ok\n");
    return 0;
}
