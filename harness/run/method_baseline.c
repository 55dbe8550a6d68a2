// The baselines' shared operations as methods of the pipeline (see method_baseline.h).
#include "harness/run/method_baseline.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/feature_extract.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "model/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bump when the baselines' feature computation changes: older caches are then rebuilt (the reason is logged).
#define BASELINE_FEATURE_VERSION "baseline-1"

static const char *class_arg(const BaselineConfig *bc, const ExecDataset *d, int c) {
    return baseline_class_arg(bc, d->classes[c]->name, d->classes[c]->prompt_name);
}

MethodHead *baseline_head_open(const Settings *s, ClipModel *model, Tokenizer *tok, const char *feat_dir) {
    BaselineHead *h = calloc(1, sizeof *h);
    h->s = s;
    h->bc = &s->baseline;
    h->model = model;
    h->feat_dir = feat_dir;
    if (!(h->b = baseline_new(h->bc, model, tok))) { free(h); return NULL; }
    baseline_feature_shape(h->b, &h->shape);
    h->cap = s->train.batch_size > s->eval.batch_size ? s->train.batch_size : s->eval.batch_size;
    h->S = h->bc->image_size;
    static const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};  // ToTensor alone: pixels in [0, 1]
    h->mean = h->bc->pixel_norm ? model->cfg.image_mean : zero;
    h->std = h->bc->pixel_norm ? model->cfg.image_std : one;
    h->f = baseline_features_new(h->b, h->cap);
    h->pixels = malloc(sizeof(float) * h->cap * 3 * h->S * h->S);
    h->names = malloc(sizeof(char *) * h->cap);
    if (!h->f || !h->pixels || !h->names) {
        err_set("out of memory for %d images of %d px", h->cap, h->S);
        baseline_head_close((MethodHead *)h);
        return NULL;
    }
    const Method *m = s->train.method;
    log_msg("method: %s (%s), %d px, %d feature blocks of %d x %d, %zu learnable parameters", m->label, m->name, h->S,
            h->shape.n_blocks, h->shape.rows[0], h->shape.ld, baseline_n_params(h->b));
    char head[64];
    if (h->bc->method == BL_WINCLIP) snprintf(head, sizeof head, "its windows and scores on the CPU");
    else snprintf(head, sizeof head, "the head on the %s backend", baseline_backend(h->b)->name);
    log_msg("method: vision tower on %s (%s GEMMs); %s", device_describe(h->bc->device),
            gemm_precision_name(gemm_precision_on(h->bc->device, h->bc->precision)), head);
    return (MethodHead *)h;
}

// What decides the content of a method's feature blocks: CLIP and CLIP-AC differ only in their prompts, so they
// read one cache (same layers and switches); every other method has a feature path of its own.
static const char *feature_path_name(BaselineMethod m) {
    return m == BL_CLIP_AC ? baseline_method_name(BL_CLIP) : baseline_method_name(m);
}

static int extract_submit(void *ctx, const float *pixels, int B) {
    BaselineHead *h = ctx;
    h->f->B = B;
    return baseline_extract(h->b, pixels, h->f);
}
static int extract_finish(void *ctx) { return 0; }

// 1 when the method's blocks cannot share one table shape (WinCLIP): its features are not cached.
static int uncached(const BaselineHead *h) {
    const BaselineFeatureShape *s = &h->shape;
    int skip = s->n_blocks < 1;
    for (int k = 1; k < s->n_blocks; k++)
        if (s->rows[k] != s->rows[0]) skip = 1;
    return skip;
}

// The description of d's features for this head (blocks and what: the caller's buffers the spec points into).
// -1 with err_set.
static int feature_spec(BaselineHead *h, ExecDataset *d, FeatureSpec *sp, int blocks[BL_MAX_LAYERS], char what[200]) {
    const BaselineConfig *bc = h->bc;
    const BaselineFeatureShape *s = &h->shape;
    const float *mean = h->mean, *std = h->std;
    // The cache's blocks are numbered 1..n: the real layers are in the preprocess string, and aliased or repeated
    // layers still get one block each.
    for (int k = 0; k < s->n_blocks; k++) blocks[k] = k + 1;
    *sp = (FeatureSpec){.file_tag = feature_path_name(bc->method), .code_version = BASELINE_FEATURE_VERSION,
                        .model_hash = checkpoint_hash(h->model->ck), .id_extra = "", .S = h->S, .n_blocks = s->n_blocks,
                        .layers = blocks, .vv_from = 0, .rows = s->rows[0], .ld = s->ld, .P = s->P,
                        .submit = extract_submit, .finish = extract_finish, .ctx = h, .blocks = h->f->blocks,
                        .global = h->f->global, .mean = mean, .std = std, .n_shards = h->s->cache.shards};
    if (!sp->model_hash) return -1;
    char layers[128] = "";
    for (int k = 0; k < bc->n_layers; k++)
        snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", k ? "," : "", bc->layers[k]);
    snprintf(sp->preprocess, sizeof sp->preprocess,
             "resize=bicubic-%s;mean=%.8g,%.8g,%.8g;std=%.8g,%.8g,%.8g;pos=%s;method=%s;layers=%s;vv_from=%d;"
             "aliased_before_vv=%d;global_ln_post=%d;rows=%d;ld=%d;P=%d", d->resize ? "short-crop" : "square",
             mean[0], mean[1], mean[2], std[0], std[1], std[2],
             clip_pos_resize_name(bc->pos_interp), feature_path_name(bc->method), layers,
             bc->method == BL_ANOMALYCLIP ? bc->vv_from : 0, bc->method == BL_ANOMALYCLIP ? bc->aliased_layers : 0,
             bc->global_ln_post, s->rows[0], s->ld, s->P);
    features_key_precision(sp->preprocess, sizeof sp->preprocess, bc->device, bc->precision);
    snprintf(what, 200, "%s: %d blocks of %d x %d", baseline_method_name(bc->method), s->n_blocks, s->rows[0], s->ld);
    sp->what = what;
    return 0;
}

// The cache of d's features for this head; with *skip = 1 (and NULL) when the method's features are not cached.
static FeatureCache *prepare_cache(BaselineHead *h, ExecDataset *d, int *skip) {
    if ((*skip = uncached(h))) return NULL;
    FeatureSpec sp;
    int blocks[BL_MAX_LAYERS];
    char what[200];
    if (feature_spec(h, d, &sp, blocks, what) < 0) return NULL;
    return features_prepare(h->feat_dir, &sp, d, h->s->eval.batch_size);
}

int baseline_head_features(MethodHead *mh, ExecDataset *d, int shard) {
    BaselineHead *h = (BaselineHead *)mh;
    if (uncached(h)) {
        log_msg("features of %s: %s scores from pixels (its window features are not cached): nothing to extract",
                d->name, baseline_method_name(h->bc->method));
        return 0;
    }
    FeatureSpec sp;
    int blocks[BL_MAX_LAYERS];
    char what[200];
    h->d = d;
    if (feature_spec(h, d, &sp, blocks, what) < 0) return -1;
    return features_extract_shard(h->feat_dir, &sp, d, h->s->eval.batch_size, shard);
}

int baseline_head_prepare(MethodHead *mh, ExecDataset *d, MethodRole role) {
    BaselineHead *h = (BaselineHead *)mh;
    if (h->fc) feature_cache_close(h->fc);
    h->fc = NULL;
    h->d = d;
    int skip = 0;
    h->fc = prepare_cache(h, d, &skip);
    if (!h->fc && !skip) return -1;
    if (skip) log_msg("features of %s: %s scores from pixels (its window features are not cached)", d->name,
                      baseline_method_name(h->bc->method));
    return 0;
}

int baseline_head_load(BaselineHead *h, const int *idx, int B) {
    h->f->B = B;
    if (!h->fc) {
        if (exec_dataset_load_pixels(h->d, idx, B, h->S, h->mean, h->std, h->pixels) < 0)
            return -1;
        return baseline_extract(h->b, h->pixels, h->f);
    }
    return features_read_batch(h->fc, idx, B, h->shape.n_blocks, h->f->blocks, h->shape.rows[0], h->shape.ld,
                               h->f->global, h->shape.P);
}

int baseline_head_step_loaded(BaselineHead *h, MethodBatch *b, MethodLosses *out) {
    for (int j = 0; j < b->B; j++) h->names[j] = class_arg(h->bc, h->d, b->cls[j]);
    float loss = 0;
    if (baseline_train_step_features(h->b, h->f, b->mask, b->label, h->names, &loss) < 0) return -1;
    *out = (MethodLosses){.loss = {loss}};
    return 0;
}

int baseline_head_train_step(MethodHead *mh, MethodBatch *b, MethodLosses *out) {
    BaselineHead *h = (BaselineHead *)mh;
    if (baseline_head_load(h, b->idx, b->B) < 0) return -1;
    return baseline_head_step_loaded(h, b, out);
}

int baseline_head_score(void *ctx, const int *idx, const int *cls, int B, float *maps, float *scores) {
    BaselineHead *h = ctx;
    if (baseline_head_load(h, idx, B) < 0) return -1;
    return baseline_score_features(h->b, class_arg(h->bc, h->d, cls[0]), h->f, scores, maps);
}

int baseline_head_save(MethodHead *h, const char *path) { return baseline_save(((BaselineHead *)h)->b, path); }
int baseline_head_load_state(MethodHead *h, const char *path) { return baseline_load(((BaselineHead *)h)->b, path); }
long baseline_head_step(const MethodHead *h) { return baseline_step(((const BaselineHead *)h)->b); }
int baseline_head_image_size(const MethodHead *h) { return ((const BaselineHead *)h)->S; }

void baseline_head_close(MethodHead *mh) {
    BaselineHead *h = (BaselineHead *)mh;
    if (!h) return;
    if (h->fc) feature_cache_close(h->fc);
    if (h->own_free) h->own_free(h->own);
    if (h->f) { h->f->B = h->cap; baseline_features_free(h->f); }
    free(h->pixels);
    free(h->names);
    baseline_free(h->b);
    free(h);
}
