// Training of the two trained baselines from their features on the backend (docs/reference/zsad-anchors.md §1.1,
// §1.2): APRIL-GAN's per-layer linear maps (Focal + Dice(p_a) per layer) and AnomalyCLIP's prompts (CE on the
// global feature + λ per layer Focal + Dice + Dice), gradients written out by hand through the maps, the cosine
// GEMMs, the L2 norms, the linear maps or (on the host) the deep-prompt text tower, then one Adam step. The
// batch goes up once; the loss terms come down once.
#include "model/baseline_internal.h"
#include "model/ops_extra.h"
#include "common/error.h"

#include <stdlib.h>

// Loss terms per map layer: the local loss's slots (baseline_internal.h).
#define LOCAL_SLOTS(B) (1 + 2 * (size_t)(B))

static int aprilgan_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const char *const *names,
                              float *loss, int want_grad) {
    const BaselineConfig *c = &b->cfg;
    const Backend *be = b->be;
    int P = b->P, Wv = b->Wv, g = b->g, N = g * g, B = f->B, S = b->S, nl = c->n_layers;
    size_t BN = (size_t)B * N, BS = (size_t)B * S * S, ns = LOCAL_SLOTS(B);
    float *text = malloc(sizeof(float) * B * 2 * P), *slots_h = malloc(sizeof(float) * nl * ns);
    if (!text || !slots_h) { free(text); free(slots_h); return err_set("april-gan: out of memory"); }
    for (int k = 0; k < B; k++) {  // each image's class text, unit rows (host: the fixed text)
        const float *t = baseline_class_text(b, names[k]);
        if (!t) { free(text); free(slots_h); return -1; }
        l2norm_rows_forward(text + (size_t)k * 2 * P, NULL, t, 2, P);
    }
    float *rows, *gt, *ngt, *T, *lin, *un, *nrm, *lg, *dlg, *dun, *dlin, *slots, *scratch;
    BlSlice s[] = {
        {&rows, BN * Wv},       // (B*N, Wv) a layer's patch rows (the residual stream)
        {&gt, BS}, {&ngt, BS},  // (B,S,S) G, 1 − G
        {&T, 2 * (size_t)B * P},  // (B,2,P) each image's unit [t_n | t_a]
        {&lin, BN * P}, {&un, BN * P}, {&nrm, BN},  // (B*N,P) linear map, unit rows, (B*N) norms
        {&lg, 2 * BN}, {&dlg, 2 * BN},  // (2,B,N) logit planes and their gradient
        {&dun, BN * P}, {&dlin, BN * P},  // (B*N,P) gradients at un, lin
        {&slots, nl * ns}, {&scratch, baseline_local_scratch(B, g, S)},
    };
    if (baseline_work(b, s, sizeof s / sizeof s[0]) < 0) { free(text); free(slots_h); return -1; }
    be->upload(T, text, 2 * (size_t)B * P);
    be->upload(ngt, masks, BS);  // the raw mask, binarised into gt and ngt
    be->mask_binarize(gt, ngt, ngt, (int)BS);
    free(text);
    for (int i = 0; i < nl; i++) {
        const float *w = b->params + (size_t)i * (P * Wv + P);
        baseline_upload_patch_rows(b, f, i, rows);
        be->matmul_forward(lin, rows, w, w + (size_t)P * Wv, (int)BN, Wv, P);
        be->l2norm_rows_forward(un, nrm, lin, (int)BN, P);
        // per image b: [lg row 0 | row 1] (2,N) at column b·N = scale · T_b (2,P) · un_bᵀ
        be->gemm(0, 1, 2, N, P, c->logit_scale, T, P, 2L * P, un, P, (long)N * P, 0.0f, lg, (int)BN, N, B);
        if (want_grad) be->zero(dlg, 2 * BN);
        baseline_local_loss_on(be, slots + i * ns, want_grad ? dlg : NULL, lg, gt, ngt, B, g, S, c->softmax_first,
                               c->align_corners, 0, 1.0f, scratch);
        if (!want_grad) continue;
        // per image: dun_b (N,P) = scale · dlg_bᵀ (N,2) · T_b (2,P)
        be->gemm(1, 0, N, P, 2, c->logit_scale, dlg, (int)BN, N, T, P, 2L * P, 0.0f, dun, P, (long)N * P, B);
        be->zero(dlin, BN * P);
        be->l2norm_rows_backward(dlin, dun, un, nrm, (int)BN, P);
        float *gw = b->grad + (size_t)i * (P * Wv + P);
        be->matmul_backward(NULL, gw, gw + (size_t)P * Wv, dlin, rows, w, (int)BN, Wv, P);
    }
    be->download(slots_h, slots, nl * ns);
    double total = 0;
    for (int i = 0; i < nl; i++) total += baseline_local_value(slots_h + i * ns, B, S, 0);
    free(slots_h);
    *loss = (float)total;
    return 0;
}

static int anomalyclip_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                 float *loss, int want_grad) {
    const BaselineConfig *c = &b->cfg;
    const Backend *be = b->be;
    int P = b->P, g = b->g, N = g * g, B = f->B, S = b->S, nl = c->n_layers;
    size_t BN = (size_t)B * N, BS = (size_t)B * S * S, ns = LOCAL_SLOTS(B), nslots = 1 + nl * ns;
    float traw[2 * P], lab_h[B], *slots_h = malloc(sizeof(float) * nslots);
    if (!slots_h) return err_set("anomalyclip: out of memory");
    if (baseline_anomalyclip_text(b, traw) < 0) { free(slots_h); return -1; }
    for (int k = 0; k < B; k++) lab_h[k] = labels[k] ? 1.0f : 0.0f;
    float *rows, *glob, *gn, *gt, *ngt, *lab, *tr, *tn, *tnorm, *dtn, *dtr, *un, *lg, *dlg, *glg, *dglg, *slots, *scratch;
    BlSlice s[] = {
        {&rows, BN * P}, {&glob, (size_t)B * P}, {&gn, (size_t)B * P},  // a layer's patch tokens, global, unit
        {&gt, BS}, {&ngt, BS}, {&lab, B},   // (B,S,S) G, 1 − G; (B) labels
        {&tr, 2 * P}, {&tn, 2 * P}, {&tnorm, 2}, {&dtn, 2 * P}, {&dtr, 2 * P},  // text (2,P): raw, unit, norms, grads
        {&un, BN * P}, {&lg, 2 * BN}, {&dlg, 2 * BN},  // one layer: unit tokens, (2,B*N) logit planes, gradient
        {&glg, 2 * (size_t)B}, {&dglg, 2 * (size_t)B},  // (2,B) global logits, gradient
        {&slots, nslots}, {&scratch, baseline_local_scratch(B, g, S)},  // CE sum, then each layer's local slots
    };
    if (baseline_work(b, s, sizeof s / sizeof s[0]) < 0) { free(slots_h); return -1; }
    be->upload(glob, f->global, (size_t)B * P);
    be->upload(ngt, masks, BS);
    be->mask_binarize(gt, ngt, ngt, (int)BS);
    be->upload(lab, lab_h, B);
    be->upload(tr, traw, 2 * P);
    be->l2norm_rows_forward(tn, tnorm, tr, 2, P);
    be->zero(dtn, 2 * P);
    // global: CE over scale · [cos(I, t_n), cos(I, t_a)], mean over the batch; logits (2,B) = scale · tn · gnᵀ
    be->l2norm_rows_forward(gn, NULL, glob, B, P);
    be->gemm(0, 1, 2, B, P, c->logit_scale, tn, P, 0, gn, P, 0, 0.0f, glg, B, 0, 1);
    be->zero(dglg, 2 * (size_t)B);
    be->ce_pair_forward_backward(slots, dglg, glg, lab, B, 1.0f / B);
    be->gemm(0, 0, 2, P, B, c->logit_scale, dglg, B, 0, gn, P, 0, 1.0f, dtn, P, 0, 1);  // dtn += scale · dglg · gn
    for (int i = 0; i < nl; i++) {
        baseline_upload_patch_rows(b, f, i, rows);
        be->l2norm_rows_forward(un, NULL, rows, (int)BN, P);
        be->gemm(0, 1, 2, (int)BN, P, c->logit_scale, tn, P, 0, un, P, 0, 0.0f, lg, (int)BN, 0, 1);
        be->zero(dlg, 2 * BN);
        baseline_local_loss_on(be, slots + 1 + i * ns, dlg, lg, gt, ngt, B, g, S, c->softmax_first, c->align_corners,
                               1, c->local_weight, scratch);
        be->gemm(0, 0, 2, P, (int)BN, c->logit_scale, dlg, (int)BN, 0, un, P, 0, 1.0f, dtn, P, 0, 1);
    }
    be->download(slots_h, slots, nslots);
    double llocal = 0;
    for (int i = 0; i < nl; i++) llocal += baseline_local_value(slots_h + 1 + i * ns, B, S, 1);
    *loss = (float)(slots_h[0] / B + c->local_weight * llocal);
    free(slots_h);
    if (!want_grad) return 0;
    float dtraw[2 * P];
    be->zero(dtr, 2 * P);
    be->l2norm_rows_backward(dtr, dtn, tn, tnorm, 2, P);
    be->download(dtraw, dtr, 2 * P);
    return baseline_anomalyclip_text_backward(b, dtraw);
}

// The loss, and with want_grad its gradient in b->grad (overwritten).
static int loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                     const char *const *class_names, float *loss, int want_grad) {
    if (!b->n_params) return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
    b->be->set_precision(b->cfg.precision);
    if (want_grad) b->be->zero(b->grad, b->n_params);
    int rc = b->cfg.method == BL_APRILGAN ? aprilgan_loss_grad(b, f, masks, class_names, loss, want_grad)
                                          : anomalyclip_loss_grad(b, f, masks, labels, loss, want_grad);
    return rc < 0 ? -1 : b->be->sync();
}

int baseline_loss_grad_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                const char *const *class_names, float *loss, float *grad) {
    if (b->cfg.method == BL_MVFA) return baseline_mvfa_loss_grad(b, f, masks, labels, class_names, loss, grad);
    if (loss_grad(b, f, masks, labels, class_names, loss, grad != NULL) < 0) return -1;
    if (!grad) return 0;
    float *d = malloc(sizeof(float) * b->n_params);
    if (!d) return err_set("baseline: out of memory");
    b->be->download(d, b->grad, b->n_params);
    for (size_t i = 0; i < b->n_params; i++) grad[i] += d[i];
    free(d);
    return b->be->sync();
}

int baseline_train_step_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                 const char *const *class_names, float *loss) {
    if (b->cfg.method == BL_MVFA) return baseline_mvfa_train_step(b, f, masks, labels, class_names, loss);
    if (loss_grad(b, f, masks, labels, class_names, loss, 1) < 0) return -1;
    const BaselineConfig *c = &b->cfg;
    b->be->adam_update(b->params, b->grad, b->m1, b->m2, b->n_params, ++b->step, c->lr, c->beta1, c->beta2, c->eps);
    return b->be->sync();
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
