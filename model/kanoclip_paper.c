// The global and local losses under the switches where the paper's text reads two ways (docs/paper-switches.md):
// L_local on the fused maps (local_fused), Norm(.) of Eq. 10 as min-max (map_minmax), max(M) inside the global
// loss (global_max_map). The default path (per-stage loss, mean over stages, BCE on p_a) stays in kanoclip.c.
//
// Per image: each stage's Bi-CMCI probabilities are upsampled (up_n,s, up_a,s); the fused maps are
// M_x = Norm(Σ_s up_x,s) (x = n, a); L_local = focal(M_n, M_a) + dice(M_a, G) + dice(M_n, 1 − G) once, or per
// stage as AnomalyCLIP; L_global = BCE((p_a + max M_a) / 2, y) (torch's log clamp at −100) or CE on the logits.
// Bi-CMCI is run twice per (stage, image): forward for the maps, again before its backward (one stage's
// activations are kept at a time). On the backend; the loss terms come down through the step's slots, and with
// max(M) inside the global loss each image's max comes down before its backward.
#include "model/kanoclip_internal.h"

#include <math.h>
#include <stdlib.h>

#include "common/error.h"
#include "model/ops_extra.h"

int kano_paper_switches_on(const KanoclipConfig *c) { return c->local_fused || c->map_minmax || c->global_max_map; }

size_t kano_joint_extra(const KanoclipConfig *c) {
    return (size_t)c->image_size * c->image_size * (2 * c->n_stages + 10);
}

static float log_clamped(double v) { return (float)fmax(log(v), -100.0); }  // torch's binary_cross_entropy

// The terms of one pair of maps (un, ua) into slot[0..3): focal sum, dice(ua, G), dice(un, 1 − G); their
// gradients into dun, dua (+=).
static void local_terms(const Backend *be, const KanoclipConfig *c, float *slot, float *dun, float *dua,
                        const float *un, const float *ua, const float *gt, const float *ngt, int B, int SS) {
    be->focal_sum_op_forward(slot, un, ua, gt, SS);
    be->dice_op_forward(slot + 1, ua, gt, SS);
    be->dice_op_forward(slot + 2, un, ngt, SS);
    be->focal_sum_backward(dun, dua, un, ua, gt, SS, c->w_local / ((float)B * SS));
    be->dice_backward(dua, ua, gt, SS, -c->w_local / B);
    be->dice_backward(dun, un, ngt, SS, -c->w_local / B);
}

int kano_global_local_joint(Kanoclip *m, KanoStep *st, KanoLosses *L) {
    const KanoclipConfig *c = &m->cfg;
    const Backend *be = m->be;
    int B = st->B, P = st->P, N = st->N, S = st->S, SS = st->SS, NS = st->NS, ac = c->upsample_align_corners;
    size_t per_image = 3 + 3 * (size_t)NS + 1;  // slots: fused terms, each stage's terms, max M_a
    float *up = st->extra, *sum = up + (size_t)2 * NS * SS, *Mx = sum + 2 * SS, *dM = Mx + 2 * SS,
          *dsum = dM + 2 * SS, *dup = dsum + 2 * SS;
    float *logits = malloc(sizeof(float) * 4 * B), *dl = logits + 2 * B;
    float *slots = malloc(sizeof(float) * per_image * B);
    if (!logits || !slots) { free(logits); free(slots); return err_set("KAnoCLIP: out of memory for %d images", B); }
    kano_global_forward(m, st, logits);
    double lg = 0;
    for (int i = 0; i < B; i++) {
        const float *gt = st->gt + (size_t)i * SS, *ngt = st->ngt + (size_t)i * SS, *T = st->T + (size_t)i * 2 * P;
        float *slot = st->slots + per_image * i;
        be->zero(sum, (size_t)2 * SS);
        for (int s = 0; s < NS; s++) {
            float *un = up + (size_t)2 * s * SS, *ua = un + SS;
            bicmci_forward(be, &m->acts, &m->p.stage[s], c, kano_stage_features(st, i, s), T);
            be->deinterleave2(st->probs_n, st->probs_a, m->acts.probs, N);
            be->upsample_bilinear_forward(un, st->probs_n, 1, c->grid_h, c->grid_w, S, S, ac);
            be->upsample_bilinear_forward(ua, st->probs_a, 1, c->grid_h, c->grid_w, S, S, ac);
            be->axpy(sum, un, 1.0f, (size_t)2 * SS);  // [un | ua] onto [sum_n | sum_a]
        }
        // M_n = Mx[0..SS), M_a = Mx[SS..2SS): Norm of the stage sums
        for (int k = 0; k < 2; k++) {
            if (c->map_minmax) {
                be->copy(Mx + k * SS, sum + k * SS, SS);
                be->minmax_forward(Mx + k * SS, SS);
            } else {
                be->scale_copy(Mx + k * SS, sum + k * SS, 1.0f / NS, SS);
            }
        }
        be->zero(dM, (size_t)2 * SS);
        if (c->local_fused) local_terms(be, c, slot, dM, dM + SS, Mx, Mx + SS, gt, ngt, B, SS);
        // global: p_a = σ(l_a − l_n); with max(M) inside, BCE on s = (p_a + max M_a) / 2
        int y = st->label[i] ? 1 : 0;
        if (c->global_max_map) {
            float mx;
            be->max_value(slot + per_image - 1, Mx + SS, SS);
            be->download(&mx, slot + per_image - 1, 1);
            double p = 1.0 / (1.0 + exp((double)logits[i * 2] - logits[i * 2 + 1])), sc = 0.5 * (p + mx);
            lg -= y ? log_clamped(sc) : log_clamped(1.0 - sc);
            // d loss / d s (torch: the clamped log has zero gradient below −100; not reached here)
            double ds = (y ? -1.0 / sc : 1.0 / (1.0 - sc)) * c->w_global / B;
            double dp = 0.5 * ds * p * (1.0 - p);
            dl[i * 2 + 1] = (float)dp, dl[i * 2] = (float)-dp;
            be->max_ties_backward(dM + SS, Mx + SS, SS, (float)(0.5 * ds));
        } else {
            float z = logits[i * 2 + 1 - y] - logits[i * 2 + y];
            lg += softplus_f(z);
            float gz = sigmoid_f(z) * c->w_global / B;
            dl[i * 2 + 1 - y] = gz; dl[i * 2 + y] = -gz;
        }
        // back through Norm to the stage sums
        be->zero(dsum, (size_t)2 * SS);
        for (int k = 0; k < 2; k++) {
            if (c->map_minmax) be->minmax_backward(dsum + k * SS, dM + k * SS, sum + k * SS, Mx + k * SS, SS);
            else be->scale_copy(dsum + k * SS, dM + k * SS, 1.0f / NS, SS);
        }
        for (int s = 0; s < NS; s++) {
            const float *F = kano_stage_features(st, i, s);
            float *un = up + (size_t)2 * s * SS, *ua = un + SS, *dun = dup, *dua = dup + SS;
            be->copy(dup, dsum, (size_t)2 * SS);
            // AnomalyCLIP's per-stage terms on this stage's maps
            if (!c->local_fused) local_terms(be, c, slot + 3 + 3 * s, dun, dua, un, ua, gt, ngt, B, SS);
            be->zero(st->dprobs_n, (size_t)2 * N);  // dprobs_n and dprobs_a
            be->upsample_bilinear_backward(st->dprobs_n, dun, 1, c->grid_h, c->grid_w, S, S, ac);
            be->upsample_bilinear_backward(st->dprobs_a, dua, 1, c->grid_h, c->grid_w, S, S, ac);
            be->interleave2(st->dprobs, st->dprobs_n, st->dprobs_a, N);
            bicmci_forward(be, &m->acts, &m->p.stage[s], c, F, T);  // this stage's activations again
            bicmci_backward(be, st->dT + (size_t)i * 2 * P, &m->g.stage[s], st->dprobs, &m->acts, &m->p.stage[s], c,
                            F, T);
        }
    }
    kano_global_backward(m, st, dl);
    be->download(slots, st->slots, per_image * B);
    L->global = (float)(lg / B);
    double focal_all = 0, dice_all = 0;
    double *focal_s = calloc(NS, sizeof(double)), *dice_s = calloc(NS, sizeof(double));
    for (int i = 0; i < B; i++) {
        const float *t = slots + per_image * i;
        focal_all += t[0];
        dice_all += (1.0 - t[1]) + (1.0 - t[2]);
        for (int s = 0; s < NS; s++) {
            focal_s[s] += t[3 + 3 * s];
            dice_s[s] += (1.0 - t[4 + 3 * s]) + (1.0 - t[5 + 3 * s]);
        }
    }
    if (c->local_fused) {
        L->focal = (float)(focal_all / ((double)B * SS));
        L->dice = (float)(dice_all / B);
    } else {
        for (int s = 0; s < NS; s++) {
            L->focal += (float)(focal_s[s] / ((double)B * SS));
            L->dice += (float)(dice_s[s] / B);
        }
    }
    L->local = L->focal + L->dice;
    free(focal_s); free(dice_s); free(logits); free(slots);
    return 0;
}
