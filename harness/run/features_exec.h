// `kanoclip features CONFIG [--shard I/N]`: the frozen vision features a run of CONFIG needs, extracted into the
// shared feature cache ahead of the run and nothing else (no run folder, no text, no training): every dataset the
// run reads (data.train when the method reads it, every eval dataset), through the method's own description of its
// features (method.h: features). With a shard, only shard I of cache.shards of each dataset, into its shard file
// (harness/cache/feature_shards.h): one Slurm array task per shard; the run that needs the features merges them.
#ifndef HARNESS_FEATURES_EXEC_H
#define HARNESS_FEATURES_EXEC_H

#include "harness/config/settings.h"

// shard: 0..cache.shards-1, or -1 for the whole caches (merged from shards when there are some). -1 with err_set.
int features_execute(const Settings *s, int shard);

#endif
