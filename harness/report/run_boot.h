// The bootstrap resamples a run saved (bootstrap_<dataset>.csv, harness/run/eval_bootstrap.h), and the interval of
// a mean over runs paired resample by resample: runs of one method that differ only in the seed evaluate the same
// images, and the same eval.bootstrap_seed draws the same resamples of them, so resample r of the mean is the mean
// of the runs' resample r (the interval then holds the test set's sampling error of the seed-averaged number; the
// sd beside it the seeds' spread).
#ifndef HARNESS_REPORT_RUN_BOOT_H
#define HARNESS_REPORT_RUN_BOOT_H

#include "harness/report/tables_data.h"

struct cJSON;

// Reads DIR/bootstrap_<d->name>.csv, when it exists, into d (the dataset's entry of metrics.json, dj, gives the
// seed and the number of resamples, which must agree). -1 with err_set naming the file and line.
int run_boot_load(const char *dir, const struct cJSON *dj, DatasetResult *d);
void run_boot_free(DatasetResult *d);

// The 95% percentile interval of metric k of the mean over d[0..n) paired by resample; 0 when every d has
// resamples of the same count and seed and some resample defines the metric in all, else -1 (no interval).
int run_boot_paired(const DatasetResult *const *d, int n, int k, double *lo, double *hi);

#endif
