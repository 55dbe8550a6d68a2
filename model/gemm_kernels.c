// AVX-512 and AVX2 micro-kernels for sgemm (see gemm_kernels.h). The register blocking is the one of the
// BLIS and OpenBLAS Haswell/SkylakeX SGEMM kernels: MR rows broadcast from the packed A panel, NR columns
// loaded from the packed B panel, MR x NR accumulators held in registers for the whole k loop.
#include "model/gemm_kernels.h"

#include <immintrin.h>

__attribute__((target("avx512f"))) static void micro_avx512(int kc, const float *Ap, const float *Bp, float *C,
                                                              int ldc, float alpha, float beta) {
    __m512 c[6][4];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) c[i][j] = _mm512_setzero_ps();
    #pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const float *b = Bp + (size_t)k * 64, *a = Ap + (size_t)k * 6;
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32),
               b3 = _mm512_load_ps(b + 48);
        for (int i = 0; i < 6; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
            c[i][2] = _mm512_fmadd_ps(ai, b2, c[i][2]);
            c[i][3] = _mm512_fmadd_ps(ai, b3, c[i][3]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) {
            float *p = C + (size_t)i * ldc + 16 * j;
            __m512 r = _mm512_mul_ps(va, c[i][j]);
            if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), r);
            _mm512_storeu_ps(p, r);
        }
}

__attribute__((target("avx2,fma"))) static void micro_avx2(int kc, const float *Ap, const float *Bp, float *C,
                                                             int ldc, float alpha, float beta) {
    __m256 c[6][2];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 2; j++) c[i][j] = _mm256_setzero_ps();
    #pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        const float *b = Bp + (size_t)k * 16, *a = Ap + (size_t)k * 6;
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        for (int i = 0; i < 6; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c[i][0] = _mm256_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(ai, b1, c[i][1]);
        }
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 2; j++) {
            float *p = C + (size_t)i * ldc + 8 * j;
            __m256 r = _mm256_mul_ps(va, c[i][j]);
            if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), r);
            _mm256_storeu_ps(p, r);
        }
}

const GemmMicro gemm_micro_avx512 = {6, 64, micro_avx512};
const GemmMicro gemm_micro_avx2 = {6, 16, micro_avx2};
