// The baseline heads (model/baselines.h): configuration defaults, per-method scoring of a batch, and the
// training step of the two trained baselines (APRIL-GAN's linear maps, AnomalyCLIP's prompts) with Adam.
#include "model/baselines.h"
#include "model/adam.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "common/error.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_CACHE 256

struct Baseline {
    BaselineConfig cfg;
    const ClipModel *m;
    Tokenizer *tok;
    int S, g, T, P, Wv, Wt, L;
    int layers[BL_MAX_LAYERS];   // resolved 1-based layers
    float *pos;                  // (T, Wv) positional embedding at grid g (WinCLIP's embedded tokens)
    ClipVisionRun *vrun;
    // fixed-prompt text features per class name
    int n_cached;
    char *cache_name[TEXT_CACHE];
    float *cache_text[TEXT_CACHE];  // (2,P)
    // learnable parameters, Adam moments, gradient
    float *params, *grad, *m1, *m2;
    size_t n_params;
    long step;
    // AnomalyCLIP prompts
    int prompt_T, eot[2];
    float *prompt_embeds;        // (2, T, Wt) token embeddings of the two prompt templates
    DeepTextRun *trun;
};

const char *baseline_method_name(BaselineMethod m) {
    static const char *names[] = {"clip", "clip-ac", "winclip", "april-gan", "anomalyclip"};
    return m >= 0 && m <= BL_ANOMALYCLIP ? names[m] : "?";
}

int baseline_method_from_name(const char *name) {
    for (int m = 0; m <= BL_ANOMALYCLIP; m++)
        if (!strcmp(name, baseline_method_name(m))) return m;
    return -1;
}

void baseline_config_defaults(BaselineConfig *c, BaselineMethod method, int L) {
    memset(c, 0, sizeof *c);
    c->method = method;
    c->image_size = 518;
    c->pos_interp = CLIP_POS_BILINEAR;
    c->logit_scale = 100.0f;
    c->softmax_first = 1;
    c->align_corners = 0;
    c->n_layers = 1;
    c->layers[0] = -1;
    c->global_ln_post = 1;
    c->templates = BL_TPL_NONE;
    c->text_pool = BL_POOL_MEAN_UNIT;
    c->class_name = BL_CLASS_SPACES;
    c->n_scales = 2, c->scales[0] = 2, c->scales[1] = 3;
    c->vv_from = L / 4 > 0 ? L / 4 : 1;
    c->n_ctx = 12, c->deep_depth = 9, c->deep_len = 4;
    strcpy(c->state_normal, "");
    strcpy(c->state_abnormal, "damaged");
    strcpy(c->object_word, "object");
    c->local_weight = 1.0f;
    c->init_std = 0.02f;
    c->lr = 1e-3f, c->beta1 = 0.5f, c->beta2 = 0.999f, c->eps = 1e-8f;
    c->seed = 111;
    int q = L / 4 > 0 ? L / 4 : 1;
    switch (method) {
    case BL_CLIP: c->sigma = 4.0f; break;  // maps as AnomalyCLIP's pipeline without DPAM (zsad-anchors §1.7)
    case BL_CLIP_AC: c->sigma = 4.0f, c->templates = BL_TPL_IMAGENET80; break;
    case BL_WINCLIP:
        c->image_size = 240;
        c->logit_scale = 1.0f / 0.07f;
        c->templates = BL_TPL_WINCLIP21;
        c->text_pool = BL_POOL_MEAN_RAW;
        break;
    case BL_APRILGAN:
        c->templates = BL_TPL_APRILGAN35;
        c->class_name = BL_CLASS_RAW;
        c->softmax_first = 0, c->align_corners = 1;
        c->n_layers = 4;
        for (int i = 0; i < 4; i++) c->layers[i] = q * (i + 1);
        break;
    case BL_ANOMALYCLIP:
        c->logit_scale = 1.0f / 0.07f;
        c->sigma = 4.0f;
        c->global_ln_post = 0;
        c->class_name = BL_CLASS_OBJECT;
        c->n_layers = 4;
        for (int i = 0; i < 4; i++) c->layers[i] = q * (i + 1);
        break;
    }
}

const BaselineConfig *baseline_config(const Baseline *b) { return &b->cfg; }
float *baseline_params(Baseline *b) { return b->params; }
size_t baseline_n_params(const Baseline *b) { return b->n_params; }

// The AnomalyCLIP prompt "X X ... X [state ]object." tokenised: positions 1..n_ctx must be the X tokens.
static int anomalyclip_prompts(Baseline *b) {
    const BaselineConfig *c = &b->cfg;
    const ClipText *t = &b->m->text;
    int T = t->context_length, W = b->Wt;
    b->prompt_T = T;
    b->prompt_embeds = malloc(sizeof(float) * 2 * T * W);
    int *ids = calloc(2 * T, sizeof(int));
    if (!b->prompt_embeds || !ids) { free(ids); return err_set("anomalyclip: out of memory"); }
    for (int which = 0; which < 2; which++) {
        const char *state = which ? c->state_abnormal : c->state_normal;
        size_t n = 2 * c->n_ctx + strlen(state) + strlen(c->object_word) + 4;
        char *s = malloc(n), *p = s;
        for (int i = 0; i < c->n_ctx; i++) p += sprintf(p, "X ");
        sprintf(p, "%s%s%s.", state, *state ? " " : "", c->object_word);
        int cnt = tokenizer_encode(b->tok, s, ids + which * T, T);
        free(s);
        if (cnt < 0) { free(ids); return -1; }
        if ((b->eot[which] = clip_text_eot(t, ids + which * T, T)) <= c->n_ctx) {
            free(ids);
            return err_set("anomalyclip: the prompt does not fit %d context tokens in %d positions", c->n_ctx, T);
        }
    }
    int rc = clip_text_token_embeddings(t, ids, 2, T, b->prompt_embeds);
    free(ids);
    return rc;
}

static void free_cache(Baseline *b) {
    for (int i = 0; i < b->n_cached; i++) { free(b->cache_name[i]); free(b->cache_text[i]); }
    b->n_cached = 0;
}

void baseline_free(Baseline *b) {
    if (!b) return;
    free_cache(b);
    free(b->pos);
    clip_vision_run_free(b->vrun);
    deep_text_run_free(b->trun);
    free(b->params); free(b->grad); free(b->m1); free(b->m2);
    free(b->prompt_embeds);
    free(b);
}

Baseline *baseline_new(const BaselineConfig *cfg, const ClipModel *model, Tokenizer *tok) {
    if ((model->towers & (CLIP_TEXT | CLIP_VISION)) != (CLIP_TEXT | CLIP_VISION)) {
        err_set("baseline %s: the model needs both towers", baseline_method_name(cfg->method));
        return NULL;
    }
    Baseline *b = calloc(1, sizeof *b);
    if (!b) { err_set("baseline: out of memory"); return NULL; }
    b->cfg = *cfg;
    b->m = model;
    b->tok = tok;
    const ClipVision *v = &model->vision;
    b->S = cfg->image_size;
    b->g = cfg->image_size / v->patch_size;
    b->T = b->g * b->g + 1;
    b->P = v->proj_dim;
    b->Wv = v->shape.width;
    b->Wt = model->text.shape.width;
    b->L = v->shape.layers;
    const char *name = baseline_method_name(cfg->method);
    if (cfg->n_layers < 1 || cfg->n_layers > BL_MAX_LAYERS) { err_set("baseline %s: %d map layers", name, cfg->n_layers); goto fail; }
    for (int i = 0; i < cfg->n_layers; i++) {
        int l = cfg->layers[i] < 0 ? b->L + 1 + cfg->layers[i] : cfg->layers[i];
        if (l < 1 || l > b->L) { err_set("baseline %s: layer %d outside 1..%d", name, cfg->layers[i], b->L); goto fail; }
        b->layers[i] = l;
    }
    if (cfg->method == BL_ANOMALYCLIP && (cfg->vv_from < 1 || cfg->vv_from > b->L)) {
        err_set("baseline anomalyclip: vv_from %d outside 1..%d", cfg->vv_from, b->L);
        goto fail;
    }
    if (!(b->vrun = clip_vision_run_new(v, b->S, cfg->pos_interp))) goto fail;
    if (cfg->method == BL_WINCLIP) {
        if (cfg->n_scales < 1 || cfg->n_scales > BL_MAX_SCALES) { err_set("baseline winclip: %d scales", cfg->n_scales); goto fail; }
        for (int s = 0; s < cfg->n_scales; s++)
            if (!winclip_window_count(b->g, cfg->scales[s])) {
                err_set("baseline winclip: window of %d patches on a %dx%d grid", cfg->scales[s], b->g, b->g);
                goto fail;
            }
        b->pos = malloc(sizeof(float) * b->T * b->Wv);
        if (!b->pos) { err_set("baseline: out of memory"); goto fail; }
        if (b->g == v->grid) memcpy(b->pos, v->position_embedding, sizeof(float) * b->T * b->Wv);
        else clip_resize_positions(b->pos, v->position_embedding, v->grid, b->g, b->Wv, cfg->pos_interp);
    }
    Rng rng;
    rng_seed(&rng, cfg->seed);
    if (cfg->method == BL_APRILGAN) {
        b->n_params = (size_t)cfg->n_layers * (b->P * b->Wv + b->P);
    } else if (cfg->method == BL_ANOMALYCLIP) {
        int nd = cfg->deep_depth > 1 ? cfg->deep_depth - 1 : 0;
        if (nd >= model->text.shape.layers) { err_set("baseline anomalyclip: deep_depth %d for %d text layers", cfg->deep_depth, model->text.shape.layers); goto fail; }
        if (nd && cfg->deep_len > cfg->n_ctx) { err_set("baseline anomalyclip: deep_len %d > n_ctx %d", cfg->deep_len, cfg->n_ctx); goto fail; }
        b->n_params = (size_t)(2 * cfg->n_ctx + nd * cfg->deep_len) * b->Wt;
        if (anomalyclip_prompts(b) < 0 || !(b->trun = deep_text_run_new(&model->text))) goto fail;
    }
    if (b->n_params) {
        b->params = malloc(sizeof(float) * b->n_params);
        b->grad = calloc(b->n_params, sizeof(float));
        b->m1 = calloc(b->n_params, sizeof(float));
        b->m2 = calloc(b->n_params, sizeof(float));
        if (!b->params || !b->grad || !b->m1 || !b->m2) { err_set("baseline: out of memory"); goto fail; }
        if (cfg->method == BL_APRILGAN) {  // nn.Linear's init: U(±1/sqrt(fan_in)) for weight and bias
            double bound = 1.0 / sqrt((double)b->Wv);
            for (size_t i = 0; i < b->n_params; i++) b->params[i] = (float)((2 * rng_uniform(&rng) - 1) * bound);
        } else {
            for (size_t i = 0; i < b->n_params; i++) b->params[i] = (float)(cfg->init_std * rng_normal(&rng));
        }
    }
    return b;
fail:
    baseline_free(b);
    return NULL;
}

// The fixed-prompt text features of a class, computed once.
static const float *class_text(Baseline *b, const char *cls) {
    for (int i = 0; i < b->n_cached; i++)
        if (!strcmp(b->cache_name[i], cls)) return b->cache_text[i];
    if (b->n_cached == TEXT_CACHE) free_cache(b);
    float *t = malloc(sizeof(float) * 2 * b->P);
    char *n = strdup(cls);
    if (!t || !n || baseline_text_features(&b->m->text, b->tok, &b->cfg, cls, t) < 0) {
        if (!t || !n) err_set("baseline: out of memory");
        free(t); free(n);
        return NULL;
    }
    b->cache_name[b->n_cached] = n;
    b->cache_text[b->n_cached++] = t;
    return t;
}

// AnomalyCLIP's text features (2,P), unnormalised, from the current prompts; keeps the run for a backward.
static int anomalyclip_text(Baseline *b, float *text) {
    const BaselineConfig *c = &b->cfg;
    int T = b->prompt_T, W = b->Wt, nd = c->deep_depth > 1 ? c->deep_depth - 1 : 0;
    float *emb = malloc(sizeof(float) * 2 * T * W);
    if (!emb) return err_set("anomalyclip: out of memory");
    memcpy(emb, b->prompt_embeds, sizeof(float) * 2 * T * W);
    for (int which = 0; which < 2; which++)
        memcpy(emb + ((size_t)which * T + 1) * W, b->params + (size_t)which * c->n_ctx * W, sizeof(float) * c->n_ctx * W);
    int rc = deep_text_forward(b->trun, emb, b->eot, 2, T, b->params + (size_t)2 * c->n_ctx * W, nd, c->deep_len, text);
    free(emb);
    return rc;
}

// The vision features a method needs for a batch: glob (B,P); per map layer feats[i] (B,T,ld).
static int vision_features(Baseline *b, const float *pixels, int B, float *glob, float **feats, int *ld) {
    const BaselineConfig *c = &b->cfg;
    ClipVisionOut out = {0};
    if (c->global_ln_post) out.image_embeds = glob;
    else out.image_embeds_noln = glob;
    int layers[BL_MAX_LAYERS], n = c->n_layers;
    memcpy(layers, b->layers, sizeof layers);
    *ld = b->P;
    switch (c->method) {
    case BL_CLIP: case BL_CLIP_AC:
        out.n_stages = n, out.stage_layers = layers, out.stages = feats;
        break;
    case BL_APRILGAN:
        out.n_hidden = n, out.hidden_layers = layers, out.hidden = feats;
        *ld = b->Wv;
        break;
    case BL_ANOMALYCLIP:
        out.vv_from = c->vv_from;
        if (c->aliased_layers)  // historical: every recorded layer aliases the final V-V tokens (issues #18, #64)
            for (int i = 0; i < n; i++) layers[i] = b->L;
        out.n_stages = n, out.stage_layers = layers, out.stages = feats;
        break;
    case BL_WINCLIP: break;
    }
    return clip_vision_forward(b->vrun, pixels, B, &out);
}

static float **alloc_feats(int n, size_t each) {
    float **f = calloc(n, sizeof *f);
    if (!f) return NULL;
    for (int i = 0; i < n; i++)
        if (!(f[i] = malloc(sizeof(float) * each))) {
            for (int j = 0; j < i; j++) free(f[j]);
            free(f);
            return NULL;
        }
    return f;
}

static void free_feats(float **f, int n) {
    if (!f) return;
    for (int i = 0; i < n; i++) free(f[i]);
    free(f);
}

// APRIL-GAN: out (B*N, P) = patch rows of hidden (B,T,Wv) through layer i's linear map.
static void aprilgan_linear(Baseline *b, int i, const float *hidden, int B, float *rows, float *out) {
    int N = b->T - 1, Wv = b->Wv, P = b->P;
    for (int k = 0; k < B; k++) memcpy(rows + (size_t)k * N * Wv, hidden + ((size_t)k * b->T + 1) * Wv, sizeof(float) * N * Wv);
    const float *w = b->params + (size_t)i * (P * Wv + P);
    matmul_forward(out, rows, w, w + (size_t)P * Wv, B * N, Wv, P);
}

static int winclip_maps(Baseline *b, const float *pixels, int B, const float *text, const float *img, float *grid) {
    const BaselineConfig *c = &b->cfg;
    int g = b->g, N = g * g, rc = -1;
    float *emb = malloc(sizeof(float) * B * b->T * b->Wv);
    float *maps[BL_MAX_SCALES] = {0};
    if (!emb || clip_vision_embed(&b->m->vision, b->pos, g, pixels, B, b->S, emb) < 0) {
        if (!emb) err_set("winclip: out of memory");
        goto done;
    }
    for (int s = 0; s < c->n_scales; s++) {
        int k = c->scales[s], nw = winclip_window_count(g, k);
        int *idx = malloc(sizeof(int) * nw * k * k);
        float *we = malloc(sizeof(float) * B * nw * b->P), *sc = malloc(sizeof(float) * B * nw);
        maps[s] = malloc(sizeof(float) * B * N);
        if (!idx || !we || !sc || !maps[s]) { free(idx); free(we); free(sc); err_set("winclip: out of memory"); goto done; }
        winclip_make_masks(idx, g, k);
        int ok = clip_vision_window_embeds(&b->m->vision, emb, B, b->T, idx, nw, k * k, we);
        if (ok == 0) {
            baseline_class_scores(sc, we, B * nw, b->P, b->P, text, c->logit_scale);
            winclip_harmonic(maps[s], sc, idx, nw, k, g, B);
        }
        free(idx); free(we); free(sc);
        if (ok < 0) goto done;
    }
    winclip_combine(grid, img, (const float *const *)maps, c->n_scales, B, N);
    rc = 0;
done:
    for (int s = 0; s < BL_MAX_SCALES; s++) free(maps[s]);
    free(emb);
    return rc;
}

int baseline_score_batch(Baseline *b, const char *class_name, const float *pixels, int B, float *scores,
                         float *maps) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, g = b->g, S = b->S, N = g * g, ld, rc = -1;
    size_t SS = (size_t)S * S;
    float text[2 * P], glob[(size_t)B * P];
    if (c->method == BL_ANOMALYCLIP) {
        if (anomalyclip_text(b, text) < 0) return -1;
    } else {
        const float *t = class_text(b, class_name);
        if (!t) return -1;
        memcpy(text, t, sizeof text);
    }
    size_t each = (size_t)B * b->T * (c->method == BL_APRILGAN ? b->Wv : P);
    float **feats = c->method == BL_WINCLIP ? NULL : alloc_feats(c->n_layers, each);
    if (c->method != BL_WINCLIP && !feats) return err_set("baseline: out of memory for features");
    if (vision_features(b, pixels, B, glob, feats, &ld) < 0) goto done;
    baseline_class_scores(scores, glob, B, P, P, text, c->logit_scale);
    memset(maps, 0, sizeof(float) * B * SS);
    if (c->method == BL_WINCLIP) {
        float *grid = malloc(sizeof(float) * B * N);
        if (!grid) { err_set("winclip: out of memory"); goto done; }
        if (winclip_maps(b, pixels, B, text, scores, grid) < 0) { free(grid); goto done; }
        upsample_bilinear_forward(maps, grid, B, g, g, S, S, c->align_corners);
        free(grid);
    } else if (c->method == BL_APRILGAN) {
        float *rows = malloc(sizeof(float) * B * N * b->Wv), *lin = malloc(sizeof(float) * B * N * P);
        if (!rows || !lin) { free(rows); free(lin); err_set("april-gan: out of memory"); goto done; }
        for (int i = 0; i < c->n_layers; i++) {
            aprilgan_linear(b, i, feats[i], B, rows, lin);
            baseline_patch_map_add(maps, lin, B, g, P, P, text, c->logit_scale, c->softmax_first, c->align_corners, S);
        }
        free(rows); free(lin);
    } else {
        for (int i = 0; i < c->n_layers; i++)  // patch rows of each image: skip the class row
            for (int k = 0; k < B; k++)
                baseline_patch_map_add(maps + k * SS, feats[i] + ((size_t)k * b->T + 1) * ld, 1, g, ld, P, text,
                                       c->logit_scale, c->softmax_first, c->align_corners, S);
    }
    if (c->sigma > 0) gaussian_filter_forward(maps, maps, B, S, S, c->sigma, 4.0f);
    rc = 0;
done:
    free_feats(feats, c->method == BL_WINCLIP ? 0 : c->n_layers);
    return rc;
}

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

static int aprilgan_loss_grad(Baseline *b, const float *pixels, const float *masks, const char *const *names, int B,
                              float *loss, float *grad) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, Wv = b->Wv, g = b->g, N = g * g, ld, rc = -1;
    float *text = malloc(sizeof(float) * B * 2 * P), glob[(size_t)B * P];
    for (int k = 0; k < B; k++) {
        const float *t = class_text(b, names[k]);
        if (!t) { free(text); return -1; }
        unit_rows(text + (size_t)k * 2 * P, NULL, t, 2, P);
    }
    float **feats = alloc_feats(c->n_layers, (size_t)B * b->T * Wv);
    size_t BN = (size_t)B * N;
    float *rows = malloc(sizeof(float) * BN * Wv), *lin = malloc(sizeof(float) * BN * P);
    float *un = malloc(sizeof(float) * BN * P), *nrm = malloc(sizeof(float) * BN);
    float *lg = malloc(sizeof(float) * BN * 2), *dlg = malloc(sizeof(float) * BN * 2);
    float *dun = malloc(sizeof(float) * BN * P), *dlin = malloc(sizeof(float) * BN * P);
    if (!feats || !rows || !lin || !un || !nrm || !lg || !dlg || !dun || !dlin) { err_set("april-gan: out of memory"); goto done; }
    if (vision_features(b, pixels, B, glob, feats, &ld) < 0) goto done;
    double total = 0;
    for (int i = 0; i < c->n_layers; i++) {
        aprilgan_linear(b, i, feats[i], B, rows, lin);
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
    free_feats(feats, feats ? c->n_layers : 0);
    free(text); free(rows); free(lin); free(un); free(nrm); free(lg); free(dlg); free(dun); free(dlin);
    return rc;
}

static int anomalyclip_loss_grad(Baseline *b, const float *pixels, const float *masks, const int *labels, int B,
                                 float *loss, float *grad) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, g = b->g, N = g * g, T = b->T, ld, rc = -1;
    float traw[2 * P], tn[2 * P], tnorm[2], dtn[2 * P], dtraw[2 * P], glob[(size_t)B * P], gn[(size_t)B * P];
    if (anomalyclip_text(b, traw) < 0) return -1;
    unit_rows(tn, tnorm, traw, 2, P);
    memset(dtn, 0, sizeof dtn);
    float **feats = alloc_feats(c->n_layers, (size_t)B * T * P);
    size_t BN = (size_t)B * N;
    float *un = malloc(sizeof(float) * BN * P), *lg = malloc(sizeof(float) * BN * 2), *dlg = malloc(sizeof(float) * BN * 2);
    float *demb = NULL;
    if (!feats || !un || !lg || !dlg) { err_set("anomalyclip: out of memory"); goto done; }
    if (vision_features(b, pixels, B, glob, feats, &ld) < 0) goto done;
    // global: CE over scale · [cos(I, t_n), cos(I, t_a)], mean over the batch
    unit_rows(gn, NULL, glob, B, P);
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
            memcpy(un + (size_t)k * N * P, feats[i] + ((size_t)k * T + 1) * P, sizeof(float) * N * P);
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
    free_feats(feats, feats ? c->n_layers : 0);
    free(un); free(lg); free(dlg); free(demb);
    return rc;
}

int baseline_loss_grad(Baseline *b, const float *pixels, const float *masks, const int *labels,
                       const char *const *class_names, int B, float *loss, float *grad) {
    if (b->cfg.method == BL_APRILGAN) return aprilgan_loss_grad(b, pixels, masks, class_names, B, loss, grad);
    if (b->cfg.method == BL_ANOMALYCLIP) return anomalyclip_loss_grad(b, pixels, masks, labels, B, loss, grad);
    return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
}

int baseline_train_step(Baseline *b, const float *pixels, const float *masks, const int *labels,
                        const char *const *class_names, int B, float *loss) {
    if (!b->n_params) return err_set("baseline %s: nothing to train", baseline_method_name(b->cfg.method));
    memset(b->grad, 0, sizeof(float) * b->n_params);
    if (baseline_loss_grad(b, pixels, masks, labels, class_names, B, loss, b->grad) < 0) return -1;
    const BaselineConfig *c = &b->cfg;
    adam_update(b->params, b->grad, b->m1, b->m2, b->n_params, ++b->step, c->lr, c->beta1, c->beta2, c->eps);
    return 0;
}
