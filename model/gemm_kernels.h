// The micro-kernels behind sgemm (model/gemm.c): C (MR,NR) = alpha · Ap · Bp + beta · C over packed panels,
// Ap [kc][MR] (MR rows of op(A), k-major) and Bp [kc][NR] (NR columns of op(B), k-major), both 64-byte
// aligned; beta = 0 never reads C. Each is compiled for its instruction set with a target attribute, so the
// binary holds all of them whatever -march says, and sgemm calls one only where the CPU has its instructions.
#ifndef MODEL_GEMM_KERNELS_H
#define MODEL_GEMM_KERNELS_H

typedef void (*GemmMicroKernel)(int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha, float beta);

typedef struct {
    int mr, nr;          // tile rows and columns
    GemmMicroKernel run;
} GemmMicro;

extern const GemmMicro gemm_micro_avx512;  // 6 x 64: 24 zmm accumulators, 4 loads of Bp and 6 broadcasts per k
extern const GemmMicro gemm_micro_avx2;    // 6 x 16: 12 ymm accumulators, 2 loads of Bp and 6 broadcasts per k

#endif
