// The micro-kernels behind sgemm (model/gemm.c): C (MR,NR) = alpha · A · Bp + beta · C, A (MR,kc) read at
// A[i·rs + k·cs] (a packed panel [kc][MR]: rs 1, cs MR; or op(A) in place: rs lda, cs 1, or rs 1, cs lda when
// transposed), Bp [kc][NR] (NR columns of op(B), k-major, 64-byte aligned); beta = 0 never reads C.
// Each is compiled for its instruction set with a target attribute, so the binary holds all of them whatever
// -march says, and sgemm calls one only where the CPU has its instructions.
#ifndef MODEL_GEMM_KERNELS_H
#define MODEL_GEMM_KERNELS_H

#include <stddef.h>

typedef void (*GemmMicroKernel)(int kc, const float *A, size_t rs, size_t cs, const float *Bp, float *C, int ldc,
                                float alpha, float beta);

typedef struct {
    int mr, nr;          // tile rows and columns
    GemmMicroKernel run;
} GemmMicro;

extern const GemmMicro gemm_micro_avx512;  // 6 x 64: 24 zmm accumulators, 4 loads of Bp and 6 broadcasts per k
extern const GemmMicro gemm_micro_avx2;    // 6 x 16: 12 ymm accumulators, 2 loads of Bp and 6 broadcasts per k

#endif
