// Helpers for the CUDA parity suites: skipping without a GPU, seeded random inputs, device round trips, and the
// tolerance of each GEMM precision (fp32 1e-5, TF32 1e-3, bf16 1e-2, relative to the largest reference value;
// twice that for attention's chain of GEMMs).
#ifndef TESTS_CUDA_TEST_H
#define TESTS_CUDA_TEST_H

#include <stdint.h>

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/device.h"

// max |got - want| / (max |want| + tiny): one relative error over the whole buffer (NaN fails).
static inline double rel_error(const float *got, const float *want, size_t n) {
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) maxdiff = d;
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    return maxdiff / (maxref + 1e-30);
}

#define assert_close(got, want, n, tol, what)                                                              \
    do {                                                                                                   \
        double e_ = rel_error((got), (want), (n));                                                         \
        cr_assert(e_ <= (tol), "%s: relative error %.3g > %.1g", (what), e_, (double)(tol));               \
    } while (0)

// Fresh random values per test: a seed from the test's own tag, so a failure replays.
static uint64_t test_rng __attribute__((unused)) = 88172645463325252ULL;
static inline void rng_seed(const char *tag) {
    test_rng = 1469598103934665603ULL;
    for (const char *c = tag; *c; c++) test_rng = (test_rng ^ (unsigned char)*c) * 1099511628211ULL;
}
static inline float frand(void) {  // uniform in [-1, 1)
    test_rng ^= test_rng << 13; test_rng ^= test_rng >> 7; test_rng ^= test_rng << 17;
    return (float)((test_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static inline float *rand_buf(size_t n, float scale) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = scale * frand();
    return x;
}
static inline float *copy_buf(const float *x, size_t n) {
    float *y = malloc(sizeof(float) * (n ? n : 1));
    memcpy(y, x, sizeof(float) * n);
    return y;
}
#ifdef KANOCLIP_CUDA
#include "model/cuda/ops_cuda.h"

// Skips the test (with the reason) unless a CUDA device answers; otherwise initialises the op layer.
static inline void need_gpu(void) {
    if (!device_available()) cr_skip_test("no CUDA device: %s", device_describe(DEVICE_CUDA));
    cr_assert_eq(cuda_ops_init(), 0, "%s", err_msg());
    cuda_ops_set_precision(GEMM_FP32);
    cuda_attention_set_mode(CUDA_ATTN_AUTO);
}

static const GemmPrecision PRECISIONS[3] = {GEMM_FP32, GEMM_TF32, GEMM_BF16};
static const double PRECISION_TOL[3] = {1e-5, 1e-3, 1e-2};
// Attention chains two GEMMs forward and four backward; emulating truncated TF32/bf16 inputs puts that chain at
// up to 1.8e-3 / 1.4e-2 (tests/cuda_tolerances.py), so it gets twice the one-GEMM tolerance.
static const double CHAIN_TOL[3] = {1e-5, 2e-3, 2e-2};

static inline float *to_dev(const float *h, size_t n) {
    float *d = cuda_alloc_floats(n ? n : 1);
    cr_assert_not_null(d, "%s", err_msg());
    cuda_upload(d, h, n);
    return d;
}
static inline float *to_host(const float *d, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    cuda_download(h, d, n);
    cr_assert_eq(cuda_ops_sync(), 0, "%s", err_msg());
    return h;
}
// Downloads d (n) and compares with the CPU's want at tolerance tol.
static inline void check_dev(const float *d, const float *want, size_t n, double tol, const char *what) {
    float *got = to_host(d, n);
    assert_close(got, want, n, tol, what);
    free(got);
}
#endif

#endif
