// Extraction into the feature cache (see feature_extract.h).
#include "harness/run/feature_extract.h"
#include "harness/cache/feature_shards.h"
#include "harness/run/log.h"
#include "harness/run/progress.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int features_load_next(const ExecDataset *d, const FeatureCache *fc, int first, int end, int S, const float *mean,
                       const float *std, int batch, int *next, int *idx, int *B, float *pixels) {
    int n = 0;
    for (; *next < end && n < batch; (*next)++)
        if (!feature_cache_has(fc, *next - first)) idx[n++] = *next;
    *B = n;
    return exec_dataset_load_pixels(d, idx, n, S, mean, std, pixels);
}

void features_key_precision(char *preprocess, size_t cap, DeviceKind device, GemmPrecision precision) {
    GemmPrecision p = gemm_precision_on(device, precision);
    size_t n = strlen(preprocess);
    if (p != GEMM_FP32 && n < cap) snprintf(preprocess + n, cap - n, ";gemm=%s", gemm_precision_name(p));
}

// Stores dataset images idx[0..B) as the cache's images idx[j] - first.
static int store_batch(FeatureCache *fc, const FeatureSpec *sp, const int *idx, int B, int first) {
    size_t block = (size_t)sp->rows * sp->ld;
    for (int j = 0; j < B; j++) {
        int i = idx[j] - first;
        for (int k = 0; k < sp->n_blocks; k++)
            if (feature_cache_put(fc, i, k, sp->blocks[k] + (size_t)j * block) < 0) return -1;
        if (feature_cache_put(fc, i, FEATURE_GLOBAL, sp->global + (size_t)j * sp->P) < 0) return -1;
        if (feature_cache_mark_done(fc, i) < 0) return -1;
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

// Extracts every image of d's [first, first + count) not yet in fc (fc's image i is d's image first + i), two
// pixel buffers in turn: while the tower runs one batch, the CPU threads decode and preprocess the next. A
// finished batch is stored even when loading the next one failed, so a rerun resumes after it.
static int extract_missing(FeatureCache *fc, const FeatureSpec *sp, const ExecDataset *d, int batch, int first,
                           int count) {
    size_t px = (size_t)batch * 3 * sp->S * sp->S;
    float *pixels[2] = {malloc(sizeof(float) * px), malloc(sizeof(float) * px)};
    int *idx[2] = {malloc(sizeof(int) * batch), malloc(sizeof(int) * batch)}, B[2] = {0, 0};
    int rc = 0, cur = 0, next = first, end = first + count;
    if (!pixels[0] || !pixels[1] || !idx[0] || !idx[1])
        rc = err_set("out of memory for a batch of %d images at %d px", batch, sp->S);
    if (rc == 0)
        rc = features_load_next(d, fc, first, end, sp->S, sp->mean, sp->std, batch, &next, idx[cur], &B[cur], pixels[cur]);
    while (rc == 0 && B[cur] > 0) {
        if ((rc = sp->submit(sp->ctx, pixels[cur], B[cur])) < 0) break;
        int load_rc = features_load_next(d, fc, first, end, sp->S, sp->mean, sp->std, batch, &next, idx[!cur],
                                         &B[!cur], pixels[!cur]);
        char load_msg[1024];
        snprintf(load_msg, sizeof load_msg, "%s", load_rc ? err_msg() : "");
        rc = sp->finish(sp->ctx);
        if (rc == 0 && (rc = store_batch(fc, sp, idx[cur], B[cur], first)) < 0) err_mark_retryable();  // a write failed
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

// Where d's features described by sp live, and the key the file must match.
typedef struct {
    char *path;
    const char **hashes;
    char dataset[160];
    FeatureCacheKey key;
} CacheTarget;

static void target_free(CacheTarget *t) {
    free(t->path);
    free(t->hashes);
}

static int target_of(const char *dir, const FeatureSpec *sp, ExecDataset *d, CacheTarget *t) {
    memset(t, 0, sizeof *t);
    if (exec_dataset_hash(d) < 0) return -1;
    snprintf(t->dataset, sizeof t->dataset, "%s:%s", d->type, d->manifest);
    t->hashes = malloc(sizeof(char *) * (d->n + 1));
    if (!t->hashes) return err_set("out of memory");
    for (int i = 0; i < d->n; i++) t->hashes[i] = d->hash[i];
    t->key = (FeatureCacheKey){.model_hash = sp->model_hash, .preprocess = sp->preprocess, .dataset = t->dataset,
                               .code_version = sp->code_version, .input_size = sp->S, .n_layers = sp->n_blocks,
                               .layers = sp->layers, .vv_from = sp->vv_from, .n_images = d->n, .tokens = sp->rows,
                               .width = sp->ld, .global_dim = sp->P, .image_hashes = t->hashes};
    // The file name holds the key minus the code version, so a code change rebuilds in place with a reason.
    char idtext[2048], id[65], name[320];
    snprintf(idtext, sizeof idtext, "%s|%s|%d|%s%s", sp->model_hash, sp->preprocess, sp->S, sp->id_extra, t->dataset);
    sha256_hex(idtext, strlen(idtext), id);
    if (*sp->file_tag) snprintf(name, sizeof name, "%s-%s-%s-%.16s.h5", d->name, d->type, sp->file_tag, id);
    else snprintf(name, sizeof name, "%s-%s-%.16s.h5", d->name, d->type, id);
    if (fs_mkdirs(dir) < 0) { target_free(t); return -1; }
    t->path = fs_join(dir, name);
    return 0;
}

// Extracts the images of fc not yet done (d's [first, first + count)) and finishes fc; -1 with err_set (marked
// retryable where a rerun continues). what: "" or " shard 2 of 4", for the log.
static int fill(FeatureCache *fc, const FeatureSpec *sp, ExecDataset *d, int batch, int first, int count,
                const char *path, const char *what) {
    int todo = count - feature_cache_n_done(fc);
    log_msg("features of %s%s: %d images to extract (%s, %d px) into %s", d->name, what, todo, sp->what, sp->S, path);
    progress_start("features", todo);
    int rc = extract_missing(fc, sp, d, batch, first, count);
    progress_end();
    return rc == 0 ? feature_cache_finish(fc) : -1;
}

static void fail_features(const ExecDataset *d) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    int retry = err_retryable();
    err_set("features of %s: %s", d->name, msg);
    if (retry) err_mark_retryable();
}

FeatureCache *features_prepare(const char *dir, const FeatureSpec *sp, ExecDataset *d, int batch) {
    if (batch < 1) batch = 1;
    CacheTarget t;
    if (target_of(dir, sp, d, &t) < 0) return NULL;
    const char *path = t.path;
    // Runs that need the same features (parallel grid cells) extract them once: the first takes the lock and
    // extracts (or merges the shards), the others wait for it and then read the finished file.
    FileLock lock;
    if (lock_cache(path, &lock) < 0) { target_free(&t); return NULL; }
    int n_shards = sp->n_shards;
    if (n_shards > 1 && feature_shards_present(path, n_shards) && feature_shards_merge(path, &t.key, n_shards, batch) < 0) {
        file_unlock(&lock);
        err_wrap("features of %s: ", d->name);
        char msg[1400];
        snprintf(msg, sizeof msg, "%s (`kanoclip features CONFIG --shard I/%d` extracts shard I; with no shard file "
                                  "left, a run extracts the features in one process)", err_msg(), n_shards);
        err_set("%s", msg);
        target_free(&t);
        return NULL;
    }
    FeatureCache *fc = feature_cache_open(path, &t.key);
    if (!fc) { file_unlock(&lock); target_free(&t); return NULL; }
    if (feature_cache_complete(fc)) {
        file_unlock(&lock);
        log_msg("feature cache %s: reused (%d images of %s; %s, %d px)", path, d->n, d->name, sp->what, sp->S);
        target_free(&t);
        return fc;
    }
    if (feature_cache_reason(fc)[0]) log_msg("feature cache %s: rebuilt: %s", path, feature_cache_reason(fc));
    if (n_shards > 1)
        log_msg("feature cache %s: cache.shards is %d but no shard was extracted: extracting in this process", path,
                n_shards);
    int rc = fill(fc, sp, d, batch, 0, d->n, path, "");
    file_unlock(&lock);
    target_free(&t);
    if (rc == 0) return fc;
    fail_features(d);
    feature_cache_close(fc);  // keeps what is done: the next run resumes
    return NULL;
}

int features_extract_shard(const char *dir, const FeatureSpec *sp, ExecDataset *d, int batch, int shard) {
    int n = sp->n_shards;
    if (n <= 1 || shard < 0) {
        FeatureCache *fc = features_prepare(dir, sp, d, batch);
        feature_cache_close(fc);
        return fc ? 0 : -1;
    }
    if (shard < 0 || shard >= n) return err_set("shard %d of %d: expected 0..%d", shard, n, n - 1);
    if (batch < 1) batch = 1;
    CacheTarget t;
    if (target_of(dir, sp, d, &t) < 0) return -1;
    char *shard_path = feature_shard_path(t.path, shard, n), what[64];
    snprintf(what, sizeof what, " shard %d of %d", shard, n);
    // One writer per shard file (a task submitted twice waits for the first); the shards themselves in parallel.
    FileLock lock = {.fd = -1};
    int rc = lock_cache(shard_path, &lock);
    FeatureCache *whole = rc == 0 ? feature_cache_open_read(t.path, &t.key) : NULL;
    if (whole) {
        // merged already (or extracted in one process): nothing to add
        log_msg("feature cache %s: complete already; shard %d of %d not needed", t.path, shard, n);
        feature_cache_close(whole);
    } else if (rc == 0) {
        int first = 0, count = 0;
        FeatureCache *fc = feature_shard_open(t.path, &t.key, shard, n, batch, &first, &count);
        if (!fc) rc = -1;
        else if (feature_cache_complete(fc))
            log_msg("features of %s%s: %s is complete (images %d..%d)", d->name, what, shard_path, first,
                    first + count - 1);
        else if ((rc = fill(fc, sp, d, batch, first, count, shard_path, what)) == 0)
            log_msg("features of %s%s: images %d..%d in %s", d->name, what, first, first + count - 1, shard_path);
        if (rc < 0) fail_features(d);
        feature_cache_close(fc);
    }
    if (lock.fd >= 0) file_unlock(&lock);
    free(shard_path);
    target_free(&t);
    return rc < 0 ? -1 : 0;
}
