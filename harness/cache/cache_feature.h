// The feature cache: frozen vision-tower outputs of one dataset, one HDF5 file per (model, preprocessing,
// dataset). Layout:
//   /stage_LL  [N, T, D] float16   one dataset per stage (LL = the encoder layer), one image per chunk
//   /global    [N, P]    float16   the global (class-token) feature, when P > 0
//   /index     [N]       char[64]  SHA-256 (hex) of each image file's bytes, in dataset order
//   /done      [N]       uint8     1 once image i is complete (all stages written)
//   attributes: model_hash, preprocess, dataset, code_version, input_size, layers ("6,12,18,24"), vv_from,
//               n_images, tokens, width, global_dim (a shard file: shard_index, shard_count, first_image too)
// A finished cache lives at PATH; while being filled it is PATH.partial, flushed every few images, so a killed
// extraction continues where it stopped. A file whose attributes or index differ from the key is never used:
// the difference is logged (attribute, old value, new value) and the cache is rebuilt.
// Set HDF5_USE_FILE_LOCKING=FALSE on file systems without POSIX locks (NFS, Lustre).
#ifndef HARNESS_CACHE_FEATURE_H
#define HARNESS_CACHE_FEATURE_H

typedef struct {
    const char *model_hash;    // SHA-256 of the weights
    const char *preprocess;    // preprocessing identity, e.g. "resize=bicubic;mean=...;std=..."
    const char *dataset;       // dataset identity, e.g. "visa:<manifest hash>"
    const char *code_version;  // bump when the feature computation changes
    int input_size;            // image side in pixels
    int n_layers;
    const int *layers;         // [n_layers] stage layers (1-based)
    int vv_from;               // CLIP-VV start layer (0: none)
    int n_images;
    int tokens, width;         // T and D of each stage
    int global_dim;            // P (0: no global feature)
    const char *const *image_hashes;  // [n_images] 64 hex digits each
    // A shard file (feature_shards.h) also records which part of the dataset it holds: shard shard_index of
    // shard_count, its image 0 being the dataset's image first_image. shard_count 0: a whole cache.
    int shard_index, shard_count, first_image;
} FeatureCacheKey;

typedef struct FeatureCache FeatureCache;
enum { FEATURE_GLOBAL = -1 };  // the stage number of the global feature

// Opens PATH for reading when it matches key; otherwise resumes PATH.partial when that matches, or starts a
// new one. NULL with err_set on I/O errors.
FeatureCache *feature_cache_open(const char *path, const FeatureCacheKey *key);
// 1 when every image is present (reads only from here on), 0 while filling.
int feature_cache_complete(const FeatureCache *fc);
// Opens PATH for reading only when it is complete and matches key; never writes, rebuilds or removes anything.
// NULL with err_set "PATH: <why>" otherwise (missing, not HDF5, "attribute layers is '6,12', expected '6'",
// an image's content hash, images missing).
FeatureCache *feature_cache_open_read(const char *path, const FeatureCacheKey *key);
// Why the last open rebuilt or restarted ("" if it did not): e.g. "attribute input_size was 336, now 518".
const char *feature_cache_reason(const FeatureCache *fc);
int feature_cache_n_done(const FeatureCache *fc);
int feature_cache_has(const FeatureCache *fc, int i);
// Writes stage `stage` (0..n_layers-1, or FEATURE_GLOBAL) of image i: data (T, D) or (P) floats.
int feature_cache_put(FeatureCache *fc, int i, int stage, const float *data);
// Marks image i complete (after all its stages were put). Progress reaches the disk every flush_every images.
int feature_cache_mark_done(FeatureCache *fc, int i);
void feature_cache_set_flush_every(FeatureCache *fc, int n);
// Reads stage `stage` of image i into out (T, D) or (P) floats; -1 with err_set if image i is not done.
int feature_cache_get(FeatureCache *fc, int i, int stage, float *out);
// When all images are done: flushes, renames PATH.partial to PATH, and reopens it read-only. -1 if some
// images are missing (err_set says how many).
int feature_cache_finish(FeatureCache *fc);
// Flushes progress (a partial cache stays resumable) and closes.
void feature_cache_close(FeatureCache *fc);

#endif
