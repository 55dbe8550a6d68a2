// Weight upload for the CUDA towers (C++: included by the tower .cu files only): one device allocation per tower, filled by the same code run twice (first
// counting, then copying), so the list of tensors is written once.
#ifndef MODEL_CUDA_CLIP_CUDA_INTERNAL_H
#define MODEL_CUDA_CLIP_CUDA_INTERNAL_H

extern "C" {
#include "model/clip_model.h"
}
#include "model/cuda/ops_cuda.h"

typedef struct {
    float *base;  // NULL while counting
    size_t used;  // floats
} DevArena;

// Places n floats of host data in the arena (64-float aligned slices); returns the device pointer.
static inline const float *arena_put(DevArena *a, const float *host, size_t n) {
    float *d = a->base ? a->base + a->used : NULL;
    if (a->base) cuda_upload(d, host, n);
    a->used += (n + 63) & ~(size_t)63;
    return d;
}

// dev[l] mirrors host[l] with device pointers. W width, I mlp width.
static inline void arena_put_blocks(DevArena *a, ClipBlock *dev, const ClipBlock *host, int L, int W, int I) {
    size_t w = (size_t)W, i = (size_t)I;
    for (int l = 0; l < L; l++) {
        const ClipBlock *h = &host[l];
        ClipBlock *d = &dev[l];
        d->ln1_w = arena_put(a, h->ln1_w, w);
        d->ln1_b = arena_put(a, h->ln1_b, w);
        d->qkv_w = arena_put(a, h->qkv_w, 3 * w * w);
        d->qkv_b = arena_put(a, h->qkv_b, 3 * w);
        d->out_w = arena_put(a, h->out_w, w * w);
        d->out_b = arena_put(a, h->out_b, w);
        d->ln2_w = arena_put(a, h->ln2_w, w);
        d->ln2_b = arena_put(a, h->ln2_b, w);
        d->fc1_w = arena_put(a, h->fc1_w, i * w);
        d->fc1_b = arena_put(a, h->fc1_b, i);
        d->fc2_w = arena_put(a, h->fc2_w, w * i);
        d->fc2_b = arena_put(a, h->fc2_b, w);
    }
}

// dst (N,C) += bias, then dst += inp (N,K) · weight (C,K)ᵀ: a residual add through the GEMM's beta.
static inline void residual_linear_cuda(float *dst, const float *inp, const float *weight, const float *bias, int N,
                                        int K, int C) {
    add_bias_rows_cuda(dst, bias, N, C);
    gemm_cuda(0, 1, N, C, K, 1.0f, inp, K, 0, weight, K, 0, 1.0f, dst, C, 0, 1);
}

#endif
