// The baseline heads (model/baselines.h): the head's setup on its backend (parameters and Adam state, the batch
// scratch), the text per class and AnomalyCLIP's prompts through the frozen text tower (host).
#include "model/baseline_internal.h"
#include "common/error.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const BaselineConfig *baseline_config(const Baseline *b) { return &b->cfg; }
const Backend *baseline_backend(const Baseline *b) { return b->be; }
size_t baseline_n_params(const Baseline *b) { return b->n_params; }
void baseline_download_params(const Baseline *b, float *host) { b->be->download(host, b->params, b->n_params); }
void baseline_upload_params(Baseline *b, const float *host) { b->be->upload(b->params, host, b->n_params); }

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
    vision_tower_free(b->vtower);
    deep_text_run_free(b->trun);
    baseline_mvfa_free(b);
    if (b->be) { b->be->release(b->block); b->be->release(b->work); }
    free(b->host_params);
    free(b->prompt_embeds);
    free(b);
}

Baseline *baseline_new(const BaselineConfig *cfg, const ClipModel *model, Tokenizer *tok) {
    // MVFA-AD's head (the frozen layers after its first adapters and its adapters) is not on the op table yet:
    // the CPU backend, whose buffers are host memory, whatever run.device says (its features follow run.device).
    const Backend *be = cfg->method == BL_MVFA ? backend_cpu() : backend_for(cfg->device);
    return be ? baseline_new_on(be, cfg, model, tok) : NULL;
}

Baseline *baseline_new_on(const Backend *be, const BaselineConfig *cfg, const ClipModel *model, Tokenizer *tok) {
    if (!be) { err_set("baseline %s: no backend", baseline_method_name(cfg->method)); return NULL; }
    if ((model->towers & (CLIP_TEXT | CLIP_VISION)) != (CLIP_TEXT | CLIP_VISION)) {
        err_set("baseline %s: the model needs both towers", baseline_method_name(cfg->method));
        return NULL;
    }
    Baseline *b = calloc(1, sizeof *b);
    if (!b) { err_set("baseline: out of memory"); return NULL; }
    b->cfg = *cfg;
    b->be = be;
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
    if (cfg->method == BL_MVFA && baseline_mvfa_check(b) < 0) goto fail;
    if (!(b->vtower = vision_tower_new(v, b->S, cfg->pos_interp, cfg->device, cfg->precision))) goto fail;
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
        deep_text_run_set_fp16(b->trun, cfg->deep_fp16);
    } else if (cfg->method == BL_MVFA) {
        b->n_params = baseline_mvfa_n_params(b);
    }
    if (b->n_params) {
        size_t n = b->n_params;
        // host: the initial values (AnomalyCLIP keeps the two blocks for its text tower)
        float *init = b->host_params = malloc(sizeof(float) * 2 * n);
        if (!init) { err_set("baseline: out of memory"); goto fail; }
        b->host_grad = init + n;
        if (!(b->block = be->alloc(4 * n))) goto fail;  // zeroed: gradient and moments start at 0
        b->params = b->block, b->grad = b->params + n, b->m1 = b->grad + n, b->m2 = b->m1 + n;
        if (cfg->method == BL_APRILGAN) {  // nn.Linear's init: U(±1/sqrt(fan_in)) for weight and bias
            double bound = 1.0 / sqrt((double)b->Wv);
            for (size_t i = 0; i < n; i++) init[i] = (float)((2 * rng_uniform(&rng) - 1) * bound);
        } else if (cfg->method == BL_MVFA) {  // the same per tensor: fc1 (P, Wv) fan_in Wv, fc2 (Wv, P) fan_in P
            size_t t = (size_t)b->P * b->Wv;
            for (size_t i = 0; i < n; i++) {
                double bound = 1.0 / sqrt((double)((i / t) % 2 ? b->P : b->Wv));
                init[i] = (float)((2 * rng_uniform(&rng) - 1) * bound);
            }
        } else {
            for (size_t i = 0; i < n; i++) init[i] = (float)(cfg->init_std * rng_normal(&rng));
        }
        be->upload(b->params, init, n);
        if (cfg->method != BL_ANOMALYCLIP) { free(b->host_params); b->host_params = b->host_grad = NULL; }
    }
    return b;
fail:
    baseline_free(b);
    return NULL;
}

// The fixed-prompt text features of a class, computed once.
const float *baseline_class_text(Baseline *b, const char *cls) {
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

// AnomalyCLIP's text features (2,P), unnormalised, from the current prompts (brought down from the backend);
// keeps the run for a backward.
int baseline_anomalyclip_text(Baseline *b, float *text) {
    const BaselineConfig *c = &b->cfg;
    int T = b->prompt_T, W = b->Wt, nd = c->deep_depth > 1 ? c->deep_depth - 1 : 0;
    const float *prm = b->host_params;
    b->be->download(b->host_params, b->params, b->n_params);
    float *emb = malloc(sizeof(float) * 2 * T * W);
    if (!emb) return err_set("anomalyclip: out of memory");
    memcpy(emb, b->prompt_embeds, sizeof(float) * 2 * T * W);
    for (int which = 0; which < 2; which++)
        memcpy(emb + ((size_t)which * T + 1) * W, prm + (size_t)which * c->n_ctx * W, sizeof(float) * c->n_ctx * W);
    int rc = deep_text_forward(b->trun, emb, b->eot, 2, T, prm + (size_t)2 * c->n_ctx * W, nd, c->deep_len, text);
    free(emb);
    return rc;
}

// Through the deep-prompt text tower on the host: contexts from the embeddings' gradient at positions
// 1..n_ctx, deep prompts from the tower; then up into the backend's gradient.
int baseline_anomalyclip_text_backward(Baseline *b, const float *dtext) {
    const BaselineConfig *c = &b->cfg;
    int T = b->prompt_T, W = b->Wt;
    float *g = b->host_grad, *demb = calloc((size_t)2 * T * W, sizeof(float));
    if (!demb) return err_set("anomalyclip: out of memory");
    memset(g, 0, sizeof(float) * b->n_params);
    int rc = deep_text_backward(b->trun, demb, g + (size_t)2 * c->n_ctx * W, dtext);
    for (int which = 0; which < 2 && rc == 0; which++) {
        float *gc = g + (size_t)which * c->n_ctx * W;
        const float *d = demb + ((size_t)which * T + 1) * W;
        for (size_t j = 0; j < (size_t)c->n_ctx * W; j++) gc[j] += d[j];
    }
    free(demb);
    if (rc == 0) b->be->upload(b->grad, g, b->n_params);
    return rc;
}
