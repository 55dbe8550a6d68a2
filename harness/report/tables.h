// Result tables from finished runs, shaped like the paper's:
//   table1_industrial  datasets (MVTec AD, VisA, MPDD, BTAD, SDD, DAGM) x methods,
//                      each cell "image AUROC / pixel AUROC" (%), a Mean row, best per row in bold (of two or more)
//   table2_medical     the same for BrainMRI, LiverCT, RESC, Br35H, COVID-19, HeadCT
//   table_other        the same for datasets outside the paper (synthetic, custom), without published numbers
// Tables 1 and 2 are written only when a run has one of their datasets: published numbers stand beside ours,
// never alone.
//   table3_ablation    runs with report.table = ablation x datasets, best per column in bold
//   table3_paper       runs with report.table = table3: the paper's Table 3 layout (harness/report/table3.h)
//   table4_metrics     every metric (image AUROC/AP/F1-max, pixel AUROC/AUPRO/AP/F1-max) per dataset and method,
//                      the AUPRO variant named
//   per_class_<ds>     classes x methods for each dataset
// each as .md, .csv and .tex (booktabs). Output depends only on the inputs: runs are sorted, numbers are printed
// with one decimal (percent; CSV two), and no time or path goes in. Several runs with one label (seeds) are
// averaged and shown as mean±sd; a 95% bootstrap interval is shown as [lo, hi]: a single run's from metrics.json
// "ci", several seeds' paired by resample from their bootstrap_<dataset>.csv (cell_value.h, run_boot.h).
#ifndef HARNESS_TABLES_H
#define HARNESS_TABLES_H

#include "harness/report/paper_numbers.h"
#include "harness/report/tables_data.h"

// Writes every table for these runs (sorted by folder) into out_dir as .md, .csv, .tex. paper may be NULL.
// *n_files gets the count of files written. -1 with err_set.
int tables_write(RunResult *runs, int n_runs, const PaperNumbers *paper, const char *out_dir, int *n_files);


#endif
