// AVX-512 and AVX2 micro-kernels for sgemm (see gemm_kernels.h). The register blocking is the one of the
// BLIS and OpenBLAS Haswell/SkylakeX SGEMM kernels: MR rows broadcast from the packed A panel, NR columns
// loaded from the packed B panel, MR x NR accumulators held in registers for the whole k loop.
#include "model/gemm_kernels.h"

#include <immintrin.h>

// The accumulators are named one by one: held in an array, GCC spilled some of them to the stack.
#define ROW4(i, r)                                         \
    do {                                                   \
        __m512 ai = _mm512_set1_ps(a[(i) * rs]);           \
        r##0 = _mm512_fmadd_ps(ai, b0, r##0);              \
        r##1 = _mm512_fmadd_ps(ai, b1, r##1);              \
        r##2 = _mm512_fmadd_ps(ai, b2, r##2);              \
        r##3 = _mm512_fmadd_ps(ai, b3, r##3);              \
    } while (0)
#define STORE4(i, r)                                                                        \
    do {                                                                                    \
        float *p = C + (size_t)(i) * ldc;                                                   \
        __m512 s0 = _mm512_mul_ps(va, r##0), s1 = _mm512_mul_ps(va, r##1);                  \
        __m512 s2 = _mm512_mul_ps(va, r##2), s3 = _mm512_mul_ps(va, r##3);                  \
        if (beta != 0.0f) {                                                                 \
            s0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), s0);                               \
            s1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p + 16), s1);                          \
            s2 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p + 32), s2);                          \
            s3 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p + 48), s3);                          \
        }                                                                                   \
        _mm512_storeu_ps(p, s0);                                                            \
        _mm512_storeu_ps(p + 16, s1);                                                       \
        _mm512_storeu_ps(p + 32, s2);                                                       \
        _mm512_storeu_ps(p + 48, s3);                                                       \
    } while (0)

__attribute__((target("avx512f"))) static void micro_avx512(int kc, const float *Ap, size_t rs, size_t cs,
                                                              const float *Bp, float *C, int ldc, float alpha,
                                                              float beta) {
    if (beta != 0.0f)  // C is read after the k loop: start bringing its 6 x 64 tile in now
        for (int i = 0; i < 6; i++)
            for (int q = 0; q < 4; q++) _mm_prefetch((const char *)(C + (size_t)i * ldc + 16 * q), _MM_HINT_T0);
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z, c20 = z, c21 = z, c22 = z, c23 = z,
           c30 = z, c31 = z, c32 = z, c33 = z, c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
    for (int k = 0; k < kc; k++) {
        const float *b = Bp + (size_t)k * 64, *a = Ap + (size_t)k * cs;
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32),
               b3 = _mm512_load_ps(b + 48);
        ROW4(0, c0); ROW4(1, c1); ROW4(2, c2); ROW4(3, c3); ROW4(4, c4); ROW4(5, c5);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    STORE4(0, c0); STORE4(1, c1); STORE4(2, c2); STORE4(3, c3); STORE4(4, c4); STORE4(5, c5);
}

#define ROW2(i, ci0, ci1)                                  \
    do {                                                   \
        __m256 ai = _mm256_broadcast_ss(a + (i) * rs);     \
        ci0 = _mm256_fmadd_ps(ai, b0, ci0);                \
        ci1 = _mm256_fmadd_ps(ai, b1, ci1);                \
    } while (0)
#define STORE2(i, ci0, ci1)                                                                 \
    do {                                                                                    \
        float *p = C + (size_t)(i) * ldc;                                                   \
        __m256 r0 = _mm256_mul_ps(va, ci0), r1 = _mm256_mul_ps(va, ci1);                    \
        if (beta != 0.0f) {                                                                 \
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), r0);                               \
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p + 8), r1);                           \
        }                                                                                   \
        _mm256_storeu_ps(p, r0);                                                            \
        _mm256_storeu_ps(p + 8, r1);                                                        \
    } while (0)

__attribute__((target("avx2,fma"))) static void micro_avx2(int kc, const float *Ap, size_t rs, size_t cs,
                                                             const float *Bp, float *C, int ldc, float alpha,
                                                             float beta) {
    if (beta != 0.0f)  // C is read after the k loop: start bringing its 6 x 16 tile in now
        for (int i = 0; i < 6; i++) _mm_prefetch((const char *)(C + (size_t)i * ldc), _MM_HINT_T0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        const float *b = Bp + (size_t)k * 16, *a = Ap + (size_t)k * cs;
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        ROW2(0, c00, c01); ROW2(1, c10, c11); ROW2(2, c20, c21);
        ROW2(3, c30, c31); ROW2(4, c40, c41); ROW2(5, c50, c51);
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    STORE2(0, c00, c01); STORE2(1, c10, c11); STORE2(2, c20, c21);
    STORE2(3, c30, c31); STORE2(4, c40, c41); STORE2(5, c50, c51);
}

const GemmMicro gemm_micro_avx512 = {6, 64, micro_avx512};
const GemmMicro gemm_micro_avx2 = {6, 16, micro_avx2};
