// Frozen vision features of a dataset in the HDF5 feature cache (cache_feature.h): stage tokens after ln_post +
// projection (V-V path from model.vv_from; 0 = CLIP-VV off) and the global feature, per image.
// The cache file is named by everything that decides its content (weights hash, preprocessing, input size,
// layers, V-V start, dataset manifest), so runs sharing a backbone share it and ablations that change the
// feature path get their own. A partial file resumes; a file whose attributes differ is rebuilt, the reason logged.
#ifndef HARNESS_FEATURE_EXTRACT_H
#define HARNESS_FEATURE_EXTRACT_H

#include "harness/cache_feature.h"
#include "harness/config.h"
#include "harness/exec_dataset.h"
#include "harness/method_config.h"
#include "model/clip_model.h"

// Returns the complete cache, open for reading. dir: the cache folder (cache.dir/features, or the run folder when
// cache.features is false). *reused = 1 when the cache was already complete (nothing computed). NULL with err_set.
FeatureCache *features_prepare(const char *dir, ClipModel *model, const BackboneSettings *b, ExecDataset *d,
                               int batch, int *reused);

#endif
