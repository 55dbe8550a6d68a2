// `kanoclip experiment CONFIG [key=value ...] [--dry-run] [--force]`: the orchestration around one run.
// The command loads the config, opens (creates or resumes) the run folder (run_dir.h), and hands over to
// experiment_execute, which trains and evaluates as the config says and writes the run's result files.
// When it returns 0 the command writes DONE (run_finish); the executor never does.
//
// Files the executor writes into the run folder (run_write_file / run_path), read by `kanoclip tables` and
// `kanoclip plots` (report_data.h parses them):
//
// metrics.json: fractions in [0,1] (tables print them x100); a metric that does not apply is absent or null.
//   {
//     "method": "kanoclip",                      // train.method (required)
//     "label": "KAnoCLIP",                       // display name (optional; report.label, else method)
//     "table": "main",                           // report.table: main | ablation (optional; default main)
//     "order": 0,                                // report.order (optional)
//     "train_dataset": "mvtec",
//     "aupro_variant": "mvtec",                  // eval.aupro: mvtec | anomalyclip
//     "seed": 111,
//     "datasets": {
//       "visa": {
//         "image": {"auroc": 0.821, "ap": 0.854, "f1_max": 0.80},
//         "pixel": {"auroc": 0.955, "aupro": 0.870, "ap": 0.2, "f1_max": 0.3},   // absent: no masks
//         "ci": {"image.auroc": [0.80, 0.84], "pixel.auroc": [0.95, 0.96]},       // optional 95% intervals (any of
//                                                 // image.auroc/ap/f1_max, pixel.auroc/aupro/ap/f1_max)
//         "bootstrap": {"resamples": 1000, "seed": 0, ...},                       // with eval.bootstrap
//         "classes": {"candle": {"image": {...}, "pixel": {...}, "ci": {...}}, ...} // per class, same fields
//       }
//     }
//   }
// per_class.csv: header `dataset,class,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,
//   pixel_f1_max`, one row per (dataset, class), rows sorted, empty field for a metric that does not apply.
// roc_<dataset>.csv: header `fpr,tpr`, the image-level ROC curve (class-mean or pooled, as metrics.json says in
//   "roc": "pooled"|"class_mean"), points in increasing fpr, from (0,0) to (1,1).
// bootstrap_<dataset>.csv (eval.bootstrap): header `resample,image_auroc,image_ap,image_f1_max,pixel_auroc,
//   pixel_aupro,pixel_ap,pixel_f1_max`, the class mean in each resample (empty: undefined); eval_bootstrap.h.
// maps_<dataset>.h5 (eval.save_maps): the maps in `kanoclip metrics --maps`'s layout; eval_maps.h.
// train_log.csv: header `step,epoch,loss_total,loss_focal,loss_dice,loss_bce,loss_kd` (any further `loss_*`
//   columns are plotted too), one row per train.log_every steps, appended (resumed runs continue it).
// state.bin: the executor's own resumable state (run_path(run, "state.bin")); kept on resume, removed by --force.
#ifndef HARNESS_EXPERIMENT_H
#define HARNESS_EXPERIMENT_H

#include "harness/config/settings.h"
#include "harness/run/run_dir.h"

// Trains and evaluates (harness/run/experiment_exec.c). run_state(run) is RUN_NEW or RUN_RESUMED. Returns 0 when
// the run's result files are complete; -1 with err_set otherwise (the run stays resumable).
int experiment_execute(Run *run, const Settings *s);

// Optional (the datasets layer may provide it): 0 if root holds a readable dataset of this type, else -1 with
// err_set naming what is missing. Without it, --dry-run checks that the root is a folder.
int experiment_check_dataset(const char *type, const char *root);

typedef int (*ExperimentFn)(Run *run, const Settings *s);
// The command's body with the executor passed in (tests pass their own). argv[0] is "experiment".
int experiment_main(int argc, char **argv, ExperimentFn execute);

#endif
