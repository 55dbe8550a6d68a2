// KAnoCLIP's global branch, shared by the default losses (kanoclip.c) and the paper's joint ones (kanoclip_paper.c):
// the Conv-Adapter on the global feature and the 2-way logits against the normal and abnormal text features; and
// the global feature of method.global_source: vv, taken from the stage features.
#include "model/kanoclip_internal.h"

#include <stdlib.h>
#include <string.h>

#include "model/conv_adapter.h"
#include "model/ops_extra.h"

void kanoclip_global_from_stages(float *global, const float *stage, int B, int n_stages, int T, int P) {
    for (int b = 0; b < B; b++)
        memcpy(global + (size_t)b * P, stage + ((size_t)b * n_stages + n_stages - 1) * T * P, sizeof(float) * P);
}

// Adapter activations, then ic (B,P), icn (B,P), icnorm (B), logits (B,2), in one zeroed block after ad.dln.
float *kano_global_buffers(AdapterActs *ad, int B, int P, int R) {
    float *buf = calloc((size_t)B * (5 * P + 2 * R + 5), sizeof(float));
    ad->ln = buf; ad->mean = ad->ln + B * P; ad->rstd = ad->mean + B; ad->h = ad->rstd + B; ad->dh = ad->h + B * R;
    ad->dln = ad->dh + B * R;
    return buf;
}

// Global branch: logits (B,2) = norm(I_c) · [t_n, t_a]ᵀ / tau; keeps icn (B,P), icnorm (B).
void kano_global_forward(Kanoclip *m, const KanoBatch *b, const float *tfeat, int U, const int *uidx,
                         AdapterActs *ad, float *ic, float *icn, float *icnorm, float *logits) {
    int B = b->B, P = m->cfg.width, R = P / m->cfg.adapter_ratio;
    if (m->cfg.adapter) adapter_forward(ic, ad, &m->p.adapter, b->global, B, P, R, m->cfg.adapter_residual);
    else memcpy(ic, b->global, sizeof(float) * B * P);
    l2norm_rows_forward(icn, icnorm, ic, B, P);
    for (int i = 0; i < B; i++)
        for (int s = 0; s < 2; s++) {
            const float *t = tfeat + ((size_t)s * U + uidx[i]) * P;
            double d = 0.0;
            for (int p = 0; p < P; p++) d += (double)icn[(size_t)i * P + p] * t[p];
            logits[i * 2 + s] = (float)(d / m->cfg.tau);
        }
}
