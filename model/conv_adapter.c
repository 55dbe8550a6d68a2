// Conv-Adapter forward/backward over a batch of global features.
#include "model/conv_adapter.h"

#include <string.h>

#include "model/ops.h"
#include "model/ops_extra.h"

void adapter_forward(float *out, AdapterActs *a, const AdapterParams *p, const float *I, int B, int P, int R,
                     int residual) {
    layernorm_forward(a->ln, a->mean, a->rstd, I, p->ln_w, p->ln_b, B, P, 1e-5f);
    matmul_forward(a->h, a->ln, p->down_w, p->down_b, B, P, R);
    relu_forward(a->h, a->h, (size_t)B * R);
    matmul_forward(out, a->h, p->up_w, p->up_b, B, R, P);
    if (residual) residual_forward(out, out, I, (size_t)B * P);
}

void adapter_backward(AdapterParams *g, const float *dout, AdapterActs *a, const AdapterParams *p, const float *I,
                      int B, int P, int R) {
    memset(a->dh, 0, sizeof(float) * B * R);
    memset(a->dln, 0, sizeof(float) * B * P);
    matmul_backward(a->dh, g->up_w, g->up_b, dout, a->h, p->up_w, B, R, P);
    for (int i = 0; i < B * R; i++)
        if (!(a->h[i] > 0.0f)) a->dh[i] = 0.0f;
    matmul_backward(a->dln, g->down_w, g->down_b, a->dh, a->ln, p->down_w, B, P, R);
    layernorm_backward(NULL, g->ln_w, g->ln_b, a->dln, I, p->ln_w, a->mean, a->rstd, B, P);
}
