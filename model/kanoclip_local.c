// KAnoCLIP's default local losses (docs/reference/kanoclip-components.md §7): per stage and image, Bi-CMCI ->
// maps -> bilinear to the image size -> focal + dice(M_a, G) + dice(M_n, 1 − G), forward and backward at once,
// on the backend. The loss terms land in the step's slots and come down once.
#include <stdlib.h>

#include "model/kanoclip_internal.h"

size_t kano_local_extra(const KanoclipConfig *c) { return (size_t)4 * c->image_size * c->image_size; }

void kano_local_losses(Kanoclip *m, KanoStep *st, KanoLosses *L) {
    const KanoclipConfig *c = &m->cfg;
    const Backend *be = m->be;
    int B = st->B, P = st->P, N = st->N, S = st->S, SS = st->SS, NS = st->NS, ac = c->upsample_align_corners;
    float *upn = st->extra, *upa = upn + SS, *dupn = upa + SS, *dupa = dupn + SS;
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < B; i++) {
            const float *F = kano_stage_features(st, i, s), *T = st->T + (size_t)i * 2 * P;
            const float *gt = st->gt + (size_t)i * SS, *ngt = st->ngt + (size_t)i * SS;
            float *slot = st->slots + ((size_t)s * B + i) * 3;  // focal sum, dice(M_a, G), dice(M_n, 1 − G)
            bicmci_forward(be, &m->acts, &m->p.stage[s], c, F, T);
            be->deinterleave2(st->probs_n, st->probs_a, m->acts.probs, N);
            be->upsample_bilinear_forward(upn, st->probs_n, 1, c->grid_h, c->grid_w, S, S, ac);
            be->upsample_bilinear_forward(upa, st->probs_a, 1, c->grid_h, c->grid_w, S, S, ac);
            be->focal_sum_op_forward(slot, upn, upa, gt, SS);
            be->dice_op_forward(slot + 1, upa, gt, SS);
            be->dice_op_forward(slot + 2, upn, ngt, SS);
            be->zero(dupn, (size_t)2 * SS);
            be->focal_sum_backward(dupn, dupa, upn, upa, gt, SS, c->w_local / ((float)B * SS));
            be->dice_backward(dupa, upa, gt, SS, -c->w_local / B);
            be->dice_backward(dupn, upn, ngt, SS, -c->w_local / B);
            be->zero(st->dprobs_n, (size_t)2 * N);  // dprobs_n and dprobs_a
            be->upsample_bilinear_backward(st->dprobs_n, dupn, 1, c->grid_h, c->grid_w, S, S, ac);
            be->upsample_bilinear_backward(st->dprobs_a, dupa, 1, c->grid_h, c->grid_w, S, S, ac);
            be->interleave2(st->dprobs, st->dprobs_n, st->dprobs_a, N);
            bicmci_backward(be, st->dT + (size_t)i * 2 * P, &m->g.stage[s], st->dprobs, &m->acts, &m->p.stage[s], c,
                            F, T);
        }
    float *slots = malloc(sizeof(float) * 3 * NS * B);
    be->download(slots, st->slots, (size_t)3 * NS * B);
    for (int s = 0; s < NS; s++) {
        double focal = 0.0, dice_a = 0.0, dice_n = 0.0;
        for (int i = 0; i < B; i++) {
            const float *t = slots + ((size_t)s * B + i) * 3;
            focal += t[0]; dice_a += t[1]; dice_n += t[2];
        }
        float f = (float)(focal / ((double)B * SS)), da = (float)(1.0 - dice_a / B), dn = (float)(1.0 - dice_n / B);
        L->focal += f;
        L->dice += da + dn;
        L->local += f + da + dn;
    }
    free(slots);
}
