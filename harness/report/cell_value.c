// A table cell's value from runs (see cell_value.h).
#include "harness/report/cell_value.h"
#include "harness/report/run_boot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cell_value(const MetricSet *const *ms, const DatasetResult *const *ds, int n, int k, CellValue *out) {
    memset(out, 0, sizeof *out);
    double sum = 0, sum2 = 0;
    const MetricSet *single = NULL;
    const DatasetResult **with = malloc(sizeof *with * (size_t)(n > 0 ? n : 1));
    int paired = ds != NULL && with != NULL;
    for (int i = 0; i < n; i++) {
        if (!ms[i]->has[k]) continue;
        double x = ms[i]->v[k] * 100;
        sum += x;
        sum2 += x * x;
        if (paired) with[out->n] = ds[i];
        out->n++;
        single = ms[i];
    }
    if (out->n == 0) { free(with); return; }
    out->v = sum / out->n;
    if (out->n == 1 && single->has_ci[k]) {
        out->has_ci = 1;
        out->lo = single->lo[k] * 100;
        out->hi = single->hi[k] * 100;
    } else if (out->n > 1) {
        out->sd = sqrt(fmax(0, (sum2 - sum * sum / out->n) / (out->n - 1)));
        double lo, hi;
        if (paired && run_boot_paired(with, out->n, k, &lo, &hi) == 0) {
            out->has_ci = 1;
            out->lo = lo * 100;
            out->hi = hi * 100;
        }
    }
    free(with);
}
