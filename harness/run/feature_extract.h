// Frozen vision features of a dataset in the HDF5 feature cache (cache_feature.h), for every method: the method
// describes its features (FeatureSpec: what decides their content, their blocks' shape, and how to compute a
// batch), and features_prepare opens the cache named by that description, reuses it when complete, resumes it
// when partial, rebuilds it (the reason logged) when its attributes differ, and otherwise extracts the missing
// images, decoding the next batch while the tower runs the current one.
//
// With cache.shards N > 1 the extraction may be split: features_extract_shard writes shard I of N (one process per
// shard, e.g. a Slurm array task) into its shard file (feature_shards.h), and features_prepare, under the cache's
// lock, merges the N shards into the cache when any shard file exists (every shard must then be there, complete
// and of this cache, or the error names the first that is not); when none exists it extracts in one process.
#ifndef HARNESS_FEATURE_EXTRACT_H
#define HARNESS_FEATURE_EXTRACT_H

#include <stddef.h>

#include "harness/cache/cache_feature.h"
#include "harness/run/exec_dataset.h"
#include "model/device.h"

#define FEATURE_MAX_BLOCKS 8

typedef struct {
    const char *what;           // for the log: "layers 6,12,18,24, vv_from 6" or "clip: 1 block of 257 x 1024"
    const char *file_tag;       // "" or a method's feature path ("clip"): part of the cache file's name
    const char *code_version;   // bumped when the computation changes: older caches are rebuilt
    const char *model_hash;     // the weights' SHA-256
    char preprocess[768];       // everything that decides the blocks' content beyond their shape
    const char *id_extra;       // more of the file's identity (KAnoCLIP: layers and V-V start), or ""
    int S;                      // input size
    int n_blocks;
    const int *layers;          // (n_blocks) the layer numbers recorded in the cache's attributes
    int vv_from;                // recorded too
    int rows, ld, P;            // each block (rows, ld), the global feature (P)
    // The computation of one batch of B <= cap images into blocks[k] + j * rows * ld and global + j * P:
    // submit starts it (a device may run it asynchronously), finish waits for it.
    int (*submit)(void *ctx, const float *pixels, int B);
    int (*finish)(void *ctx);
    void *ctx;
    float *const *blocks;
    float *global;
    const float *mean, *std;    // pixel normalisation
    int n_shards;               // cache.shards: how many shard files the extraction may be split into (<= 1: none)
} FeatureSpec;

// The complete cache of d's features, open for reading, in dir. batch: images per extraction batch (the spec's
// buffers hold at least that many). NULL with err_set ("features of NAME: ...").
FeatureCache *features_prepare(const char *dir, const FeatureSpec *spec, ExecDataset *d, int batch);

// Extracts shard `shard` of sp->n_shards of d's features into its shard file, resuming it, under the shard's own
// lock; nothing when the merged cache is complete already. shard < 0 or n_shards <= 1: the whole cache
// (features_prepare: merged from the shards when there are some).
// -1 with err_set ("features of NAME: ...").
int features_extract_shard(const char *dir, const FeatureSpec *sp, ExecDataset *d, int batch, int shard);

// The next batch to extract: up to `batch` images of d's [*next, end) not yet in fc (whose image i is d's image
// first + i), advancing *next; idx[0..*B) their numbers in d and pixels (*B,3,S,S) their decoded, resized,
// normalised pixels. *B = 0 at the end. -1 with the first failing image's error.
int features_load_next(const ExecDataset *d, const FeatureCache *fc, int first, int end, int S, const float *mean,
                       const float *std, int batch, int *next, int *idx, int *B, float *pixels);

// Appends ";gemm=tf32" or ";gemm=bf16" to a cache key (preprocess, cap bytes) when the vision tower computes in
// reduced precision: those features differ from fp32 ones, so their caches are kept apart (fp32 keys unchanged).
void features_key_precision(char *preprocess, size_t cap, DeviceKind device, GemmPrecision precision);

// Reads the blocks and global feature of samples idx[0..B) into blocks[k] + j * rows * ld and global + j * P.
int features_read_batch(FeatureCache *fc, const int *idx, int B, int n_blocks, float *const *blocks, int rows, int ld,
                        float *global, int P);

#endif
