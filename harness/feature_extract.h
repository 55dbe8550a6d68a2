// Frozen vision features of a dataset in the HDF5 feature cache (cache_feature.h): stage tokens after ln_post +
// projection (V-V path from model.vv_from; 0 = CLIP-VV off) and the global feature, per image.
// The cache file is named by everything that decides its content (weights hash, preprocessing, input size,
// layers, V-V start, dataset manifest), so runs sharing a backbone share it and ablations that change the
// feature path get their own. A partial file resumes; a file whose attributes differ is rebuilt, the reason logged.
#ifndef HARNESS_FEATURE_EXTRACT_H
#define HARNESS_FEATURE_EXTRACT_H

#include <stddef.h>

#include "harness/cache_feature.h"
#include "harness/config.h"
#include "harness/exec_dataset.h"
#include "harness/method_config.h"
#include "model/clip_model.h"

// Returns the complete cache, open for reading. dir: the cache folder (cache.dir/features, or the run folder when
// cache.features is false). *reused = 1 when the cache was already complete (nothing computed). NULL with err_set.
FeatureCache *features_prepare(const char *dir, ClipModel *model, const BackboneSettings *b, ExecDataset *d,
                               int batch, int *reused);

// The next batch to extract: up to `batch` images not yet in fc from *next on (advancing it), idx[0..*B) their
// numbers and pixels (*B,3,S,S) their decoded, resized, normalised pixels. *B = 0 at the end. -1 with the first
// failing image's error.
int features_load_next(const ExecDataset *d, const FeatureCache *fc, int S, const float *mean, const float *std,
                       int batch, int *next, int *idx, int *B, float *pixels);

// Appends ";gemm=tf32" or ";gemm=bf16" to a cache key (preprocess, cap bytes) when the vision tower computes in
// reduced precision: those features differ from fp32 ones, so their caches are kept apart (fp32 keys unchanged).
void features_key_precision(char *preprocess, size_t cap, DeviceKind device, GemmPrecision precision);

// For extractors of other feature layouts (the baselines): stores, for each of the B images idx[j], block k's rows
// at blocks[k] + j * block_floats[k] and the global feature at global + j * P, then marks the image done.
int features_store_batch(FeatureCache *fc, const int *idx, int B, int n_blocks, float *const *blocks,
                         const size_t *block_floats, const float *global, int P);
// Ends an extraction: on rc == 0 finishes the file and returns fc; otherwise closes it keeping what is done (the
// next run resumes) and returns NULL with "features of NAME: <the error>".
FeatureCache *features_conclude(FeatureCache *fc, int rc, const char *name);

#endif
