// The CUDA op table, part 4: the baselines' ops (model/ops_baseline.h), each mirroring its CPU loop in
// model/ops_baseline.c (expf where the CPU has its vectorised exp_fast, within 2 ulp). The cross-entropy's sum
// runs in one block of 1024 threads with double partial sums, as the CPU accumulates.
#include <cuda_runtime.h>
#include <math.h>

#include "model/cuda/cuda_internal.cuh"
#include "model/cuda/ops_cuda.h"

#define RB 1024  // threads of the one-block reduction

// σ(d) and σ(−d) from e = exp(−|d|), as the CPU
__device__ __forceinline__ void sigmoid_both(float d, float *pos, float *neg) {
    float e = expf(-fabsf(d)), big = 1.0f / (1.0f + e), small = e * big;
    *pos = d >= 0 ? big : small;
    *neg = d >= 0 ? small : big;
}

__global__ void pair_probs_forward_kernel(float *out, const float *inp, int n) {
    GRID_STRIDE(i, (size_t)n) {
        float pa, pn;
        sigmoid_both(inp[n + i] - inp[i], &pa, &pn);
        out[i] = pn;
        out[n + i] = pa;
    }
}
__global__ void pair_prob_add_kernel(float *y, const float *inp, int n) {
    GRID_STRIDE(i, (size_t)n) {
        float pa, pn;
        sigmoid_both(inp[n + i] - inp[i], &pa, &pn);
        y[i] += pa;
    }
}

__global__ void ce_pair_kernel(float *loss, float *dlogits, const float *logits, const float *labels, int n,
                               float scale) {
    __shared__ double sh[RB];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += RB) {
        double l0 = logits[i], l1 = logits[n + i], m = fmax(l0, l1);
        double lse = m + log(exp(l0 - m) + exp(l1 - m));
        int y = labels[i] > 0.5f;
        s += lse - (y ? l1 : l0);
        if (!dlogits) continue;
        double d1 = exp(l1 - lse) - y;
        dlogits[i] -= (float)(scale * d1);
        dlogits[n + i] += (float)(scale * d1);
    }
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = RB / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = (float)sh[0];
}

extern "C" void pair_probs_forward_cuda(float *out, const float *inp, int n) {
    if (!cuda_live_("pair_probs_forward_cuda")) return;
    CUDA_LAUNCH("pair_probs_forward", pair_probs_forward_kernel, blocks_for((size_t)n, 256), 256, 0, out, inp, n);
}
extern "C" void pair_prob_add_cuda(float *y, const float *inp, int n) {
    if (!cuda_live_("pair_prob_add_cuda")) return;
    CUDA_LAUNCH("pair_prob_add", pair_prob_add_kernel, blocks_for((size_t)n, 256), 256, 0, y, inp, n);
}
extern "C" void ce_pair_forward_backward_cuda(float *loss, float *dlogits, const float *logits, const float *labels,
                                              int n, float scale) {
    if (!cuda_live_("ce_pair_forward_backward_cuda")) return;
    CUDA_LAUNCH("ce_pair_forward_backward", ce_pair_kernel, 1, RB, 0, loss, dlogits, logits, labels, n, scale);
}
