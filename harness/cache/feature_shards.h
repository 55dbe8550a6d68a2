// Sharded feature caches: one dataset's features extracted by N processes (Slurm array tasks), each writing its
// own shard file beside the cache, then merged into the one cache file by the first run that needs it.
//
// Shard s of n holds a run of the dataset's images [first, first + count) in the file PATH.shard-S-of-N: the
// feature cache layout and rules of cache_feature.h (written as .partial, renamed when complete, resumable after a
// kill), with the cache's own attributes (model hash, preprocessing, dataset and its manifest hash, code version,
// input size, layers, V-V start) plus shard_index, shard_count and first_image, and the content hashes of its
// images. Images are numbered within the shard (0..count-1).
//
// Shards split the dataset at extraction-batch boundaries (batch images a batch): the B batches of one process,
// shard s taking batches [s*B/n, (s+1)*B/n). Each image is then computed in the same batch as one process computes
// it, so its features are the same bits (the tower's small products take another GEMM path when a batch has fewer
// rows, model/gemm.c, which changes the last bit of some values).
//
// The merge checks every shard before it writes anything: present, complete, and made for this cache (each
// attribute and each image hash); the first shard that is not is the error, naming its file. It then writes the
// cache as one process does (the same calls in the dataset's image order, so the same bytes), renames it into
// place, and removes the shard files. The caller holds the cache's lock (harness/run/feature_extract.c).
#ifndef HARNESS_CACHE_FEATURE_SHARDS_H
#define HARNESS_CACHE_FEATURE_SHARDS_H

#include "harness/cache/cache_feature.h"

// PATH.shard-S-of-N (malloc'd).
char *feature_shard_path(const char *path, int shard, int n_shards);
// The images of shard s of n of a dataset of n_images extracted `batch` at a time: [*first, *first + *count)
// (empty for some shards when there are fewer batches than shards).
void feature_shard_range(int n_images, int shard, int n_shards, int batch, int *first, int *count);
// The key of shard s of n of the cache whose key is key (image_hashes points into key's).
FeatureCacheKey feature_shard_key(const FeatureCacheKey *key, int shard, int n_shards, int batch);

// Opens shard s of n of the cache at path for writing (or reading, when complete): resumes its .partial file.
// *first, *count (may be NULL): its images in the dataset. NULL with err_set.
FeatureCache *feature_shard_open(const char *path, const FeatureCacheKey *key, int shard, int n_shards, int batch,
                                 int *first, int *count);

// 1 when a file or a .partial of some shard of n exists beside path, else 0.
int feature_shards_present(const char *path, int n_shards);

// Merges the n shards into path (a no-op when path is already complete for key). -1 with err_set naming the
// first shard file that is missing, unfinished, or of another cache, and what is wrong with it.
int feature_shards_merge(const char *path, const FeatureCacheKey *key, int n_shards, int batch);

#endif
