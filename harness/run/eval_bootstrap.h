// The 95% bootstrap intervals of one dataset's evaluation (eval.bootstrap resamples, eval.bootstrap_seed;
// metrics/metrics_boot.h): each class's images resampled as the class is scored, then the interval of the class
// mean the dataset reports. metrics.json gets "ci" beside "image"/"pixel" (per class and per dataset, the names of
// harness/run/experiment.h) and the dataset's "bootstrap" settings; bootstrap_<dataset>.csv holds the class mean's
// value in every resample, with which `kanoclip tables` pairs runs of several seeds (the same images and seed draw
// the same resamples) into the interval of their mean.
#ifndef HARNESS_EVAL_BOOTSTRAP_H
#define HARNESS_EVAL_BOOTSTRAP_H

#include "harness/config/settings.h"
#include "metrics/metrics_boot.h"

struct cJSON;

typedef struct {
    int n_resamples;   // 0: off (every call does nothing)
    uint64_t seed;
    int aupro_as;      // the BOOT_PIXEL_AUPRO* variant metrics.json reports as pixel.aupro (eval.aupro)
    boot_mean mean;
} EvalBoot;

int eval_boot_init(EvalBoot *b, const Settings *st);
// Class number c (its stream): scores, labels (n); acc the class's pixels with their runs (NULL: none), acc_image
// (n) each image's index among them (-1: no mask). Adds "ci" to the class's object co.
int eval_boot_class(EvalBoot *b, struct cJSON *co, int c, const double *scores, const uint8_t *labels, int n,
                    const pixel_acc *acc, const int64_t *acc_image);
// The dataset: "ci" and "bootstrap" added to o, *csv the resamples of the class mean (malloc'd; NULL when off).
int eval_boot_finish(EvalBoot *b, struct cJSON *o, char **csv);
void eval_boot_free(EvalBoot *b);

// bootstrap_<dataset>.csv's columns after "resample": the names of per_class.csv's metrics, pixel_aupro being
// eval.aupro's variant.
#define EVAL_BOOT_CSV_HEADER "resample,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,pixel_f1_max"

#endif
