// eval.save_maps: maps_<dataset>.h5 in the run folder, in the layout `kanoclip metrics --maps` reads (its usage
// text), so the metrics (and with --bootstrap N --seed S their intervals) can be recomputed from the file alone:
//   maps     [N,S,S] float32  the anomaly maps as scored (clamped to [0,1])
//   scores   [N]     float32  image scores
//   labels   [N]     uint8    image labels (1 anomalous)
//   classes  [N]     strings  class names (the metrics are per class, then the unweighted mean)
//   masks    [N,S,S] uint8    ground truth at the evaluation size (absent for image-level-only datasets)
//   has_mask [N]     uint8    1 where masks[i] is the image's ground truth; 0 for an anomalous image without a
//                             mask file, which the pixel metrics leave out (as the run does)
// and the attributes "dataset" and "pixel_bins" (the run's histograms: that many bins over [0, 1]). Items are in the
// run's order (by class), so `kanoclip metrics --maps FILE --range 0,1 --bins <pixel_bins> [--bootstrap N --seed S]`
// gives the run's metrics.json numbers (and, with its eval.bootstrap and eval.bootstrap_seed, its intervals).
#ifndef HARNESS_EVAL_MAPS_H
#define HARNESS_EVAL_MAPS_H

#include "harness/cache/h5_writer.h"
#include "harness/run/exec_dataset.h"

// Creates the datasets (pixel: the dataset has masks) and writes the class names; bins: the run's pixel histogram
// bins. -1 with err_set.
int maps_file_start(H5Writer *h5, const ExecDataset *d, int S, int pixel, int bins);
// Item i: map and mask (S,S), score, label, has (the mask is ground truth).
int maps_file_row(H5Writer *h5, int i, const float *map, const uint8_t *mask, float score, int label, int has,
                  int pixel);

#endif
