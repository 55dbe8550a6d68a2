// The towers' linear layers on AVX-512 (model/gemm_avx512.c): weights packed once per call into 64-channel
// panels shared by all tasks, a 6 x 64 FMA micro-kernel, the epilogue (bias, residual, activation) on each
// tile. Built only where the compiler targets AVX-512 (-march=native on such a CPU); linear_forward uses it
// then, and OpenBLAS tiles otherwise.
#ifndef MODEL_GEMM_AVX512_H
#define MODEL_GEMM_AVX512_H

#include <stddef.h>

#include "model/linear_epilogue.h"

#if defined(__AVX512F__)
// Same contract as linear_forward: out (N,OC) (row stride ldo) = epilogue(inp (N,K) (stride ldi) · weight ᵀ + bias).
void gemm_avx512_forward(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *bias,
                         int N, int K, int OC, LinearMode mode);
// Weights packed ahead of time (frozen towers run many forwards): floats needed for weight (OC,K), the packing
// into 64-byte aligned memory, and the forward on packed weights.
size_t gemm_avx512_packed_floats(int OC, int K);
void gemm_avx512_pack(float *packed, const float *weight, int OC, int K);
void gemm_avx512_forward_packed(float *out, int ldo, const float *inp, int ldi, const float *packed,
                                const float *bias, int N, int K, int OC, LinearMode mode);
#endif

#endif
