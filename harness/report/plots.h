// Figures from finished runs with gnuplot (run at run time; scripts in plots/*.gp). For each figure a data file
// is written under OUT/data/ and gnuplot renders OUT/<name>.png (pngcairo) and OUT/<name>.pdf (pdfcairo):
//   roc_<dataset>       image-level ROC curves, one per run (from each run's roc_<dataset>.csv: fpr,tpr)
//   per_class_<dataset> per-class image AUROC bars, one bar per method (metrics.json / per_class.csv)
//   ablation            mean image and pixel AUROC per ablation variant (runs with report.table = ablation)
//   loss_<run folder>   training losses against the step (each run's train_log.csv)
// plus OUT/figures.tex, one figure environment per PDF (paper/main.tex inputs it), captions escaped for LaTeX
// and \label{fig:<name>}. Names from configs and folders become safe file stems (letters, digits, . _ -); labels
// drawn in figures are shortened to 28 characters, and characters no installed font has are written as U+XXXX.
// The ROC curves pool every class's images; their key gives each curve's area and the class mean the tables show.
#ifndef HARNESS_PLOTS_H
#define HARNESS_PLOTS_H

#include "harness/report/tables_data.h"

// The gnuplot executable found on PATH (static string), or NULL.
const char *plots_find_gnuplot(void);
// The folder holding roc.gp etc.: $KANOCLIP_PLOTS, else ./plots, else <binary>/../plots. NULL with err_set.
const char *plots_scripts_dir(void);
// Writes the data files and renders every figure the runs allow. *n_figures gets the count of figures.
int plots_write(RunResult *runs, int n_runs, const char *out_dir, const char *gnuplot, int *n_figures);

#endif
