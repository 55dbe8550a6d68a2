// Extraction into the feature cache (see feature_extract.h).
#include "harness/feature_extract.h"
#include "harness/log.h"
#include "harness/progress.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "datasets/image.h"
#include "model/towers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bump when the feature computation changes: caches of older code are then rebuilt (the reason is logged).
#define FEATURE_CODE_VERSION "exec-1"

int features_load_next(const ExecDataset *d, const FeatureCache *fc, int S, const float *mean, const float *std,
                       int batch, int *next, int *idx, int *B, float *pixels) {
    int n = 0;
    for (; *next < d->n && n < batch; (*next)++)
        if (!feature_cache_has(fc, *next)) idx[n++] = *next;
    *B = n;
    return exec_dataset_load_pixels(d, idx, n, S, mean, std, pixels);
}

FeatureCache *features_prepare(const char *dir, ClipModel *model, const BackboneSettings *b, ExecDataset *d,
                               int batch, int *reused) {
    *reused = 0;
    const char *model_hash = checkpoint_hash(model->ck);
    if (!model_hash) return NULL;
    if (exec_dataset_hash(d) < 0) return NULL;
    const ClipVision *v = &model->vision;
    int S = b->image_size, grid = S / v->patch_size, T = grid * grid + 1, P = v->proj_dim;
    char preprocess[512], layers[128] = "", dataset[160];
    const float *mean = model->cfg.image_mean, *std = model->cfg.image_std;
    snprintf(preprocess, sizeof preprocess,
             "resize=bicubic-square;mean=%.8g,%.8g,%.8g;std=%.8g,%.8g,%.8g;pos=%s;global_ln_post=%d", mean[0], mean[1],
             mean[2], std[0], std[1], std[2], b->pos_bicubic ? "bicubic" : "bilinear", b->global_ln_post);
    features_key_precision(preprocess, sizeof preprocess, b->device, b->precision);
    for (int i = 0; i < b->n_layers; i++)
        snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", i ? "," : "", b->layers[i]);
    snprintf(dataset, sizeof dataset, "%s:%s", d->type, d->manifest);
    const char **hashes = malloc(sizeof(char *) * d->n);
    for (int i = 0; i < d->n; i++) hashes[i] = d->hash[i];
    FeatureCacheKey key = {.model_hash = model_hash, .preprocess = preprocess, .dataset = dataset,
                           .code_version = FEATURE_CODE_VERSION, .input_size = S, .n_layers = b->n_layers,
                           .layers = b->layers, .vv_from = b->vv_from, .n_images = d->n, .tokens = T, .width = P,
                           .global_dim = P, .image_hashes = hashes};
    // The file name holds the key minus the code version, so a code change rebuilds in place with a reason.
    char idtext[2048], id[65], name[256];
    snprintf(idtext, sizeof idtext, "%s|%s|%d|%s|%d|%s", model_hash, preprocess, S, layers, b->vv_from, dataset);
    sha256_hex(idtext, strlen(idtext), id);
    snprintf(name, sizeof name, "%s-%s-%.16s.h5", d->name, d->type, id);
    if (fs_mkdirs(dir) < 0) { free(hashes); return NULL; }
    char *path = fs_join(dir, name);
    FeatureCache *fc = feature_cache_open(path, &key);
    free(hashes);
    if (!fc) { free(path); return NULL; }
    if (feature_cache_complete(fc)) {
        log_msg("feature cache %s: reused (%d images of %s; layers %s, vv_from %d, %d px)", path, d->n, d->name, layers,
                b->vv_from, S);
        *reused = 1;
        free(path);
        return fc;
    }
    if (feature_cache_reason(fc)[0]) log_msg("feature cache %s: rebuilt: %s", path, feature_cache_reason(fc));
    int todo = d->n - feature_cache_n_done(fc);
    log_msg("features of %s: %d images to extract (layers %s, vv_from %d, %d px) into %s", d->name, todo, layers,
            b->vv_from, S, path);
    VisionTower *tower = vision_tower_new(v, S, b->pos_bicubic ? CLIP_POS_BICUBIC : CLIP_POS_BILINEAR, b->device,
                                          b->precision);
    if (!tower) { feature_cache_close(fc); free(path); return NULL; }
    log_msg("features of %s: vision tower on %s (%s GEMMs)", d->name, device_describe(b->device),
            gemm_precision_name(gemm_precision_on(b->device, b->precision)));
    if (batch < 1) batch = 1;
    // Two batches of pixels: while the GPU runs one, the CPU threads decode and preprocess the next.
    float *pixels[2] = {malloc(sizeof(float) * batch * 3 * S * S), malloc(sizeof(float) * batch * 3 * S * S)};
    float *stage_buf = malloc(sizeof(float) * b->n_layers * batch * T * P);  // n_layers x (B,T,P)
    float *global = malloc(sizeof(float) * batch * P);                  // (B,P)
    int *idx[2] = {malloc(sizeof(int) * batch), malloc(sizeof(int) * batch)}, B[2] = {0, 0};
    int rc = 0, cur = 0, next = 0;
    if (!pixels[0] || !pixels[1] || !stage_buf || !global || !idx[0] || !idx[1])
        rc = err_set("features of %s: out of memory for a batch of %d images at %d px", d->name, batch, S);
    float *stages[8];
    size_t stage_floats[8];
    for (int s = 0; s < b->n_layers && stage_buf; s++) {
        stages[s] = stage_buf + (size_t)s * batch * T * P;
        stage_floats[s] = (size_t)T * P;
    }
    ClipVisionOut out = clip_vision_stage_out(b->vv_from, b->n_layers, b->layers, stages, global, b->global_ln_post);
    progress_start("features", todo);
    if (rc == 0) rc = features_load_next(d, fc, S, mean, std, batch, &next, idx[cur], &B[cur], pixels[cur]);
    while (rc == 0 && B[cur] > 0) {
        rc = vision_tower_submit(tower, pixels[cur], B[cur], &out);
        if (rc) break;
        int load_rc = features_load_next(d, fc, S, mean, std, batch, &next, idx[!cur], &B[!cur], pixels[!cur]);
        char load_msg[1024];
        snprintf(load_msg, sizeof load_msg, "%s", load_rc ? err_msg() : "");
        rc = vision_tower_finish(tower);
        // The finished batch is stored even when loading the next one failed: a rerun resumes after it.
        if (rc == 0) rc = features_store_batch(fc, idx[cur], B[cur], b->n_layers, stages, stage_floats, global, P);
        if (rc == 0) progress_step(B[cur]);
        if (rc == 0 && load_rc) rc = err_set("%s", load_msg);
        cur = !cur;
    }
    progress_end();
    free(pixels[0]);
    free(pixels[1]);
    free(stage_buf);
    free(global);
    free(idx[0]);
    free(idx[1]);
    vision_tower_free(tower);
    free(path);
    return features_conclude(fc, rc, d->name);
}

void features_key_precision(char *preprocess, size_t cap, DeviceKind device, GemmPrecision precision) {
    GemmPrecision p = gemm_precision_on(device, precision);
    size_t n = strlen(preprocess);
    if (p != GEMM_FP32 && n < cap) snprintf(preprocess + n, cap - n, ";gemm=%s", gemm_precision_name(p));
}

int features_store_batch(FeatureCache *fc, const int *idx, int B, int n_blocks, float *const *blocks,
                         const size_t *block_floats, const float *global, int P) {
    for (int j = 0; j < B; j++) {
        for (int k = 0; k < n_blocks; k++)
            if (feature_cache_put(fc, idx[j], k, blocks[k] + (size_t)j * block_floats[k]) < 0) return -1;
        if (feature_cache_put(fc, idx[j], FEATURE_GLOBAL, global + (size_t)j * P) < 0) return -1;
        if (feature_cache_mark_done(fc, idx[j]) < 0) return -1;
    }
    return 0;
}

FeatureCache *features_conclude(FeatureCache *fc, int rc, const char *name) {
    if (rc == 0) rc = feature_cache_finish(fc);
    if (rc == 0) return fc;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    feature_cache_close(fc);  // keeps what is done: the next run resumes
    err_set("features of %s: %s", name, msg);
    return NULL;
}
