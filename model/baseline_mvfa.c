// MVFA-AD (Huang et al., CVPR 2024; MediaBrain-SJTU/MVFA-AD), zero-shot: CLIP_Inplanted (CLIP/adapter.py) puts a
// segmentation and a detection adapter (model/mvfa_adapter.c) after each of its map layers (6/12/18/24 of
// ViT-L/14) and rewrites the residual stream there, x <- 0.8 x + 0.1 seg_out + 0.1 det_out, so every later layer
// sees the adapters. The adapters' bottleneck tokens (768 = the text width; class row dropped) are compared with
// APRIL-GAN's prompt ensemble (utils.py encode_text_with_prompt_ensemble), as train_zero.py / test_zero.py do:
//   image score  Σ_layers mean_patches softmax(100 · unit(det) · T)[abnormal]
//   map          Σ_layers softmax(bilinear(100 · unit(seg) · T, S, align_corners = True))[abnormal]
//   loss         Σ_layers BCEWithLogits(image score of the layer, y)      (a probability fed as a logit, as upstream)
//              + Σ_layers Focal + Dice(p_abnormal) of the seg map       (only for data with pixel ground truth)
// with two Adam optimisers (segmentation adapters, detection adapters), the first stepped only on batches with
// masks. The frozen tower up to the first map layer is cached (baseline_features.c); the layers after it run
// here with the adapters (model/frozen_blocks.c), and the backward goes through them to the earlier adapters.
// Not reproduced: train_zero.py's choice of the checkpoint by its score on the target test set, and its fp16
// autocast (we compute in fp32); the min-max normalisation of test_zero.py changes no metric.
#include "model/baseline_internal.h"
#include "model/adam.h"
#include "model/frozen_blocks.h"
#include "model/gemm.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

enum { SEG = 0, DET = 1 };

struct MvfaRun {
    int keep, B;
    FrozenBlocks *blocks;               // layers[0]+1 .. layers[n-1]; NULL with one map layer
    float *mem;
    size_t cap;
    float *xin[BL_MAX_LAYERS];          // (B,T,Wv) the stream entering map layer i's adapters (i >= 1)
    float *med[2][BL_MAX_LAYERS];       // (B,T,P) bottleneck tokens of the seg / det adapter of map layer i
    float *out[2][BL_MAX_LAYERS];       // (B,T,Wv) adapter outputs back into the stream (not the last layer)
    float *dmed[2][BL_MAX_LAYERS];      // (B,T,P) the loss's gradient at med (keeping runs)
    float *x;                           // (B,T,Wv) the mixed stream after map layer i
    float *dx, *dxin, *dmix, *work;     // (B,T,Wv) x 3, (B,T,Wv+P): backward scratch (keeping runs)
};

int baseline_mvfa_check(const Baseline *b) {
    for (int i = 1; i < b->cfg.n_layers; i++)
        if (b->layers[i] <= b->layers[i - 1])
            return err_set("baseline mvfa-ad: map layers must increase (layer %d after %d)", b->layers[i],
                           b->layers[i - 1]);
    return 0;
}

size_t baseline_mvfa_n_params(const Baseline *b) { return (size_t)2 * b->cfg.n_layers * 2 * b->P * b->Wv; }

// fc1 (P,Wv) of the seg (which 0) or det (1) adapter of map layer i in a parameter-shaped block; fc2 (Wv,P) follows.
static float *adapter_w(const Baseline *b, float *block, int which, int i) {
    size_t per = (size_t)2 * b->P * b->Wv;
    return block + ((size_t)which * b->cfg.n_layers + i) * per;
}

static void run_free(MvfaRun *r) {
    if (!r) return;
    frozen_blocks_free(r->blocks);
    free(r->mem);
    free(r);
}

void baseline_mvfa_free(Baseline *b) {
    run_free(b->mvfa_train);
    run_free(b->mvfa_eval);
    b->mvfa_train = b->mvfa_eval = NULL;
}

// The run for B images (keep: with what the backward needs), made or grown on demand.
static MvfaRun *run_for(Baseline *b, int keep, int B) {
    MvfaRun **slot = keep ? &b->mvfa_train : &b->mvfa_eval, *r = *slot;
    int n = b->cfg.n_layers;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) { err_set("mvfa-ad: out of memory"); return NULL; }
        r->keep = keep;
        if (n > 1 && !(r->blocks = frozen_blocks_new(b->m->vision.blocks, &b->m->vision.shape, b->layers[0] + 1,
                                                     b->layers[n - 1], keep))) {
            free(r);
            return NULL;
        }
        *slot = r;
    }
    if (r->mem && r->B == B) return r;
    size_t BT = (size_t)B * b->T, Wv = b->Wv, P = b->P;
    int slots = keep ? n : 1;  // an inference run goes layer by layer through one set of buffers
    size_t total = slots * (BT * Wv + 2 * BT * P + 2 * BT * Wv) + BT * Wv +
                   (keep ? slots * 2 * BT * P + 3 * BT * Wv + BT * (Wv + P) : 0);
    if (total > r->cap) {
        free(r->mem);
        r->mem = malloc(sizeof(float) * total);
        r->cap = r->mem ? total : 0;
        if (!r->mem) { err_set("mvfa-ad: out of memory for a batch of %d (%zu floats)", B, total); return NULL; }
    }
    float *p = r->mem;
    for (int i = 0; i < slots; i++) {
        r->xin[i] = p, p += BT * Wv;
        for (int w = 0; w < 2; w++) r->med[w][i] = p, p += BT * P;
        for (int w = 0; w < 2; w++) r->out[w][i] = p, p += BT * Wv;
        for (int w = 0; keep && w < 2; w++) r->dmed[w][i] = p, p += BT * P;
    }
    r->x = p, p += BT * Wv;
    if (keep) {
        r->dx = p, p += BT * Wv;
        r->dxin = p, p += BT * Wv;
        r->dmix = p, p += BT * Wv;
        r->work = p;
    }
    r->B = B;
    return r;
}

// Map layer i: the stream entering it (the cached features for i = 0, else the blocks after map layer i-1 over the
// mixed stream), its two adapters, and for every layer but the last the mixed stream. Returns the stream entering
// the adapters (NULL with err_set).
static const float *layer_forward(Baseline *b, MvfaRun *r, int i, const float *features) {
    const BaselineConfig *c = &b->cfg;
    int B = r->B, n = c->n_layers, s = r->keep ? i : 0, BT = B * b->T, Wv = b->Wv, P = b->P;
    const float *in = features;
    if (i > 0) {
        if (frozen_blocks_forward(r->blocks, r->xin[s], r->x, b->layers[i - 1] + 1, b->layers[i], B, b->T) < 0)
            return NULL;
        in = r->xin[s];
    }
    int last = i == n - 1;
    for (int w = 0; w < 2; w++) {
        const float *w1 = adapter_w(b, b->params, w, i);
        mvfa_adapter_forward(r->med[w][s], last ? NULL : r->out[w][s], in, w1, w1 + (size_t)P * Wv, BT, Wv, P);
    }
    if (!last) {  // x = keep·x + mix·seg_out + mix·det_out (CLIP_Inplanted.forward)
        scaled_add_forward(r->x, c->adapter_keep, in, c->adapter_mix, r->out[SEG][s], (size_t)BT * Wv);
        scaled_add_forward(r->x, 1.0f, r->x, c->adapter_mix, r->out[DET][s], (size_t)BT * Wv);
    }
    return in;
}

// Detection: prob (B*T,2) = softmax(scale · unit(med) · text_kᵀ) per image k (text (B,2,P) unit rows, stride
// text_stride floats: 0 when shared); un (B*T,P), norm (B*T), lg (B*T,2) kept; score (B) = Σ over the patch rows
// (the class row skipped) of prob[., 1] / N.
static void det_forward(const Baseline *b, const float *med, const float *text, size_t text_stride, int B, float *un,
                        float *norm, float *lg, float *prob, float *score) {
    int T = b->T, P = b->P, N = T - 1;
    l2norm_rows_forward(un, norm, med, B * T, P);
    for (int k = 0; k < B; k++)
        matmul_forward(lg + (size_t)k * T * 2, un + (size_t)k * T * P, text + k * text_stride, NULL, T, P, 2);
    softmax_rows_forward(prob, lg, B * T, 2, b->cfg.logit_scale);
    for (int k = 0; k < B; k++) {
        double s = 0;
        for (int j = 1; j <= N; j++) s += prob[((size_t)k * T + j) * 2 + 1];
        score[k] = (float)(s / N);
    }
}

// dmed (B*T,P) += the gradient of Σ_k dscore_k · score_k through det_forward's activations; dprob, dlg (B*T,2) and
// dun (B*T,P) scratch.
static void det_backward(const Baseline *b, float *dmed, const float *dscore, const float *text, size_t text_stride,
                         int B, const float *un, const float *norm, const float *prob, float *dprob, float *dlg,
                         float *dun) {
    int T = b->T, P = b->P, N = T - 1;
    memset(dprob, 0, sizeof(float) * B * T * 2);
    for (int k = 0; k < B; k++)
        for (int j = 1; j <= N; j++) dprob[((size_t)k * T + j) * 2 + 1] = dscore[k] / N;
    memset(dlg, 0, sizeof(float) * B * T * 2);
    softmax_rows_backward(dlg, dprob, prob, B * T, 2, b->cfg.logit_scale);
    memset(dun, 0, sizeof(float) * B * T * P);
    for (int k = 0; k < B; k++)
        matmul_backward(dun + (size_t)k * T * P, NULL, NULL, dlg + (size_t)k * T * 2, un + (size_t)k * T * P,
                        text + k * text_stride, T, P, 2);
    l2norm_rows_backward(dmed, dun, un, norm, B * T, P);
}

// Segmentation logits lg (B,2,g,g) = scale · text_k · unit(patch rows of med)ᵀ per image; un (B*T,P), norm kept.
static void seg_logits(const Baseline *b, const float *med, const float *text, size_t text_stride, int B, float *un,
                       float *norm, float *lg) {
    int T = b->T, P = b->P, N = T - 1;
    l2norm_rows_forward(un, norm, med, B * T, P);
    for (int k = 0; k < B; k++)
        sgemm(CblasNoTrans, CblasTrans, 2, N, P, b->cfg.logit_scale, text + k * text_stride, P,
              un + ((size_t)k * T + 1) * P, P, 0.0f, lg + (size_t)k * 2 * N, N);
}

// dmed (B*T,P) += the gradient at med of the loss whose gradient at seg_logits' output is dlg (B,2,g,g); dun scratch.
static void seg_backward(const Baseline *b, float *dmed, const float *dlg, const float *text, size_t text_stride,
                         int B, const float *un, const float *norm, float *dun) {
    int T = b->T, P = b->P, N = T - 1;
    memset(dun, 0, sizeof(float) * B * T * P);
    for (int k = 0; k < B; k++)
        sgemm(CblasTrans, CblasNoTrans, N, P, 2, b->cfg.logit_scale, dlg + (size_t)k * 2 * N, N, text + k * text_stride,
              P, 1.0f, dun + ((size_t)k * T + 1) * P, P);
    l2norm_rows_backward(dmed, dun, un, norm, B * T, P);
}

int baseline_mvfa_score(Baseline *b, const char *class_name, const BaselineFeatures *f, float *scores, float *maps) {
    const BaselineConfig *c = &b->cfg;
    int B = f->B, T = b->T, P = b->P, S = b->S, g = b->g;
    size_t SS = (size_t)S * S, BT = (size_t)B * T;
    const float *t = baseline_class_text(b, class_name);
    MvfaRun *r = t ? run_for(b, 0, B) : NULL;
    if (!r) return -1;
    float text[2 * P];
    l2norm_rows_forward(text, NULL, t, 2, P);
    float *un = malloc(sizeof(float) * BT * P), *norm = malloc(sizeof(float) * BT);
    float *lg = malloc(sizeof(float) * BT * 2), *prob = malloc(sizeof(float) * BT * 2), *sc = malloc(sizeof(float) * B);
    int rc = -1;
    if (!un || !norm || !lg || !prob || !sc) { err_set("mvfa-ad: out of memory"); goto done; }
    memset(scores, 0, sizeof(float) * B);
    memset(maps, 0, sizeof(float) * B * SS);
    for (int i = 0; i < c->n_layers; i++) {
        if (!layer_forward(b, r, i, f->blocks[0])) goto done;
        det_forward(b, r->med[DET][0], text, 0, B, un, norm, lg, prob, sc);
        for (int k = 0; k < B; k++) scores[k] += sc[k];
        for (int k = 0; k < B; k++)
            mvfa_patch_map_add(maps + k * SS, r->med[SEG][0] + ((size_t)k * T + 1) * P, 1, g, P, P, text,
                                   c->logit_scale, c->softmax_first, c->align_corners, S);
    }
    if (c->sigma > 0) gaussian_filter_forward(maps, maps, B, S, S, c->sigma, 4.0f);
    rc = 0;
done:
    free(un); free(norm); free(lg); free(prob); free(sc);
    return rc;
}

int baseline_mvfa_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                            const char *const *names, float *loss, float *grad) {
    const BaselineConfig *c = &b->cfg;
    int B = f->B, T = b->T, P = b->P, Wv = b->Wv, n = c->n_layers, N = T - 1, BT = B * T;
    MvfaRun *r = run_for(b, 1, B);
    if (!r) return -1;
    float *text = malloc(sizeof(float) * B * 2 * P), *y = malloc(sizeof(float) * B), *sc = malloc(sizeof(float) * B);
    float *dsc = malloc(sizeof(float) * B), *un = malloc(sizeof(float) * BT * P), *norm = malloc(sizeof(float) * BT);
    float *lg = malloc(sizeof(float) * BT * 2), *prob = malloc(sizeof(float) * BT * 2);
    float *dlg = malloc(sizeof(float) * BT * 2), *dprob = malloc(sizeof(float) * BT * 2);
    float *dun = malloc(sizeof(float) * BT * P), *slg = malloc(sizeof(float) * B * 2 * N);
    int rc = -1;
    if (!text || !y || !sc || !dsc || !un || !norm || !lg || !prob || !dlg || !dprob || !dun || !slg) {
        err_set("mvfa-ad: out of memory");
        goto done;
    }
    for (int k = 0; k < B; k++) {
        const float *t = baseline_class_text(b, names[k]);
        if (!t) goto done;
        l2norm_rows_forward(text + (size_t)k * 2 * P, NULL, t, 2, P);
        y[k] = labels[k] ? 1.0f : 0.0f;
    }
    const float *in[BL_MAX_LAYERS];
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (!(in[i] = layer_forward(b, r, i, f->blocks[0]))) goto done;
        // detection: BCEWithLogits(mean_patches p_a, y), batch mean
        det_forward(b, r->med[DET][i], text, 2 * P, B, un, norm, lg, prob, sc);
        total += bce_logits_forward(sc, y, B);
        memset(r->dmed[DET][i], 0, sizeof(float) * BT * P);
        memset(dsc, 0, sizeof(float) * B);
        bce_logits_backward(dsc, sc, y, B, 1.0f);
        det_backward(b, r->dmed[DET][i], dsc, text, 2 * P, B, un, norm, prob, dprob, dlg, dun);
        // segmentation: Focal + Dice(p_a) of the upsampled map, where there is pixel ground truth
        memset(r->dmed[SEG][i], 0, sizeof(float) * BT * P);
        if (!masks) continue;
        seg_logits(b, r->med[SEG][i], text, 2 * P, B, un, norm, slg);
        memset(dlg, 0, sizeof(float) * B * 2 * N);
        total += mvfa_local_loss(dlg, slg, masks, B, b->g, b->S, c->softmax_first, c->align_corners, 0, 1.0f);
        seg_backward(b, r->dmed[SEG][i], dlg, text, 2 * P, B, un, norm, dun);
    }
    *loss = (float)total;
    if (grad) {
        // back from the last map layer: the stream after it reaches no output, so its adapters' fc2 get nothing
        for (int i = n - 1; i >= 0; i--) {
            int last = i == n - 1;
            size_t NW = (size_t)BT * Wv;
            memset(r->dxin, 0, sizeof(float) * NW);
            if (!last) {  // x = keep·in + mix·seg_out + mix·det_out
                memset(r->dmix, 0, sizeof(float) * NW);
                scaled_add_backward(r->dxin, r->dmix, r->dx, c->adapter_keep, c->adapter_mix, NW);
            }
            for (int w = 0; w < 2; w++) {
                float *dw1 = adapter_w(b, grad, w, i);
                const float *w1 = adapter_w(b, b->params, w, i);
                mvfa_adapter_backward(r->dxin, dw1, dw1 + (size_t)P * Wv, r->dmed[w][i], last ? NULL : r->dmix, in[i],
                                      r->med[w][i], last ? NULL : r->out[w][i], w1, w1 + (size_t)P * Wv, BT, Wv, P,
                                      r->work);
            }
            if (i > 0 && frozen_blocks_backward(r->blocks, r->dx, r->dxin, b->layers[i - 1] + 1, b->layers[i]) < 0)
                goto done;
        }
    }
    rc = 0;
done:
    free(text); free(y); free(sc); free(dsc); free(un); free(norm); free(lg); free(prob); free(dlg); free(dprob);
    free(dun); free(slg);
    return rc;
}

int baseline_mvfa_train_step(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                             const char *const *names, float *loss) {
    const BaselineConfig *c = &b->cfg;
    memset(b->grad, 0, sizeof(float) * b->n_params);
    if (baseline_mvfa_loss_grad(b, f, masks, labels, names, loss, b->grad) < 0) return -1;
    size_t half = b->n_params / 2;  // seg adapters | det adapters (train_zero.py's seg_optimizer, det_optimizer)
    adam_update(b->params + half, b->grad + half, b->m1 + half, b->m2 + half, half, ++b->step, c->lr, c->beta1,
                c->beta2, c->eps);
    if (masks)
        adam_update(b->params, b->grad, b->m1, b->m2, half, ++b->step_seg, c->lr, c->beta1, c->beta2, c->eps);
    return 0;
}
