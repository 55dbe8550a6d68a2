// The global and local losses under the switches where the paper's text reads two ways (docs/paper-switches.md):
// L_local on the fused maps (local_fused), Norm(.) of Eq. 10 as min-max (map_minmax), max(M) inside the global
// loss (global_max_map). The default path (per-stage loss, mean over stages, BCE on p_a) stays in kanoclip.c.
//
// Per image: each stage's Bi-CMCI probabilities are upsampled (up_n,s, up_a,s); the fused maps are
// M_x = Norm(Σ_s up_x,s) (x = n, a); L_local = focal(M_n, M_a) + dice(M_a, G) + dice(M_n, 1 − G) once, or per
// stage as AnomalyCLIP; L_global = BCE((p_a + max M_a) / 2, y) (torch's log clamp at −100) or CE on the logits.
// Bi-CMCI is run twice per (stage, image): forward for the maps, again before its backward (one stage's
// activations are kept at a time).
#include "model/kanoclip_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/bicmci.h"
#include "model/conv_adapter.h"
#include "model/kanoclip_losses.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

int kano_paper_switches_on(const KanoclipConfig *c) { return c->local_fused || c->map_minmax || c->global_max_map; }

void kano_minmax_forward(float *x, int n) {
    float lo = x[0], hi = x[0];
    for (int q = 1; q < n; q++) lo = fminf(lo, x[q]), hi = fmaxf(hi, x[q]);
    float d = hi - lo;
    for (int q = 0; q < n; q++) x[q] = d > 0 ? (x[q] - lo) / d : 0.0f;
}

// Backward of y = (x − min x) / (max x − min x) given y and the extremes of x: dx += dy / d, and the gradients of
// min and max (Σ dy (y − 1) / d and −Σ dy y / d) shared evenly by the tied extremes, as torch's amin/amax.
static void minmax_backward(float *dx, const float *dy, const float *x, const float *y, int n) {
    float lo = x[0], hi = x[0];
    for (int q = 1; q < n; q++) lo = fminf(lo, x[q]), hi = fmaxf(hi, x[q]);
    float d = hi - lo;
    if (!(d > 0)) return;
    double glo = 0, ghi = 0;
    int nlo = 0, nhi = 0;
    for (int q = 0; q < n; q++) {
        dx[q] += dy[q] / d;
        glo += (double)dy[q] * (y[q] - 1.0) / d;
        ghi -= (double)dy[q] * y[q] / d;
        nlo += x[q] == lo;
        nhi += x[q] == hi;
    }
    for (int q = 0; q < n; q++) {
        if (x[q] == lo) dx[q] += (float)(glo / nlo);
        if (x[q] == hi) dx[q] += (float)(ghi / nhi);
    }
}

static float log_clamped(double v) { return (float)fmax(log(v), -100.0); }  // torch's binary_cross_entropy

int kano_global_local_joint(Kanoclip *m, const KanoBatch *b, const float *tfeat, int U, const int *uidx,
                            float *dtfeat, KanoLosses *L) {
    const KanoclipConfig *c = &m->cfg;
    int B = b->B, P = c->width, N = c->grid_h * c->grid_w, S = c->image_size, SS = S * S, NS = c->n_stages;
    int R = c->adapter ? P / c->adapter_ratio : 1, ac = c->upsample_align_corners;
    AdapterActs ad;
    float *buf = kano_global_buffers(&ad, B, P, R), *ic = ad.dln + B * P, *icn = ic + B * P, *icnorm = icn + B * P,
          *logits = icnorm + B;
    float *dicn = calloc((size_t)B * P * 2, sizeof(float)), *dic = dicn + B * P;
    float *up = malloc(sizeof(float) * (size_t)SS * (2 * NS + 10)), *sum = up + (size_t)2 * NS * SS;
    float *Mx = sum + 2 * SS, *dM = Mx + 2 * SS, *dsum = dM + 2 * SS, *gt = dsum + 2 * SS, *ngt = gt + SS;
    float *pn = malloc(sizeof(float) * (size_t)N * 4), *pa = pn + N, *dpn = pa + N, *dpa = dpn + N;
    float *dprobs = malloc(sizeof(float) * N * 2), *T = malloc(sizeof(float) * 4 * P), *dT = T + 2 * P;
    float *dup = malloc(sizeof(float) * (size_t)SS * 2);
    if (!buf || !dicn || !up || !pn || !dprobs || !T || !dup) {
        free(buf); free(dicn); free(up); free(pn); free(dprobs); free(T); free(dup);
        return err_set("KAnoCLIP: out of memory for the fused maps (%d stages of %d x %d)", NS, S, S);
    }
    kano_global_forward(m, b, tfeat, U, uidx, &ad, ic, icn, icnorm, logits);
    double lg = 0, focal_all = 0, dice_all = 0;
    double *focal_s = calloc(NS, sizeof(double)), *dice_s = calloc(NS, sizeof(double));
    for (int i = 0; i < B; i++) {
        const float *mk = b->mask + (size_t)i * SS;
        for (int q = 0; q < SS; q++) { gt[q] = mk[q] > 0.5f ? 1.0f : 0.0f; ngt[q] = 1.0f - gt[q]; }
        for (int k = 0; k < 2; k++) memcpy(T + k * P, tfeat + ((size_t)k * U + uidx[i]) * P, sizeof(float) * P);
        memset(sum, 0, sizeof(float) * 2 * SS);
        for (int s = 0; s < NS; s++) {
            const float *F = b->stage + (((size_t)i * NS + s) * (1 + N) + 1) * P;
            float *un = up + (size_t)2 * s * SS, *ua = un + SS;
            bicmci_forward(&m->acts, &m->p.stage[s], c, F, T);
            for (int n = 0; n < N; n++) { pn[n] = m->acts.probs[2 * n]; pa[n] = m->acts.probs[2 * n + 1]; }
            upsample_bilinear_forward(un, pn, 1, c->grid_h, c->grid_w, S, S, ac);
            upsample_bilinear_forward(ua, pa, 1, c->grid_h, c->grid_w, S, S, ac);
            for (int q = 0; q < SS; q++) sum[q] += un[q], sum[SS + q] += ua[q];
        }
        // M_n = Mx[0..SS), M_a = Mx[SS..2SS): Norm of the stage sums
        memcpy(Mx, sum, sizeof(float) * 2 * SS);
        for (int k = 0; k < 2; k++) {
            if (c->map_minmax) kano_minmax_forward(Mx + k * SS, SS);
            else for (int q = 0; q < SS; q++) Mx[k * SS + q] /= NS;
        }
        memset(dM, 0, sizeof(float) * 2 * SS);
        if (c->local_fused) {
            focal_all += focal_sum_forward(Mx, Mx + SS, gt, SS);
            dice_all += (1.0 - dice_forward(Mx + SS, gt, SS)) + (1.0 - dice_forward(Mx, ngt, SS));
            focal_sum_backward(dM, dM + SS, Mx, Mx + SS, gt, SS, c->w_local / ((float)B * SS));
            dice_backward(dM + SS, Mx + SS, gt, SS, -c->w_local / B);
            dice_backward(dM, Mx, ngt, SS, -c->w_local / B);
        }
        // global: p_a = σ(l_a − l_n); with max(M) inside, BCE on s = (p_a + max M_a) / 2
        int y = b->label[i] ? 1 : 0;
        float dl[2];
        if (c->global_max_map) {
            float mx = Mx[SS];
            for (int q = 1; q < SS; q++) mx = fmaxf(mx, Mx[SS + q]);
            double p = 1.0 / (1.0 + exp((double)logits[i * 2] - logits[i * 2 + 1])), sc = 0.5 * (p + mx);
            lg -= y ? log_clamped(sc) : log_clamped(1.0 - sc);
            // d loss / d s (torch: the clamped log has zero gradient below −100; not reached here)
            double ds = (y ? -1.0 / sc : 1.0 / (1.0 - sc)) * c->w_global / B;
            double dp = 0.5 * ds * p * (1.0 - p);
            dl[1] = (float)dp, dl[0] = (float)-dp;
            int nmax = 0;
            for (int q = 0; q < SS; q++) nmax += Mx[SS + q] == mx;
            for (int q = 0; q < SS; q++)
                if (Mx[SS + q] == mx) dM[SS + q] += (float)(0.5 * ds / nmax);
        } else {
            float z = logits[i * 2 + 1 - y] - logits[i * 2 + y];
            lg += softplus_f(z);
            float gz = sigmoid_f(z) * c->w_global / B;
            dl[1 - y] = gz; dl[y] = -gz;
        }
        for (int s = 0; s < 2; s++) {
            float *dt = dtfeat + ((size_t)s * U + uidx[i]) * P;
            const float *t = tfeat + ((size_t)s * U + uidx[i]) * P;
            for (int p = 0; p < P; p++) {
                dt[p] += dl[s] / c->tau * icn[(size_t)i * P + p];
                dicn[(size_t)i * P + p] += dl[s] / c->tau * t[p];
            }
        }
        // back through Norm to the stage sums
        memset(dsum, 0, sizeof(float) * 2 * SS);
        for (int k = 0; k < 2; k++) {
            if (c->map_minmax) minmax_backward(dsum + k * SS, dM + k * SS, sum + k * SS, Mx + k * SS, SS);
            else for (int q = 0; q < SS; q++) dsum[k * SS + q] = dM[k * SS + q] / NS;
        }
        for (int s = 0; s < NS; s++) {
            const float *F = b->stage + (((size_t)i * NS + s) * (1 + N) + 1) * P;
            float *un = up + (size_t)2 * s * SS, *ua = un + SS, *dun = dup, *dua = dup + SS;
            memcpy(dup, dsum, sizeof(float) * 2 * SS);
            if (!c->local_fused) {  // AnomalyCLIP's per-stage terms on this stage's maps
                focal_s[s] += focal_sum_forward(un, ua, gt, SS);
                dice_s[s] += (1.0 - dice_forward(ua, gt, SS)) + (1.0 - dice_forward(un, ngt, SS));
                focal_sum_backward(dun, dua, un, ua, gt, SS, c->w_local / ((float)B * SS));
                dice_backward(dua, ua, gt, SS, -c->w_local / B);
                dice_backward(dun, un, ngt, SS, -c->w_local / B);
            }
            memset(dpn, 0, sizeof(float) * N * 2);
            upsample_bilinear_backward(dpn, dun, 1, c->grid_h, c->grid_w, S, S, ac);
            upsample_bilinear_backward(dpa, dua, 1, c->grid_h, c->grid_w, S, S, ac);
            for (int n = 0; n < N; n++) { dprobs[2 * n] = dpn[n]; dprobs[2 * n + 1] = dpa[n]; }
            bicmci_forward(&m->acts, &m->p.stage[s], c, F, T);  // this stage's activations again
            memset(dT, 0, sizeof(float) * 2 * P);
            bicmci_backward(dT, &m->g.stage[s], dprobs, &m->acts, &m->p.stage[s], c, F, T);
            for (int k = 0; k < 2; k++) {
                float *d = dtfeat + ((size_t)k * U + uidx[i]) * P;
                for (int p = 0; p < P; p++) d[p] += dT[k * P + p];
            }
        }
    }
    L->global = (float)(lg / B);
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
    if (c->adapter) {
        l2norm_rows_backward(dic, dicn, icn, icnorm, B, P);
        adapter_backward(&m->g.adapter, dic, &ad, &m->p.adapter, b->global, B, P, R);
    }
    free(focal_s); free(dice_s);
    free(buf); free(dicn); free(up); free(pn); free(dprobs); free(T); free(dup);
    return 0;
}
