// KAnoCLIP as a method of the pipeline (method.h): stage features after ln_post + projection (the V-V path from
// model.vv_from) and the global feature, cached per dataset; the heads of model/kanoclip.h made for the prepared
// dataset's classes, with KnPL prompts (or the fixed prompts' features) and the knowledge-base means for training.
#include "harness/run/method.h"
#include "harness/config/settings.h"
#include "harness/run/feature_extract.h"
#include "harness/run/log.h"
#include "harness/run/text_inputs.h"
#include "common/error.h"
#include "model/backend.h"
#include "model/checkpoint.h"
#include "model/towers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bump when the feature computation changes: caches of older code are then rebuilt (the reason is logged).
#define FEATURE_CODE_VERSION "exec-1"

typedef struct {
    const Settings *s;
    KanoclipConfig kc;         // s->kanoclip, the KD weight off when no knowledge base can be embedded
    ClipModel *model;
    Tokenizer *tok;
    const char *feat_dir;
    ExecDataset *d;            // the prepared dataset
    FeatureCache *fc;          // its features
    Kanoclip *trained;         // made for the training classes: its parameters are what evaluation uses
    Kanoclip *m;               // the model for d (trained itself while training)
    int cap, ns, T, P;
    float *stage, *global;     // (cap, ns, T, P), (cap, P): a batch read from the cache
    // extraction
    VisionTower *tower;
    float *x_stage, *x_global; // ns x (cap, T, P), (cap, P)
    float *x_blocks[FEATURE_MAX_BLOCKS];
    ClipVisionOut x_out;
} KanoHead;

static int kano_submit(void *ctx, const float *pixels, int B) {
    KanoHead *h = ctx;
    const Settings *s = h->s;
    if (!h->tower) {
        h->tower = vision_tower_new(&h->model->vision, s->model.image_size,
                                    (ClipPosResize)s->model.pos_interp, s->run.device,
                                    s->run.precision);
        if (!h->tower) return -1;
        log_msg("features of %s: vision tower on %s (%s GEMMs)", h->d->name, device_describe(s->run.device),
                gemm_precision_name(gemm_precision_on(s->run.device, s->run.precision)));
    }
    return vision_tower_submit(h->tower, pixels, B, &h->x_out);
}

static int kano_finish(void *ctx) { return vision_tower_finish(((KanoHead *)ctx)->tower); }

static void kano_close(MethodHead *mh);

static MethodHead *kano_open(const Settings *s, ClipModel *model, Tokenizer *tok, const char *feat_dir) {
    KanoHead *h = calloc(1, sizeof *h);
    h->s = s;
    h->kc = s->kanoclip;
    h->model = model;
    h->tok = tok;
    h->feat_dir = feat_dir;
    const KanoclipConfig *kc = &h->kc;
    h->cap = s->train.batch_size > s->eval.batch_size ? s->train.batch_size : s->eval.batch_size;
    h->ns = kc->n_stages;
    h->T = kc->grid_h * kc->grid_w + 1;
    h->P = kc->width;
    size_t block = (size_t)h->cap * h->T * h->P;
    h->stage = malloc(sizeof(float) * h->ns * block);
    h->global = malloc(sizeof(float) * h->cap * h->P);
    h->x_stage = malloc(sizeof(float) * h->ns * block);
    h->x_global = malloc(sizeof(float) * h->cap * h->P);
    if (!h->stage || !h->global || !h->x_stage || !h->x_global) {
        err_set("out of memory for a batch of %d images (%d stages of %d x %d)", h->cap, h->ns, h->T, h->P);
        kano_close((MethodHead *)h);
        return NULL;
    }
    for (int k = 0; k < h->ns; k++) h->x_blocks[k] = h->x_stage + k * block;
    h->x_out = clip_vision_stage_out(s->model.vv_from, h->ns, s->model.layers, h->x_blocks, h->x_global,
                                     kc->global_ln_post);
    log_msg("method: KnPL %s, CLIP-VV %s (vv_from %d), Bi-CMCI %s, Conv-Adapter %s; %d stages at layers %d..%d, "
            "%dx%d grid, %d px", kc->knpl ? "on" : "off", kc->clip_vv ? "on" : "off", s->model.vv_from,
            kc->bicmci ? "on" : "off", kc->adapter ? "on" : "off", h->ns, s->model.layers[0],
            s->model.layers[h->ns - 1], kc->grid_h, kc->grid_w, kc->image_size);
    return (MethodHead *)h;
}

// The description of d's features (what and id_extra: the caller's buffers the spec points into). -1 with err_set.
static int feature_spec(KanoHead *h, ExecDataset *d, FeatureSpec *sp, char what[200], char id_extra[160]) {
    const Settings *s = h->s;
    const float *mean = h->model->cfg.image_mean, *std = h->model->cfg.image_std;
    *sp = (FeatureSpec){.file_tag = "", .code_version = FEATURE_CODE_VERSION, .model_hash = checkpoint_hash(h->model->ck),
                        .S = s->model.image_size, .n_blocks = h->ns, .layers = s->model.layers, .vv_from = s->model.vv_from,
                        .rows = h->T, .ld = h->P, .P = h->P, .submit = kano_submit, .finish = kano_finish, .ctx = h,
                        .blocks = h->x_blocks, .global = h->x_global, .mean = mean, .std = std,
                        .n_shards = s->cache.shards};
    if (!sp->model_hash) return -1;
    snprintf(sp->preprocess, sizeof sp->preprocess,
             "resize=bicubic-%s;mean=%.8g,%.8g,%.8g;std=%.8g,%.8g,%.8g;pos=%s;global_ln_post=%d",
             s->model.resize ? "short-crop" : "square", mean[0], mean[1],
             mean[2], std[0], std[1], std[2], clip_pos_resize_name((ClipPosResize)s->model.pos_interp), h->kc.global_ln_post);
    features_key_precision(sp->preprocess, sizeof sp->preprocess, s->run.device, s->run.precision);
    char layers[128] = "";
    for (int i = 0; i < h->ns; i++)
        snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", i ? "," : "", s->model.layers[i]);
    snprintf(what, 200, "layers %s, vv_from %d", layers, s->model.vv_from);
    snprintf(id_extra, 160, "%s|%d|", layers, s->model.vv_from);
    sp->what = what;
    sp->id_extra = id_extra;
    h->d = d;
    return 0;
}

static int prepare_features(KanoHead *h, ExecDataset *d) {
    FeatureSpec sp;
    char what[200], id_extra[160];
    if (feature_spec(h, d, &sp, what, id_extra) < 0) return -1;
    if (h->fc) feature_cache_close(h->fc);
    h->fc = features_prepare(h->feat_dir, &sp, d, h->s->eval.batch_size);
    vision_tower_free(h->tower);  // its activations are not needed while the heads train
    h->tower = NULL;
    return h->fc ? 0 : -1;
}

static int kano_features(MethodHead *mh, ExecDataset *d, int shard) {
    KanoHead *h = (KanoHead *)mh;
    FeatureSpec sp;
    char what[200], id_extra[160];
    if (feature_spec(h, d, &sp, what, id_extra) < 0) return -1;
    int rc = features_extract_shard(h->feat_dir, &sp, d, h->s->eval.batch_size, shard);
    vision_tower_free(h->tower);
    h->tower = NULL;
    return rc;
}

// The text inputs of a model made for d's classes: KnPL prompts, or the fixed prompts' features.
static int set_text(KanoHead *h, Kanoclip *m, const ExecDataset *d) {
    if (h->kc.knpl) {
        KanoPrompts pr;
        if (text_prompts_build(h->s, h->tok, &h->model->text, h->kc.n_ctx, d, &pr) < 0) return -1;
        int rc = kanoclip_set_prompts(m, &pr);
        text_prompts_free(&pr);
        return rc;
    }
    float *fixed = malloc(sizeof(float) * d->n_classes * 2 * h->kc.width);
    int rc = text_fixed_features(h->s, h->tok, &h->model->text, d, fixed);
    if (rc == 0) rc = kanoclip_set_fixed_text(m, fixed);
    free(fixed);
    return rc;
}

static int prepare_train(KanoHead *h, ExecDataset *d) {
    float *kb = NULL;
    if (h->kc.knpl) {
        kb = malloc(sizeof(float) * d->n_classes * h->kc.width);
        int got = text_kb_means(h->s, h->model, h->tok, d, kb);
        if (got < 0) { free(kb); return -1; }
        if (got == 0) { h->kc.w_kd = 0; free(kb); kb = NULL; }
    }
    int rc = -1;
    h->trained = h->m = kanoclip_new(&h->kc, d->n_classes, h->kc.knpl ? &h->model->text : NULL);
    if (h->m) log_msg("heads: %s backend (%s)", kanoclip_backend(h->m)->name, device_describe(h->kc.device));
    if (h->m && set_text(h, h->m, d) == 0 && (!kb || kanoclip_set_kb(h->m, kb) == 0)) rc = 0;
    free(kb);
    return rc;
}

// A model for d's classes with the trained parameters.
static int prepare_eval(KanoHead *h, ExecDataset *d) {
    if (h->m != h->trained) kanoclip_free(h->m);
    h->m = kanoclip_new(&h->kc, d->n_classes, h->kc.knpl ? &h->model->text : NULL);
    if (!h->m) return -1;
    size_t n = kanoclip_layout_of(h->trained)->total;
    float *params = malloc(sizeof(float) * n + 1);
    if (!params) return err_set("KAnoCLIP: out of memory for %zu parameters", n);
    kanoclip_download_params(h->trained, params);
    kanoclip_upload_params(h->m, params);
    free(params);
    return set_text(h, h->m, d);
}

static int kano_prepare(MethodHead *mh, ExecDataset *d, MethodRole role) {
    KanoHead *h = (KanoHead *)mh;
    if (prepare_features(h, d) < 0) return -1;
    if (role == METHOD_ROLE_TRAIN) return prepare_train(h, d);
    if (!h->trained) return err_set("KAnoCLIP: evaluation before its training set was prepared");
    return prepare_eval(h, d);
}

static int read_batch(KanoHead *h, const int *idx, int B) {
    size_t TP = (size_t)h->T * h->P;
    for (int j = 0; j < B; j++) {
        for (int k = 0; k < h->ns; k++)
            if (feature_cache_get(h->fc, idx[j], k, h->stage + ((size_t)j * h->ns + k) * TP) < 0) return -1;
        if (feature_cache_get(h->fc, idx[j], FEATURE_GLOBAL, h->global + (size_t)j * h->P) < 0) return -1;
    }
    // method.global_source: vv (Eq. 8): the V-V class token S_L[0] through ln_post + proj, the last stage's row 0
    // (settings hold the last stage to layer L)
    if (h->kc.global_vv) kanoclip_global_from_stages(h->global, h->stage, B, h->ns, h->T, h->P);
    return 0;
}

static int kano_train_step(MethodHead *mh, MethodBatch *b, MethodLosses *out) {
    KanoHead *h = (KanoHead *)mh;
    if (read_batch(h, b->idx, b->B) < 0) return -1;
    KanoBatch kb = {.B = b->B, .stage = h->stage, .global = h->global, .mask = b->mask, .label = b->label,
                    .class_id = b->cls};
    KanoLosses l;
    if (kanoclip_train_step(h->m, &kb, &l) < 0) return -1;
    *out = (MethodLosses){.loss = {l.total, l.focal, l.dice, l.global, l.kd}, .monitor = {l.cos_ak, l.cos_nk, l.cos_an}};
    return 0;
}

static int kano_score(void *ctx, const int *idx, const int *cls, int B, float *maps, float *scores) {
    KanoHead *h = ctx;
    if (read_batch(h, idx, B) < 0) return -1;
    KanoBatch kb = {.B = B, .stage = h->stage, .global = h->global, .class_id = (int *)cls};
    return kanoclip_eval(h->m, &kb, maps, NULL, scores);
}

static int kano_save(MethodHead *h, const char *path) { return kanoclip_save(((KanoHead *)h)->trained, path); }
static int kano_load(MethodHead *h, const char *path) { return kanoclip_load(((KanoHead *)h)->trained, path); }
static long kano_step(const MethodHead *h) { return kanoclip_step(((const KanoHead *)h)->trained); }
static int kano_image_size(const MethodHead *h) { return ((const KanoHead *)h)->kc.image_size; }

static void kano_close(MethodHead *mh) {
    KanoHead *h = (KanoHead *)mh;
    if (!h) return;
    if (h->fc) feature_cache_close(h->fc);
    if (h->m != h->trained) kanoclip_free(h->m);
    kanoclip_free(h->trained);
    vision_tower_free(h->tower);
    free(h->stage); free(h->global); free(h->x_stage); free(h->x_global);
    free(h);
}

const Method METHOD_KANOCLIP = {
    .name = "kanoclip", .label = "KAnoCLIP", .learns = 1, .train_set_always = 1,
    .n_losses = 5, .loss_names = {"total", "focal", "dice", "bce", "kd"},
    .n_monitors = 3, .monitor_names = {"cos(LAP,KB)", "cos(LNP,KB)", "cos(LAP,LNP)"},
    .open = kano_open, .prepare = kano_prepare, .features = kano_features, .train_step = kano_train_step, .score = kano_score,
    .save = kano_save, .load = kano_load, .step = kano_step, .image_size = kano_image_size, .close = kano_close,
};
