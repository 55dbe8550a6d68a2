// Which runs a table may average: runs of one label whose composed configs (config.yaml) are equal but for the
// seed (and keys that change where results go, not what they are). A label shared by runs of different configs
// is split: each group's label gets the keys that differ, "KAnoCLIP (demo) (train.epochs=2)", so mean±sd is only
// ever taken over seeds of one config.
#ifndef HARNESS_RUN_GROUPS_H
#define HARNESS_RUN_GROUPS_H

#include "harness/report/tables_data.h"

// Relabels runs in place where one label holds several configs. -1 with err_set on a config.yaml that cannot be
// read (a run without one keeps its label).
int runs_split_by_config(RunResult *runs, int n);

#endif
