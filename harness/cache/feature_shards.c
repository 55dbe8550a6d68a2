// Sharded feature caches: shard files and their merge (see feature_shards.h).
#include "harness/cache/feature_shards.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *feature_shard_path(const char *path, int shard, int n_shards) {
    size_t n = strlen(path) + 48;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s.shard-%d-of-%d", path, shard, n_shards);
    return p;
}

void feature_shard_range(int n_images, int shard, int n_shards, int batch, int *first, int *count) {
    if (batch < 1) batch = 1;
    long long n_batches = (n_images + (long long)batch - 1) / batch;
    long long lo = shard * n_batches / n_shards * batch, hi = (shard + 1) * n_batches / n_shards * batch;
    if (lo > n_images) lo = n_images;
    if (hi > n_images) hi = n_images;
    *first = (int)lo;
    *count = (int)(hi - lo);
}

FeatureCacheKey feature_shard_key(const FeatureCacheKey *key, int shard, int n_shards, int batch) {
    int first, count;
    feature_shard_range(key->n_images, shard, n_shards, batch, &first, &count);
    FeatureCacheKey k = *key;
    k.n_images = count;
    k.image_hashes = key->image_hashes + first;
    k.shard_index = shard;
    k.shard_count = n_shards;
    k.first_image = first;
    return k;
}

static int bad_shard(const char *path, int shard, int n_shards) {
    if (n_shards < 1 || shard < 0 || shard >= n_shards)
        return err_set("%s: shard %d of %d does not exist (shards are numbered 0..%d)", path, shard, n_shards,
                       n_shards - 1);
    return 0;
}

FeatureCache *feature_shard_open(const char *path, const FeatureCacheKey *key, int shard, int n_shards, int batch,
                                 int *first, int *count) {
    if (bad_shard(path, shard, n_shards) < 0) return NULL;
    FeatureCacheKey k = feature_shard_key(key, shard, n_shards, batch);
    char *sp = feature_shard_path(path, shard, n_shards);
    FeatureCache *fc = feature_cache_open(sp, &k);
    free(sp);
    if (first) *first = k.first_image;
    if (count) *count = k.n_images;
    return fc;
}

static char *with_suffix(const char *path, const char *suffix) {
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s", path, suffix);
    return p;
}

int feature_shards_present(const char *path, int n_shards) {
    int found = 0;
    for (int s = 0; s < n_shards && !found; s++) {
        char *sp = feature_shard_path(path, s, n_shards), *partial = with_suffix(sp, ".partial");
        found = fs_exists(sp) || fs_exists(partial);
        free(sp);
        free(partial);
    }
    return found;
}

// Shard s is present, complete, and of this cache; else -1 with err_set naming its file and what is wrong.
static int check_shard(const char *path, const FeatureCacheKey *key, int s, int n_shards, int batch) {
    char *sp = feature_shard_path(path, s, n_shards), *partial = with_suffix(sp, ".partial"),
         *lock = with_suffix(sp, ".lock");
    int rc = 0;
    if (!fs_exists(sp)) {
        long holder = file_lock_holder(lock);
        if (holder > 0)
            rc = err_set("%s: shard %d of %d is still being extracted (pid %ld holds %s)", sp, s, n_shards, holder, lock);
        else if (fs_exists(partial))
            rc = err_set("%s: shard %d of %d is unfinished (only %s: its extraction stopped before the end)", sp, s,
                         n_shards, partial);
        else
            rc = err_set("%s: shard %d of %d is missing (never extracted, or removed)", sp, s, n_shards);
    } else {
        FeatureCacheKey k = feature_shard_key(key, s, n_shards, batch);
        FeatureCache *fc = feature_cache_open_read(sp, &k);
        if (!fc) {
            // err_msg() is "SP: attribute layers is '1,2', expected '1,2,3'" (or: damaged, incomplete)
            char why[1024];
            const char *m = err_msg();
            size_t n = strlen(sp);
            snprintf(why, sizeof why, "%s", !strncmp(m, sp, n) && !strncmp(m + n, ": ", 2) ? m + n + 2 : m);
            rc = err_set("%s: not shard %d of %d of this cache: %s", sp, s, n_shards, why);
        }
        feature_cache_close(fc);
    }
    free(sp);
    free(partial);
    free(lock);
    return rc;
}

// Copies shard s's images into out (skipping those a merge stopped earlier already copied).
static int copy_shard(FeatureCache *out, const char *path, const FeatureCacheKey *key, int s, int n_shards,
                      int batch, float *buf) {
    FeatureCacheKey k = feature_shard_key(key, s, n_shards, batch);
    char *sp = feature_shard_path(path, s, n_shards);
    FeatureCache *in = feature_cache_open_read(sp, &k);
    free(sp);
    if (!in) return -1;
    int rc = 0;
    for (int i = 0; i < k.n_images && rc == 0; i++) {
        int g = k.first_image + i;
        if (feature_cache_has(out, g)) continue;
        for (int st = 0; st < key->n_layers && rc == 0; st++)
            if ((rc = feature_cache_get(in, i, st, buf)) == 0) rc = feature_cache_put(out, g, st, buf);
        if (rc == 0 && key->global_dim > 0 && (rc = feature_cache_get(in, i, FEATURE_GLOBAL, buf)) == 0)
            rc = feature_cache_put(out, g, FEATURE_GLOBAL, buf);
        if (rc == 0) rc = feature_cache_mark_done(out, g);
    }
    feature_cache_close(in);
    return rc;
}

static void remove_shards(const char *path, int n_shards) {
    for (int s = 0; s < n_shards; s++) {
        char *sp = feature_shard_path(path, s, n_shards), *lock = with_suffix(sp, ".lock");
        unlink(sp);
        // A writer that takes this lock later finds the merged cache complete and writes nothing.
        unlink(lock);
        free(sp);
        free(lock);
    }
}

int feature_shards_merge(const char *path, const FeatureCacheKey *key, int n_shards, int batch) {
    if (n_shards < 1) return err_set("%s: %d shards: expected 1 or more", path, n_shards);
    FeatureCache *done = feature_cache_open_read(path, key);
    if (done) {
        feature_cache_close(done);
        return 0;
    }
    // Every shard checked before the merged file is begun: a refused merge leaves nothing behind.
    for (int s = 0; s < n_shards; s++)
        if (check_shard(path, key, s, n_shards, batch) < 0) return -1;
    FeatureCache *out = feature_cache_open(path, key);
    if (!out) return -1;
    size_t stage_n = (size_t)key->tokens * (size_t)key->width;
    size_t n = stage_n > (size_t)key->global_dim ? stage_n : (size_t)key->global_dim;
    float *buf = malloc((n + 1) * sizeof *buf);
    int rc = buf ? 0 : err_set("out of memory");
    for (int s = 0; s < n_shards && rc == 0; s++) rc = copy_shard(out, path, key, s, n_shards, batch, buf);
    free(buf);
    if (rc == 0) rc = feature_cache_finish(out);
    feature_cache_close(out);
    if (rc < 0) return -1;
    remove_shards(path, n_shards);
    log_msg("feature cache %s: merged from %d shards (%d images)", path, n_shards, key->n_images);
    return 0;
}
