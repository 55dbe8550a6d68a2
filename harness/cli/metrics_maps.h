// `kanoclip metrics --maps`: image and pixel metrics (and with n_boot their bootstrap intervals) of an HDF5 file of
// anomaly maps, through the same code that scores the harness's own runs.
//
// HDF5 layout (--maps FILE.h5 [--masks FILE2.h5]):
//   maps    [N,H,W] float (float32 as written by the harness; any float type is converted)
//   masks   [N,H,W] uint8, nonzero = anomalous pixel (in the maps file, or in --masks FILE2.h5)
//   labels  [N] integer 0/1, optional (default: 1 when the mask has an anomalous pixel)
//   scores  [N] float, optional image scores (default: the maximum of each map)
//   classes [N] strings, optional (fixed or variable length); metrics per class, then the unweighted mean
//   has_mask [N] integer 0/1, optional (default 1): 0 leaves the item out of the pixel metrics (an anomalous
//           image without ground truth)
// A run's maps_<dataset>.h5 (eval.save_maps; harness/run/eval_maps.h) is in this layout. Maps are read one at a
// time, twice: once to find each class's score range and image scores, once into the streaming pixel histograms
// over that range, so memory does not depend on N (with --bootstrap, each image's pixels are also kept by bin).
// --bootstrap N resamples the images of each class (metrics/metrics_boot.h) for intervals of every metric: per
// class and of the mean, "ci" beside "image" and "pixel"; with a run's eval.bootstrap_seed as --seed, the same
// resamples as the run's metrics.json.
#ifndef HARNESS_CLI_METRICS_MAPS_H
#define HARNESS_CLI_METRICS_MAPS_H

#include <stdint.h>

struct cJSON;

typedef struct {
    int bins;             // of the streaming pixel histograms
    int fixed_range;      // every class's histograms over [lo, hi] (else the class's own score range)
    double lo, hi;
    int n_boot;           // bootstrap resamples (0: none)
    uint64_t seed;
} MapsMetricsOptions;

// *out: {"maps", "masks", "n_images", ..., "classes": {NAME: {"image", "pixel"[, "ci"]}}, "mean": {...}
// [, "bootstrap"]}. -1 with err_set naming the file, dataset and item.
int metrics_from_maps(const char *maps_path, const char *masks_path, const MapsMetricsOptions *o, struct cJSON **out);

#endif
