// Conv-Adapter forward/backward over a batch of global features, over the op table.
#include "model/conv_adapter.h"

void adapter_forward(const Backend *be, float *out, AdapterActs *a, const AdapterParams *p, const float *I, int B,
                     int P, int R, int residual) {
    be->layernorm_forward(a->ln, a->mean, a->rstd, I, p->ln_w, p->ln_b, B, P, 1e-5f);
    be->matmul_forward(a->h, a->ln, p->down_w, p->down_b, B, P, R);
    be->relu_forward(a->h, a->h, (size_t)B * R);
    be->matmul_forward(out, a->h, p->up_w, p->up_b, B, R, P);
    if (residual) be->residual_forward(out, out, I, (size_t)B * P);
}

void adapter_backward(const Backend *be, AdapterParams *g, const float *dout, AdapterActs *a, const AdapterParams *p,
                      const float *I, int B, int P, int R) {
    be->zero(a->dh, (size_t)B * R);
    be->zero(a->dln, (size_t)B * P);
    be->zero(a->dpre, (size_t)B * R);
    be->matmul_backward(a->dh, g->up_w, g->up_b, dout, a->h, p->up_w, B, R, P);
    be->relu_backward(a->dpre, a->h, a->dh, (size_t)B * R);
    be->matmul_backward(a->dln, g->down_w, g->down_b, a->dpre, a->ln, p->down_w, B, P, R);
    be->layernorm_backward(NULL, g->ln_w, g->ln_b, a->dln, I, p->ln_w, a->mean, a->rstd, B, P);
}
