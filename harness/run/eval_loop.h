// Evaluation of one dataset: anomaly maps and image scores from the heads over cached features, streamed class
// by class into the metrics (metrics/metrics.h: image AUROC/AP/F1-max, pixel AUROC/AUPRO/AP/F1-max), with the
// dataset's class means; optionally their bootstrap intervals (eval.bootstrap, eval_bootstrap.h), the maps (HDF5,
// eval.save_maps, eval_maps.h) and overlay PNGs (eval.overlays per class).
#ifndef HARNESS_EVAL_LOOP_H
#define HARNESS_EVAL_LOOP_H

#include "harness/config/settings.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/run_dir.h"

struct cJSON;

typedef struct {
    struct cJSON *json;   // the dataset's entry of metrics.json: image, pixel (if masks), classes
    char *per_class;      // per_class.csv rows of this dataset (no header), in class order
    char *roc;            // roc_<dataset>.csv (header included): pooled image-level ROC
    char *bootstrap;      // bootstrap_<dataset>.csv (eval_bootstrap.h), or NULL (eval.bootstrap 0)
    double image_auroc, pixel_auroc;  // class means (NaN when undefined), for the log
} EvalResult;

// Scores one batch of B images of one class: idx (B) sample indices into the dataset, cls (B) their local class
// (all equal), maps (B,S,S) pixel anomaly maps (clamped to [0,1] by the caller), scores (B). -1 with err_set.
typedef int (*EvalScoreFn)(void *ctx, const int *idx, const int *cls, int B, float *maps, float *scores);

// The loop itself, for any scorer: batches of at most eval.batch_size images of one class, maps at S x S.
int eval_dataset_scored(Run *run, const Settings *s, const ExecDataset *d, int S, EvalScoreFn score_fn, void *ctx,
                        EvalResult *out);

void eval_result_free(EvalResult *r);

#endif
