// What a linear layer's GEMM does with its product before storing it (model/ops_infer.h linear_forward, and the
// AVX-512 kernel model/gemm_avx512.c that runs its tiles): out = inp·Wᵀ + bias, or added to out, or through QuickGELU
// or exact GELU.
#ifndef MODEL_LINEAR_EPILOGUE_H
#define MODEL_LINEAR_EPILOGUE_H

typedef enum { LINEAR_STORE, LINEAR_ACCUM, LINEAR_QUICKGELU, LINEAR_GELU } LinearMode;

#endif
