// Table 3 of the KAnoCLIP paper in its own layout: the five cumulative rows (none; KnPL; +CLIP-VV; +Bi-CMCI;
// +Conv-Adapter), a check mark per module, image and pixel AUROC on MVTec AD and VisA, each beside the paper's
// number (experiments/paper_numbers.csv, table "ablation", methods named as the rows' report.label). Runs with
// report.table: table3 and report.order 1..5 (the row) fill it; experiments/table3/*.yaml are those runs.
#ifndef HARNESS_REPORT_TABLE3_H
#define HARNESS_REPORT_TABLE3_H

#include "harness/report/paper_numbers.h"
#include "harness/report/tables_data.h"

// Writes table3_paper.md and table3_paper.csv into out_dir when any run has report.table table3 (else nothing).
// header: the provenance comment line. *n_files += the files written. -1 with err_set.
int table3_paper_write(const RunResult *runs, int n_runs, const PaperNumbers *paper, const char *out_dir,
                       const char *header, int *n_files);

#endif
