// KAnoCLIP's global branch, shared by the default losses and the paper's joint ones (kanoclip_paper.c): the
// Conv-Adapter on the global feature and the 2-way logits against each image's normal and abnormal text
// features, on the backend; the logits come down, their gradient goes up. And the global feature of
// method.global_source: vv, taken from the stage features on the host before the batch goes up.
#include <stdlib.h>
#include <string.h>

#include "model/conv_adapter.h"
#include "model/kanoclip_internal.h"
#include "model/ops_extra.h"

void kanoclip_global_from_stages(float *global, const float *stage, int B, int n_stages, int T, int P) {
    for (int b = 0; b < B; b++)
        memcpy(global + (size_t)b * P, stage + ((size_t)b * n_stages + n_stages - 1) * T * P, sizeof(float) * P);
}

// logits (B,2) = norm(I_c) · [t_n, t_a]ᵀ / tau; keeps icn (B,P), icnorm (B).
void kano_global_forward(Kanoclip *m, KanoStep *st, float *logits_host) {
    const Backend *be = m->be;
    int B = st->B, P = st->P;
    if (m->cfg.adapter) adapter_forward(be, st->ic, &st->ad, &m->p.adapter, st->global, B, P, st->R, m->cfg.adapter_residual);
    else be->copy(st->ic, st->global, (size_t)B * P);
    be->l2norm_rows_forward(st->icn, st->icnorm, st->ic, B, P);
    // per image: logits (1,2) = icn (1,P) · T (2,P)ᵀ / tau
    be->gemm(0, 1, 1, 2, P, 1.0f / m->cfg.tau, st->icn, P, P, st->T, P, 2L * P, 0.0f, st->logits, 2, 2, B);
    be->download(logits_host, st->logits, (size_t)2 * B);
}

void kano_global_backward(Kanoclip *m, KanoStep *st, const float *dl_host) {
    const Backend *be = m->be;
    int B = st->B, P = st->P;
    float *dl = malloc(sizeof(float) * 2 * B);
    for (int i = 0; i < 2 * B; i++) dl[i] = dl_host[i] / m->cfg.tau;
    be->upload(st->dlogits, dl, (size_t)2 * B);
    free(dl);
    // per image: dicn (1,P) = dl (1,2) · T (2,P); dT (2,P) += dlᵀ (2,1) · icn (1,P)
    be->gemm(0, 0, 1, P, 2, 1.0f, st->dlogits, 2, 2, st->T, P, 2L * P, 0.0f, st->dicn, P, P, B);
    be->gemm(1, 0, 2, P, 1, 1.0f, st->dlogits, 2, 2, st->icn, P, P, 1.0f, st->dT, P, 2L * P, B);
    if (m->cfg.adapter) {
        be->zero(st->dic, (size_t)B * P);
        be->l2norm_rows_backward(st->dic, st->dicn, st->icn, st->icnorm, B, P);
        adapter_backward(be, &m->g.adapter, st->dic, &st->ad, &m->p.adapter, st->global, B, P, st->R);
    }
}

float kano_global_bce(Kanoclip *m, KanoStep *st, const int *label) {
    int B = st->B;
    float *logits = malloc(sizeof(float) * 4 * B), *dl = logits + 2 * B;
    kano_global_forward(m, st, logits);
    double lg = 0.0;
    for (int i = 0; i < B; i++) {
        int y = label[i] ? 1 : 0;
        float z = logits[i * 2 + 1 - y] - logits[i * 2 + y];
        lg += softplus_f(z);
        float gz = sigmoid_f(z) * m->cfg.w_global / B;  // dL/dz; dz/dl_other = 1, dz/dl_y = −1
        dl[i * 2 + 1 - y] = gz;
        dl[i * 2 + y] = -gz;
    }
    kano_global_backward(m, st, dl);
    free(logits);
    return (float)(lg / B);
}
