// Feature cache in HDF5 (see cache_feature.h for the layout and the rules).
#include "harness/cache/cache_feature.h"
#include "harness/cache/cache_float16.h"
#include "harness/cache/cache_h5.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_LEN 64

struct FeatureCache {
    char *path, *partial;
    hid_t file;
    hid_t *stage;       // [n_layers] datasets
    hid_t global, done_ds;
    int n_layers, n_images, tokens, width, global_dim;
    uint8_t *done;      // [n_images]
    int n_done, pending, flush_every;
    int complete;       // read-only final file
    char reason[1024];
};

// ---- key as attribute text ----

typedef struct { const char *name; char value[1024]; } Attr;
enum { N_KEY_ATTRS = 11, MAX_ATTRS = 14 };

// The key's attributes, a shard file's three more included; their count.
static int key_attrs(const FeatureCacheKey *k, Attr a[MAX_ATTRS]) {
    const char *names[MAX_ATTRS] = {"model_hash", "preprocess", "dataset", "code_version", "input_size", "layers",
                                    "vv_from", "n_images", "tokens", "width", "global_dim",
                                    "shard_index", "shard_count", "first_image"};
    for (int i = 0; i < MAX_ATTRS; i++) a[i].name = names[i];
    snprintf(a[0].value, sizeof a[0].value, "%s", k->model_hash ? k->model_hash : "");
    snprintf(a[1].value, sizeof a[1].value, "%s", k->preprocess ? k->preprocess : "");
    snprintf(a[2].value, sizeof a[2].value, "%s", k->dataset ? k->dataset : "");
    snprintf(a[3].value, sizeof a[3].value, "%s", k->code_version ? k->code_version : "");
    snprintf(a[4].value, sizeof a[4].value, "%d", k->input_size);
    a[5].value[0] = '\0';
    for (int i = 0; i < k->n_layers; i++)
        snprintf(a[5].value + strlen(a[5].value), sizeof a[5].value - strlen(a[5].value), "%s%d", i ? "," : "", k->layers[i]);
    snprintf(a[6].value, sizeof a[6].value, "%d", k->vv_from);
    snprintf(a[7].value, sizeof a[7].value, "%d", k->n_images);
    snprintf(a[8].value, sizeof a[8].value, "%d", k->tokens);
    snprintf(a[9].value, sizeof a[9].value, "%d", k->width);
    snprintf(a[10].value, sizeof a[10].value, "%d", k->global_dim);
    if (k->shard_count < 1) return N_KEY_ATTRS;
    snprintf(a[11].value, sizeof a[11].value, "%d", k->shard_index);
    snprintf(a[12].value, sizeof a[12].value, "%d", k->shard_count);
    snprintf(a[13].value, sizeof a[13].value, "%d", k->first_image);
    return MAX_ATTRS;
}

static hid_t hash_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, HASH_LEN);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    return t;
}

// "" when file matches key; else the first difference, as a sentence: "attribute A was 'x', now 'y'" when the
// file is about to be rebuilt, "attribute A is 'x', expected 'y'" when it is only read (as_read).
static void compare_key(hid_t file, const FeatureCacheKey *k, int as_read, char *why, size_t size) {
    const char *was = as_read ? "is" : "was", *now = as_read ? "expected" : "now";
    Attr a[MAX_ATTRS];
    int n = key_attrs(k, a);
    why[0] = '\0';
    for (int i = 0; i < n; i++) {
        char old[1024];
        if (h5_get_attr_text(file, a[i].name, old, sizeof old) < 0) {
            snprintf(why, size, "attribute %s is missing, %s '%s'", a[i].name, now, a[i].value);
            return;
        }
        if (strcmp(old, a[i].value)) {
            snprintf(why, size, "attribute %s %s '%s', %s '%s'", a[i].name, was, old, now, a[i].value);
            return;
        }
    }
    hid_t ds = H5Dopen2(file, "index", H5P_DEFAULT);
    if (ds < 0) { snprintf(why, size, "the index dataset is missing"); return; }
    char *idx = malloc((size_t)k->n_images * HASH_LEN + 1);
    hid_t t = hash_type();
    herr_t rc = k->n_images > 0 ? H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx) : 0;
    H5Tclose(t);
    H5Dclose(ds);
    if (rc < 0) snprintf(why, size, "the index dataset cannot be read");
    for (int i = 0; rc >= 0 && i < k->n_images; i++)
        if (memcmp(idx + (size_t)i * HASH_LEN, k->image_hashes[i], HASH_LEN)) {
            snprintf(why, size, "index: image %d content hash %s %.12s..., %s %.12s...", i, was,
                     idx + (size_t)i * HASH_LEN, now, k->image_hashes[i]);
            break;
        }
    free(idx);
}

// ---- opening ----

static int open_datasets(FeatureCache *fc, const FeatureCacheKey *k) {
    fc->n_layers = k->n_layers;
    fc->n_images = k->n_images;
    fc->tokens = k->tokens;
    fc->width = k->width;
    fc->global_dim = k->global_dim;
    fc->stage = calloc((size_t)k->n_layers, sizeof *fc->stage);
    for (int s = 0; s < k->n_layers; s++) {
        char name[32];
        snprintf(name, sizeof name, "stage_%02d", k->layers[s]);
        if ((fc->stage[s] = H5Dopen2(fc->file, name, H5P_DEFAULT)) < 0) return err_set("%s: no dataset %s", fc->path, name);
    }
    fc->global = -1;
    if (k->global_dim > 0 && (fc->global = H5Dopen2(fc->file, "global", H5P_DEFAULT)) < 0)
        return err_set("%s: no dataset global", fc->path);
    if ((fc->done_ds = H5Dopen2(fc->file, "done", H5P_DEFAULT)) < 0) return err_set("%s: no dataset done", fc->path);
    fc->done = calloc((size_t)k->n_images + 1, 1);
    if (k->n_images > 0 && H5Dread(fc->done_ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, fc->done) < 0)
        return err_set("%s: cannot read the done flags", fc->path);
    fc->n_done = 0;
    for (int i = 0; i < k->n_images; i++) fc->n_done += fc->done[i] != 0;
    return 0;
}

static void close_handles(FeatureCache *fc) {
    for (int s = 0; fc->stage && s < fc->n_layers; s++)
        if (fc->stage[s] >= 0) H5Dclose(fc->stage[s]);
    free(fc->stage);
    fc->stage = NULL;
    if (fc->global >= 0) H5Dclose(fc->global);
    if (fc->done_ds >= 0) H5Dclose(fc->done_ds);
    if (fc->file >= 0) H5Fclose(fc->file);
    fc->global = fc->done_ds = fc->file = -1;
    free(fc->done);
    fc->done = NULL;
}

static hid_t make_dataset(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);  // reproducible bytes
    hsize_t chunk[3] = {1, rank > 1 ? dims[1] : 1, rank > 2 ? dims[2] : 1};
    if (dims[0] > 0) H5Pset_chunk(dcpl, rank, chunk);  // one image per chunk
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return ds;
}

static int flush_file(FeatureCache *fc) {
    errno = 0;
    if (H5Fflush(fc->file, H5F_SCOPE_GLOBAL) < 0) return err_set("%s: flush failed: %s", fc->partial, h5_os_reason());
    return 0;
}

static int create_partial(FeatureCache *fc, const FeatureCacheKey *k) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    errno = 0;
    fc->file = H5Fcreate(fc->partial, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (fc->file < 0) return err_set("%s: cannot create HDF5 file: %s", fc->partial, h5_os_reason());
    Attr a[MAX_ATTRS];
    int n_attrs = key_attrs(k, a);
    for (int i = 0; i < n_attrs; i++)
        if (h5_set_attr_str(fc->file, a[i].name, a[i].value) < 0) return err_set("%s: cannot write attributes", fc->partial);
    hid_t f16 = h5_float16_type();
    int rc = 0;
    for (int s = 0; s < k->n_layers && rc == 0; s++) {
        char name[32];
        snprintf(name, sizeof name, "stage_%02d", k->layers[s]);
        hsize_t dims[3] = {(hsize_t)k->n_images, (hsize_t)k->tokens, (hsize_t)k->width};
        hid_t ds = make_dataset(fc->file, name, f16, 3, dims);
        if (ds < 0) rc = err_set("%s: cannot create %s", fc->partial, name);
        else H5Dclose(ds);
    }
    if (rc == 0 && k->global_dim > 0) {
        hsize_t dims[2] = {(hsize_t)k->n_images, (hsize_t)k->global_dim};
        hid_t ds = make_dataset(fc->file, "global", f16, 2, dims);
        if (ds < 0) rc = err_set("%s: cannot create global", fc->partial);
        else H5Dclose(ds);
    }
    H5Tclose(f16);
    if (rc < 0) return rc;
    // index and done: small, contiguous, written whole.
    hsize_t n = (hsize_t)k->n_images;
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t t = hash_type();
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);  // reproducible bytes: the same extraction writes the same file
    hid_t idx = H5Dcreate2(fc->file, "index", t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    char *buf = calloc((size_t)k->n_images * HASH_LEN + 1, 1);
    for (int i = 0; i < k->n_images; i++) memcpy(buf + (size_t)i * HASH_LEN, k->image_hashes[i], HASH_LEN);
    if (idx < 0 || (n > 0 && H5Dwrite(idx, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) rc = err_set("%s: cannot write index", fc->partial);
    free(buf);
    if (idx >= 0) H5Dclose(idx);
    H5Tclose(t);
    hid_t done = H5Dcreate2(fc->file, "done", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    uint8_t *zeros = calloc((size_t)n + 1, 1);
    if (done < 0 || (n > 0 && H5Dwrite(done, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) < 0))
        rc = err_set("%s: cannot write done flags", fc->partial);
    free(zeros);
    if (done >= 0) H5Dclose(done);
    H5Sclose(space);
    if (rc == 0 && flush_file(fc) < 0) rc = -1;
    return rc < 0 ? rc : open_datasets(fc, k);
}

static void note(FeatureCache *fc, const char *fmt, const char *why) {
    snprintf(fc->reason, sizeof fc->reason, "%s", why);
    log_msg(fmt, fc->path, why);
}

static int check_hashes(const char *path, const FeatureCacheKey *key) {
    for (int i = 0; i < key->n_images; i++)
        if (!key->image_hashes[i] || strlen(key->image_hashes[i]) != HASH_LEN)
            return err_set("%s: image %d: expected a 64-digit content hash", path, i);
    return 0;
}

static FeatureCache *cache_new(const char *path) {
    FeatureCache *fc = calloc(1, sizeof *fc);
    fc->path = strdup(path);
    size_t n = strlen(path) + 16;
    fc->partial = malloc(n);
    snprintf(fc->partial, n, "%s.partial", path);
    fc->file = fc->global = fc->done_ds = -1;
    fc->flush_every = 16;
    return fc;
}

FeatureCache *feature_cache_open_read(const char *path, const FeatureCacheKey *key) {
    h5_quiet();
    if (check_hashes(path, key) < 0) return NULL;
    if (!fs_exists(path)) {
        err_set("%s: no such file", path);
        return NULL;
    }
    FeatureCache *fc = cache_new(path);
    char why[1024] = "";
    fc->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fc->file < 0) snprintf(why, sizeof why, "not an HDF5 file (damaged, or not a feature cache)");
    else compare_key(fc->file, key, 1, why, sizeof why);
    if (!why[0] && open_datasets(fc, key) < 0) snprintf(why, sizeof why, "damaged (%s)", err_msg());
    if (!why[0] && fc->n_done < key->n_images)
        snprintf(why, sizeof why, "incomplete: %d of %d images missing", key->n_images - fc->n_done, key->n_images);
    if (why[0]) {
        feature_cache_close(fc);
        err_set("%s: %s", path, why);
        return NULL;
    }
    fc->complete = 1;
    return fc;
}

FeatureCache *feature_cache_open(const char *path, const FeatureCacheKey *key) {
    h5_quiet();
    if (check_hashes(path, key) < 0) return NULL;
    FeatureCache *fc = cache_new(path);
    char why[1024];

    if (fs_exists(path)) {
        fc->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (fc->file < 0) snprintf(why, sizeof why, "the file cannot be opened as HDF5");
        else compare_key(fc->file, key, 0, why, sizeof why);
        if (!why[0] && open_datasets(fc, key) == 0 && fc->n_done == key->n_images) {
            fc->complete = 1;
            return fc;
        }
        if (!why[0]) snprintf(why, sizeof why, "the file is incomplete or damaged");
        close_handles(fc);
        note(fc, "feature cache %s: %s; rebuilding", why);
        // A partial file may already hold a rebuild for this key (killed earlier): checked next.
    }
    if (fs_exists(fc->partial)) {
        fc->file = H5Fopen(fc->partial, H5F_ACC_RDWR, H5P_DEFAULT);
        if (fc->file < 0) snprintf(why, sizeof why, "the partial file cannot be opened (killed mid-write)");
        else compare_key(fc->file, key, 0, why, sizeof why);
        if (!why[0] && open_datasets(fc, key) == 0) {
            log_msg("feature cache %s: resuming, %d of %d images already done", path, fc->n_done, key->n_images);
            return fc;
        }
        if (!why[0]) snprintf(why, sizeof why, "the partial file is damaged");
        close_handles(fc);
        note(fc, "feature cache %s: partial file unusable (%s); starting over", why);
        unlink(fc->partial);
    }
    if (create_partial(fc, key) < 0) {
        feature_cache_close(fc);
        return NULL;
    }
    return fc;
}

int feature_cache_complete(const FeatureCache *fc) { return fc->complete; }
const char *feature_cache_reason(const FeatureCache *fc) { return fc->reason; }
int feature_cache_n_done(const FeatureCache *fc) { return fc->n_done; }
int feature_cache_has(const FeatureCache *fc, int i) { return i >= 0 && i < fc->n_images && fc->done[i]; }
void feature_cache_set_flush_every(FeatureCache *fc, int n) { fc->flush_every = n > 0 ? n : 1; }

static int select_row(hid_t ds, int i, hid_t *file_space, hid_t *mem_space) {
    *file_space = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(*file_space);
    hsize_t dims[3], start[3] = {(hsize_t)i, 0, 0}, count[3];
    H5Sget_simple_extent_dims(*file_space, dims, NULL);
    count[0] = 1;
    for (int r = 1; r < rank; r++) count[r] = dims[r];
    H5Sselect_hyperslab(*file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    *mem_space = H5Screate_simple(rank, count, NULL);
    hsize_t n = 1;
    for (int r = 1; r < rank; r++) n *= count[r];
    return (int)n;  // values per image
}

static hid_t stage_ds(FeatureCache *fc, int stage) {
    if (stage == FEATURE_GLOBAL) return fc->global;
    return stage >= 0 && stage < fc->n_layers ? fc->stage[stage] : -1;
}

int feature_cache_put(FeatureCache *fc, int i, int stage, const float *data) {
    if (fc->complete) return err_set("%s: the cache is complete (read-only)", fc->path);
    if (i < 0 || i >= fc->n_images) return err_set("%s: image %d out of range (%d images)", fc->partial, i, fc->n_images);
    hid_t ds = stage_ds(fc, stage);
    if (ds < 0) return err_set("%s: no stage %d", fc->partial, stage);
    hid_t fs, ms;
    size_t n = (size_t)select_row(ds, i, &fs, &ms);
    uint16_t *half = malloc(n * sizeof *half);
    floats_to_halves(data, half, n);
    hid_t f16 = h5_float16_type();
    errno = 0;
    herr_t rc = H5Dwrite(ds, f16, ms, fs, H5P_DEFAULT, half);
    H5Tclose(f16);
    free(half);
    H5Sclose(fs);
    H5Sclose(ms);
    return rc < 0 ? err_set("%s: cannot write image %d stage %d: %s", fc->partial, i, stage, h5_os_reason()) : 0;
}

// Data first, flags after, each flushed: a kill at any point leaves no flag set for data not on disk.
static int flush_progress(FeatureCache *fc) {
    if (fc->complete || fc->file < 0) return 0;
    if (flush_file(fc) < 0) return -1;
    errno = 0;
    if (fc->n_images > 0 && H5Dwrite(fc->done_ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, fc->done) < 0)
        return err_set("%s: cannot write done flags: %s", fc->partial, h5_os_reason());
    if (flush_file(fc) < 0) return -1;
    fc->pending = 0;
    return 0;
}

int feature_cache_mark_done(FeatureCache *fc, int i) {
    if (fc->complete) return 0;
    if (i < 0 || i >= fc->n_images) return err_set("%s: image %d out of range", fc->partial, i);
    if (!fc->done[i]) {
        fc->done[i] = 1;
        fc->n_done++;
        if (++fc->pending >= fc->flush_every) return flush_progress(fc);
    }
    return 0;
}

int feature_cache_get(FeatureCache *fc, int i, int stage, float *out) {
    if (!feature_cache_has(fc, i)) return err_set("%s: image %d is not in the cache", fc->path, i);
    hid_t ds = stage_ds(fc, stage);
    if (ds < 0) return err_set("%s: no stage %d", fc->path, stage);
    hid_t fs, ms;
    size_t n = (size_t)select_row(ds, i, &fs, &ms);
    uint16_t *half = malloc(n * sizeof *half);
    hid_t f16 = h5_float16_type();
    herr_t rc = H5Dread(ds, f16, ms, fs, H5P_DEFAULT, half);
    H5Tclose(f16);
    if (rc >= 0) halves_to_floats(half, out, n);
    free(half);
    H5Sclose(fs);
    H5Sclose(ms);
    return rc < 0 ? err_set("%s: cannot read image %d stage %d", fc->path, i, stage) : 0;
}

int feature_cache_finish(FeatureCache *fc) {
    if (fc->complete) return 0;
    if (fc->n_done < fc->n_images)
        return err_set("%s: %d of %d images are missing", fc->partial, fc->n_images - fc->n_done, fc->n_images);
    if (flush_progress(fc) < 0) return -1;
    // Reopen datasets from the final file afterwards: remember the shape.
    FeatureCacheKey k = {.n_layers = fc->n_layers, .n_images = fc->n_images, .tokens = fc->tokens,
                         .width = fc->width, .global_dim = fc->global_dim};
    int *layers = malloc(sizeof(int) * (size_t)(fc->n_layers + 1));
    for (int s = 0; s < fc->n_layers; s++) {
        char name[64];
        H5Iget_name(fc->stage[s], name, sizeof name);
        layers[s] = atoi(strrchr(name, '_') + 1);
    }
    k.layers = layers;
    close_handles(fc);
    int rc = fs_commit(fc->partial, fc->path);
    if (rc == 0) {
        fc->file = H5Fopen(fc->path, H5F_ACC_RDONLY, H5P_DEFAULT);
        rc = fc->file < 0 ? err_set("%s: cannot reopen", fc->path) : open_datasets(fc, &k);
        if (rc == 0) {
            fc->complete = 1;
            log_msg("feature cache %s: complete (%d images)", fc->path, fc->n_images);
        }
    }
    free(layers);
    return rc;
}

void feature_cache_close(FeatureCache *fc) {
    if (!fc) return;
    if (fc->pending) flush_progress(fc);
    close_handles(fc);
    free(fc->path);
    free(fc->partial);
    free(fc);
}
