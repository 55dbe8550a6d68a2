// One number of a table from the runs that share a label: metric k's mean over them (percent), the sd across them
// when there are several, and a 95% interval: a single run's from its metrics.json "ci", several runs' paired by
// bootstrap resample (run_boot.h) when each saved its resamples (dataset level only).
#ifndef HARNESS_REPORT_CELL_VALUE_H
#define HARNESS_REPORT_CELL_VALUE_H

#include "harness/report/tables_data.h"

typedef struct {
    int n;          // runs with the metric (0: no value)
    double v, sd;   // percent; sd when n > 1
    int has_ci;
    double lo, hi;  // percent
} CellValue;

// ms[i]: run i's metric set (dataset or class level); ds[i]: its dataset result when ms[i] is the dataset level
// (NULL at class level: no pairing). Runs without metric k are left out.
void cell_value(const MetricSet *const *ms, const DatasetResult *const *ds, int n, int k, CellValue *out);

#endif
