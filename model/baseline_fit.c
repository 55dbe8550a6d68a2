// Training of the two trained baselines from their features (docs/reference/zsad-anchors.md §1.1, §1.2): APRIL-GAN's per-layer
// linear maps (Focal + Dice(p_a) per layer) and AnomalyCLIP's prompts (CE on the global feature + λ per layer
// Focal + Dice + Dice), gradients written out by hand through the maps, the L2 norms, the linear maps or the
// deep-prompt text tower, then one Adam step.
#include "model/baseline_internal.h"
#include "model/adam.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// logits (B,2,g,g) = scale · cos(tok_n, text_{b,c}) with text per image (B,2,P) or shared (text_stride 0);
// tok (B*N,P) already unit rows.
static void unit_logits(float *logits, const float *tok, const float *text, size_t text_stride, int B, int N, int P,
                        float scale) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < N; i++) {
                const float *f = tok + ((size_t)b * N + i) * P, *t = text + b * text_stride + (size_t)c * P;
                double d = 0;
                for (int p = 0; p < P; p++) d += (double)f[p] * t[p];
                logits[((size_t)b * 2 + c) * N + i] = (float)(scale * d);
            }
}

// t (n,P) normalised copy of rows; norms kept.
static void unit_rows(float *out, float *norm, const float *in, int n, int P) { l2norm_rows_forward(out, norm, in, n, P); }

static int aprilgan_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const char *const *names,
                              float *loss, float *grad) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, Wv = b->Wv, g = b->g, N = g * g, B = f->B, rc = -1;
    float *text = malloc(sizeof(float) * B * 2 * P);
    if (!text) return err_set("april-gan: out of memory");
    for (int k = 0; k < B; k++) {
        const float *t = baseline_class_text(b, names[k]);
        if (!t) { free(text); return -1; }
        unit_rows(text + (size_t)k * 2 * P, NULL, t, 2, P);
    }
    size_t BN = (size_t)B * N;
    float *rows = malloc(sizeof(float) * BN * Wv), *lin = malloc(sizeof(float) * BN * P);
    float *un = malloc(sizeof(float) * BN * P), *nrm = malloc(sizeof(float) * BN);
    float *lg = malloc(sizeof(float) * BN * 2), *dlg = malloc(sizeof(float) * BN * 2);
    float *dun = malloc(sizeof(float) * BN * P), *dlin = malloc(sizeof(float) * BN * P);
    if (!rows || !lin || !un || !nrm || !lg || !dlg || !dun || !dlin) { err_set("april-gan: out of memory"); goto done; }
    double total = 0;
    for (int i = 0; i < c->n_layers; i++) {
        baseline_aprilgan_linear(b, i, f->blocks[i], B, rows, lin);
        l2norm_rows_forward(un, nrm, lin, (int)BN, P);
        unit_logits(lg, un, text, 2 * P, B, N, P, c->logit_scale);
        memset(dlg, 0, sizeof(float) * BN * 2);
        total += baseline_local_loss(grad ? dlg : NULL, lg, masks, B, g, b->S, c->softmax_first, c->align_corners, 0, 1.0f);
        if (!grad) continue;
        memset(dun, 0, sizeof(float) * BN * P);
        for (int k = 0; k < B; k++)
            for (int j = 0; j < N; j++)
                for (int cc = 0; cc < 2; cc++) {
                    float d = c->logit_scale * dlg[((size_t)k * 2 + cc) * N + j];
                    const float *t = text + ((size_t)k * 2 + cc) * P;
                    float *o = dun + ((size_t)k * N + j) * P;
                    for (int p = 0; p < P; p++) o[p] += d * t[p];
                }
        memset(dlin, 0, sizeof(float) * BN * P);
        l2norm_rows_backward(dlin, dun, un, nrm, (int)BN, P);
        float *gw = grad + (size_t)i * (P * Wv + P);
        const float *w = b->params + (size_t)i * (P * Wv + P);
        matmul_backward(NULL, gw, gw + (size_t)P * Wv, dlin, rows, w, (int)BN, Wv, P);
    }
    *loss = (float)total;
    rc = 0;
done:
    free(text); free(rows); free(lin); free(un); free(nrm); free(lg); free(dlg); free(dun); free(dlin);
    return rc;
}

static int anomalyclip_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                 float *loss, float *grad) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, g = b->g, N = g * g, T = b->T, B = f->B, rc = -1;
    float traw[2 * P], tn[2 * P], tnorm[2], dtn[2 * P], dtraw[2 * P], gn[(size_t)B * P];
    if (baseline_anomalyclip_text(b, traw) < 0) return -1;
    unit_rows(tn, tnorm, traw, 2, P);
    memset(dtn, 0, sizeof dtn);
    size_t BN = (size_t)B * N;
    float *un = malloc(sizeof(float) * BN * P), *lg = malloc(sizeof(float) * BN * 2), *dlg = malloc(sizeof(float) * BN * 2);
    float *demb = NULL;
    if (!un || !lg || !dlg) { err_set("anomalyclip: out of memory"); goto done; }
    // global: CE over scale · [cos(I, t_n), cos(I, t_a)], mean over the batch
    unit_rows(gn, NULL, f->global, B, P);
    double lglobal = 0;
    for (int k = 0; k < B; k++) {
        double l0 = 0, l1 = 0;
        for (int p = 0; p < P; p++) { l0 += (double)gn[k * P + p] * tn[p]; l1 += (double)gn[k * P + p] * tn[P + p]; }
        l0 *= c->logit_scale, l1 *= c->logit_scale;
        double m = fmax(l0, l1), lse = m + log(exp(l0 - m) + exp(l1 - m));
        lglobal += lse - (labels[k] ? l1 : l0);
        double pa = exp(l1 - lse), d1 = (pa - (labels[k] ? 1 : 0)) / B;  // d/dl1; d/dl0 = −d1
        for (int p = 0; p < P; p++) {
            dtn[P + p] += (float)(c->logit_scale * d1 * gn[k * P + p]);
            dtn[p] -= (float)(c->logit_scale * d1 * gn[k * P + p]);
        }
    }
    double llocal = 0;
    for (int i = 0; i < c->n_layers; i++) {
        for (int k = 0; k < B; k++)
            memcpy(un + (size_t)k * N * P, f->blocks[i] + ((size_t)k * T + 1) * P, sizeof(float) * N * P);
        l2norm_rows_forward(un, NULL, un, (int)BN, P);
        unit_logits(lg, un, tn, 0, B, N, P, c->logit_scale);
        memset(dlg, 0, sizeof(float) * BN * 2);
        llocal += baseline_local_loss(dlg, lg, masks, B, g, b->S, c->softmax_first, c->align_corners, 1, c->local_weight);
        for (int k = 0; k < B; k++)
            for (int cc = 0; cc < 2; cc++)
                for (int j = 0; j < N; j++) {
                    float d = c->logit_scale * dlg[((size_t)k * 2 + cc) * N + j];
                    const float *f = un + ((size_t)k * N + j) * P;
                    for (int p = 0; p < P; p++) dtn[cc * P + p] += d * f[p];
                }
    }
    *loss = (float)(lglobal / B + c->local_weight * llocal);
    if (grad) {
        memset(dtraw, 0, sizeof dtraw);
        l2norm_rows_backward(dtraw, dtn, tn, tnorm, 2, P);
        int Tt = b->prompt_T, W = b->Wt;
        demb = calloc((size_t)2 * Tt * W, sizeof(float));
        if (!demb) { err_set("anomalyclip: out of memory"); goto done; }
        if (deep_text_backward(b->trun, demb, grad + (size_t)2 * c->n_ctx * W, dtraw) < 0) goto done;
        for (int which = 0; which < 2; which++) {
            float *gc = grad + (size_t)which * c->n_ctx * W;
            const float *d = demb + ((size_t)which * Tt + 1) * W;
            for (size_t j = 0; j < (size_t)c->n_ctx * W; j++) gc[j] += d[j];
        }
    }
    rc = 0;
done:
    free(un); free(lg); free(dlg); free(demb);
    return rc;
}

int baseline_loss_grad_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                const char *const *class_names, float *loss, float *grad) {
    if (b->cfg.method == BL_APRILGAN) return aprilgan_loss_grad(b, f, masks, class_names, loss, grad);
    if (b->cfg.method == BL_ANOMALYCLIP) return anomalyclip_loss_grad(b, f, masks, labels, loss, grad);
    if (b->cfg.method == BL_MVFA) return baseline_mvfa_loss_grad(b, f, masks, labels, class_names, loss, grad);
    return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
}

int baseline_train_step_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                 const char *const *class_names, float *loss) {
    if (!b->n_params) return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
    if (b->cfg.method == BL_MVFA) return baseline_mvfa_train_step(b, f, masks, labels, class_names, loss);
    memset(b->grad, 0, sizeof(float) * b->n_params);
    if (baseline_loss_grad_features(b, f, masks, labels, class_names, loss, b->grad) < 0) return -1;
    const BaselineConfig *c = &b->cfg;
    adam_update(b->params, b->grad, b->m1, b->m2, b->n_params, ++b->step, c->lr, c->beta1, c->beta2, c->eps);
    return 0;
}

// From pixels: extract the features, then as above.
static int with_features(Baseline *b, const float *pixels, int B, BaselineFeatures **f) {
    if (!b->n_params) return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
    if (!(*f = baseline_features_new(b, B))) return -1;
    return baseline_extract(b, pixels, *f);
}

int baseline_loss_grad(Baseline *b, const float *pixels, const float *masks, const int *labels,
                       const char *const *class_names, int B, float *loss, float *grad) {
    BaselineFeatures *f = NULL;
    int rc = with_features(b, pixels, B, &f);
    if (rc == 0) rc = baseline_loss_grad_features(b, f, masks, labels, class_names, loss, grad);
    baseline_features_free(f);
    return rc;
}

int baseline_train_step(Baseline *b, const float *pixels, const float *masks, const int *labels,
                        const char *const *class_names, int B, float *loss) {
    BaselineFeatures *f = NULL;
    int rc = with_features(b, pixels, B, &f);
    if (rc == 0) rc = baseline_train_step_features(b, f, masks, labels, class_names, loss);
    baseline_features_free(f);
    return rc;
}
