// Extraction into the feature cache (see feature_extract.h).
#include "harness/run/feature_extract.h"
#include "harness/run/log.h"
#include "harness/run/progress.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int features_load_next(const ExecDataset *d, const FeatureCache *fc, int S, const float *mean, const float *std,
                       int batch, int *next, int *idx, int *B, float *pixels) {
    int n = 0;
    for (; *next < d->n && n < batch; (*next)++)
        if (!feature_cache_has(fc, *next)) idx[n++] = *next;
    *B = n;
    return exec_dataset_load_pixels(d, idx, n, S, mean, std, pixels);
}

void features_key_precision(char *preprocess, size_t cap, DeviceKind device, GemmPrecision precision) {
    GemmPrecision p = gemm_precision_on(device, precision);
    size_t n = strlen(preprocess);
    if (p != GEMM_FP32 && n < cap) snprintf(preprocess + n, cap - n, ";gemm=%s", gemm_precision_name(p));
}

static int store_batch(FeatureCache *fc, const FeatureSpec *sp, const int *idx, int B) {
    size_t block = (size_t)sp->rows * sp->ld;
    for (int j = 0; j < B; j++) {
        for (int k = 0; k < sp->n_blocks; k++)
            if (feature_cache_put(fc, idx[j], k, sp->blocks[k] + (size_t)j * block) < 0) return -1;
        if (feature_cache_put(fc, idx[j], FEATURE_GLOBAL, sp->global + (size_t)j * sp->P) < 0) return -1;
        if (feature_cache_mark_done(fc, idx[j]) < 0) return -1;
    }
    return 0;
}

int features_read_batch(FeatureCache *fc, const int *idx, int B, int n_blocks, float *const *blocks, int rows, int ld,
                        float *global, int P) {
    size_t block = (size_t)rows * ld;
    for (int j = 0; j < B; j++) {
        for (int k = 0; k < n_blocks; k++)
            if (feature_cache_get(fc, idx[j], k, blocks[k] + (size_t)j * block) < 0) return -1;
        if (feature_cache_get(fc, idx[j], FEATURE_GLOBAL, global + (size_t)j * P) < 0) return -1;
    }
    return 0;
}

// Extracts every image not yet in fc, two pixel buffers in turn: while the tower runs one batch, the CPU threads
// decode and preprocess the next. A finished batch is stored even when loading the next one failed, so a rerun
// resumes after it.
static int extract_missing(FeatureCache *fc, const FeatureSpec *sp, const ExecDataset *d, int batch) {
    size_t px = (size_t)batch * 3 * sp->S * sp->S;
    float *pixels[2] = {malloc(sizeof(float) * px), malloc(sizeof(float) * px)};
    int *idx[2] = {malloc(sizeof(int) * batch), malloc(sizeof(int) * batch)}, B[2] = {0, 0};
    int rc = 0, cur = 0, next = 0;
    if (!pixels[0] || !pixels[1] || !idx[0] || !idx[1])
        rc = err_set("out of memory for a batch of %d images at %d px", batch, sp->S);
    if (rc == 0) rc = features_load_next(d, fc, sp->S, sp->mean, sp->std, batch, &next, idx[cur], &B[cur], pixels[cur]);
    while (rc == 0 && B[cur] > 0) {
        if ((rc = sp->submit(sp->ctx, pixels[cur], B[cur])) < 0) break;
        int load_rc = features_load_next(d, fc, sp->S, sp->mean, sp->std, batch, &next, idx[!cur], &B[!cur], pixels[!cur]);
        char load_msg[1024];
        snprintf(load_msg, sizeof load_msg, "%s", load_rc ? err_msg() : "");
        rc = sp->finish(sp->ctx);
        if (rc == 0 && (rc = store_batch(fc, sp, idx[cur], B[cur])) < 0) err_mark_retryable();  // a write failed
        if (rc == 0) progress_step(B[cur]);
        if (rc == 0 && load_rc) rc = err_set("%s", load_msg);
        cur = !cur;
    }
    free(pixels[0]);
    free(pixels[1]);
    free(idx[0]);
    free(idx[1]);
    return rc;
}

// Takes PATH.lock, saying in the log when another process holds it (and so the wait is not a hang).
static int lock_cache(const char *path, FileLock *lock) {
    size_t n = strlen(path) + 8;
    char *lp = malloc(n);
    if (!lp) return err_set("out of memory");
    snprintf(lp, n, "%s.lock", path);
    long holder = 0;
    int rc = file_lock(lp, 0, lock, &holder);
    if (rc == 1) {
        log_msg("feature cache %s: another run (pid %ld) is extracting it; waiting", path, holder);
        rc = file_lock(lp, 1, lock, NULL);
    }
    free(lp);
    return rc;
}

FeatureCache *features_prepare(const char *dir, const FeatureSpec *sp, ExecDataset *d, int batch) {
    if (exec_dataset_hash(d) < 0) return NULL;
    if (batch < 1) batch = 1;
    char dataset[160];
    snprintf(dataset, sizeof dataset, "%s:%s", d->type, d->manifest);
    const char **hashes = malloc(sizeof(char *) * d->n);
    for (int i = 0; i < d->n; i++) hashes[i] = d->hash[i];
    FeatureCacheKey key = {.model_hash = sp->model_hash, .preprocess = sp->preprocess, .dataset = dataset,
                           .code_version = sp->code_version, .input_size = sp->S, .n_layers = sp->n_blocks,
                           .layers = sp->layers, .vv_from = sp->vv_from, .n_images = d->n, .tokens = sp->rows,
                           .width = sp->ld, .global_dim = sp->P, .image_hashes = hashes};
    // The file name holds the key minus the code version, so a code change rebuilds in place with a reason.
    char idtext[2048], id[65], name[320];
    snprintf(idtext, sizeof idtext, "%s|%s|%d|%s%s", sp->model_hash, sp->preprocess, sp->S, sp->id_extra, dataset);
    sha256_hex(idtext, strlen(idtext), id);
    if (*sp->file_tag) snprintf(name, sizeof name, "%s-%s-%s-%.16s.h5", d->name, d->type, sp->file_tag, id);
    else snprintf(name, sizeof name, "%s-%s-%.16s.h5", d->name, d->type, id);
    if (fs_mkdirs(dir) < 0) { free(hashes); return NULL; }
    char *path = fs_join(dir, name);
    // Runs that need the same features (parallel grid cells) extract them once: the first takes the lock and
    // extracts, the others wait for it and then read the finished file.
    FileLock lock;
    if (lock_cache(path, &lock) < 0) { free(hashes); free(path); return NULL; }
    FeatureCache *fc = feature_cache_open(path, &key);
    free(hashes);
    if (!fc) { file_unlock(&lock); free(path); return NULL; }
    if (feature_cache_complete(fc)) {
        file_unlock(&lock);
        log_msg("feature cache %s: reused (%d images of %s; %s, %d px)", path, d->n, d->name, sp->what, sp->S);
        free(path);
        return fc;
    }
    if (feature_cache_reason(fc)[0]) log_msg("feature cache %s: rebuilt: %s", path, feature_cache_reason(fc));
    int todo = d->n - feature_cache_n_done(fc);
    log_msg("features of %s: %d images to extract (%s, %d px) into %s", d->name, todo, sp->what, sp->S, path);
    free(path);
    progress_start("features", todo);
    int rc = extract_missing(fc, sp, d, batch);
    progress_end();
    if (rc == 0) rc = feature_cache_finish(fc);
    if (rc == 0) {
        file_unlock(&lock);
        return fc;
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    int retry = err_retryable();
    feature_cache_close(fc);  // keeps what is done: the next run resumes
    file_unlock(&lock);
    err_set("features of %s: %s", d->name, msg);
    if (retry) err_mark_retryable();
    return NULL;
}
