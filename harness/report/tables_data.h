// Results of finished runs as `kanoclip tables` and `kanoclip plots` read them (the file formats are documented
// in harness/run/experiment.h): metrics.json, with per_class.csv as the source of per-class rows when metrics.json
// has none, report.* from config.yaml when metrics.json does not say label/table/order, and from provenance.json
// where the knowledge base of each training class came from (kb_source.<class>, harness/run/kb_preflight.h).
#ifndef HARNESS_TABLES_DATA_H
#define HARNESS_TABLES_DATA_H

#include <stdio.h>

enum {
    M_IMAGE_AUROC, M_IMAGE_AP, M_IMAGE_F1, M_PIXEL_AUROC, M_PIXEL_AUPRO, M_PIXEL_AP, M_PIXEL_F1, N_METRICS
};
// "image.auroc", ... (the names used in metrics.json "ci") and CSV column names ("image_auroc", ...).
extern const char *const metric_json_name[N_METRICS];
extern const char *const metric_csv_name[N_METRICS];

typedef struct {
    double v[N_METRICS];      // fractions in [0,1]
    int has[N_METRICS];
    double lo[N_METRICS], hi[N_METRICS];
    int has_ci[N_METRICS];
} MetricSet;

typedef struct { char *name; MetricSet m; } ClassResult;

typedef struct {
    char *name;
    MetricSet m;
    ClassResult *classes;
    int n_classes;
    double *boot;         // (boot_n, N_METRICS) the class mean in each bootstrap resample (NaN: undefined), or NULL
    int boot_n;
    double boot_seed;
} DatasetResult;

typedef struct {
    char *dir;
    char *method, *label, *table, *aupro_variant, *train_dataset;
    int order;
    long seed;
    DatasetResult *datasets;
    int n_datasets;
    char metrics_sha256[65];  // of metrics.json's bytes
    char *kb_summary;         // the training classes' knowledge sources in one sentence (kb_source_summary); ""
                              // when provenance.json records none (a baseline, KnPL off, an older run)
} RunResult;

// Reads DIR's metrics.json (required; DONE need not exist). -1 with err_set naming file and field.
int run_result_load(const char *dir, RunResult *out);
void run_result_free(RunResult *r);
// The finished runs among dirs (DONE and metrics.json), in the given order, for `kanoclip tables` and `plots`
// over a glob such as results/*/: a folder without DONE (an unfinished run, a grid's folder, any other folder) is
// skipped with one line "CMD: skipping DIR: why" on notes (may be NULL). -1 with err_set when a finished run's
// files do not read, or when no folder holds a finished run. *out: *n_out results (caller frees each and out).
int run_results_load_finished(char *const *dirs, int n, const char *cmd, FILE *notes, RunResult **out, int *n_out);
const DatasetResult *run_result_dataset(const RunResult *r, const char *name);

#endif
