// MVFA-AD's residual CLIP adapter (MediaBrain-SJTU/MVFA-AD, CLIP/adapter.py ClipAdapter; docs/reference/
// zsad-anchors.md §1.3): two bias-free linear maps, each followed by LeakyReLU (nn.LeakyReLU's slope 0.01); the
// bottleneck output "med" is what MVFA-AD compares with the text, the second output goes back into the residual
// stream. Forward and backward over plain buffers (model/baselines.h).
#include "model/baselines.h"
#include "model/ops.h"
#include "model/ops_extra.h"

#include <string.h>

#define LEAKY_SLOPE 0.01f  // nn.LeakyReLU() default negative_slope

void mvfa_adapter_forward(float *med, float *out, const float *x, const float *w1, const float *w2, int N, int W,
                          int P) {
    matmul_forward(med, x, w1, NULL, N, W, P);
    leaky_relu_forward(med, med, (size_t)N * P, LEAKY_SLOPE);
    if (!out) return;
    matmul_forward(out, med, w2, NULL, N, P, W);
    leaky_relu_forward(out, out, (size_t)N * W, LEAKY_SLOPE);
}

void mvfa_adapter_backward(float *dx, float *dw1, float *dw2, float *dmed, const float *dout, const float *x,
                           const float *med, const float *out, const float *w1, const float *w2, int N, int W, int P,
                           float *work) {
    float *dpre_out = work;                     // (N,W) gradient before the second LeakyReLU
    float *dpre_med = work + (size_t)N * W;     // (N,P) gradient before the first LeakyReLU
    if (dout) {
        memset(dpre_out, 0, sizeof(float) * N * W);
        leaky_relu_backward(dpre_out, out, dout, (size_t)N * W, LEAKY_SLOPE);
        matmul_backward(dmed, dw2, NULL, dpre_out, med, w2, N, P, W);
    }
    memset(dpre_med, 0, sizeof(float) * N * P);
    leaky_relu_backward(dpre_med, med, dmed, (size_t)N * P, LEAKY_SLOPE);
    matmul_backward(dx, dw1, NULL, dpre_med, x, w1, N, W, P);
}
