// Bootstrap resamples of runs for the tables (see run_boot.h).
#include "harness/report/run_boot.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "metrics/metrics_boot.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int run_boot_load(const char *dir, const cJSON *dj, DatasetResult *d) {
    char name[300];
    snprintf(name, sizeof name, "bootstrap_%s.csv", d->name);
    char *path = fs_join(dir, name);
    const cJSON *info = cJSON_GetObjectItem(dj, "bootstrap");
    const cJSON *n = cJSON_GetObjectItem(info, "resamples"), *seed = cJSON_GetObjectItem(info, "seed");
    if (!fs_exists(path) || !cJSON_IsNumber(n) || !cJSON_IsNumber(seed) || n->valuedouble < 1) { free(path); return 0; }
    char *text = fs_read_file(path, NULL);
    if (!text) { free(path); return -1; }
    int R = (int)n->valuedouble, rc = 0, line_no = 0, r = 0;
    d->boot = malloc(sizeof *d->boot * (size_t)R * N_METRICS);
    if (!d->boot) { free(text); free(path); return err_set("%s: out of memory for %d resamples", name, R); }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        if (++line_no == 1) {
            for (int k = 0; k < N_METRICS; k++) {
                char want[64];
                snprintf(want, sizeof want, ",%s", metric_csv_name[k]);
                if (!strstr(line, want)) rc = err_set("%s:1: no column %s", path, metric_csv_name[k]);
            }
            if (strncmp(line, "resample,", 9)) rc = err_set("%s:1: expected the header to start with resample,", path);
            continue;
        }
        if (r >= R) { rc = err_set("%s:%d: more than the %d resamples metrics.json says", path, line_no, R); break; }
        char *p = strchr(line, ',');
        for (int k = 0; k < N_METRICS && rc == 0; k++) {
            if (!p) { rc = err_set("%s:%d: %d fields, expected %d", path, line_no, k + 1, N_METRICS + 1); break; }
            char *end = NULL;
            double v = p[1] == ',' || p[1] == '\0' || p[1] == '\r' ? NAN : strtod(p + 1, &end);
            if (!isnan(v) && (end == p + 1 || (*end != ',' && *end != '\0' && *end != '\r')))
                rc = err_set("%s:%d: %s: not a number", path, line_no, metric_csv_name[k]);
            d->boot[(size_t)r * N_METRICS + k] = v;
            p = strchr(p + 1, ',');
        }
        r++;
    }
    if (rc == 0 && r != R) rc = err_set("%s: %d resamples, metrics.json says %d", path, r, R);
    free(text);
    free(path);
    if (rc) { run_boot_free(d); return -1; }
    d->boot_n = R;
    d->boot_seed = seed->valuedouble;
    return 0;
}

void run_boot_free(DatasetResult *d) {
    free(d->boot);
    d->boot = NULL;
    d->boot_n = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int run_boot_paired(const DatasetResult *const *d, int n, int k, double *lo, double *hi) {
    if (n < 1) return -1;
    for (int i = 0; i < n; i++)
        if (!d[i]->boot || d[i]->boot_n != d[0]->boot_n || d[i]->boot_seed != d[0]->boot_seed) return -1;
    int R = d[0]->boot_n, used = 0;
    double *v = malloc(sizeof *v * (size_t)R);
    for (int r = 0; v && r < R; r++) {
        double s = 0;
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            double x = d[i]->boot[(size_t)r * N_METRICS + k];
            ok = !isnan(x);
            s += x;
        }
        if (ok) v[used++] = s / n;
    }
    int rc = -1;
    if (used > 0) {
        qsort(v, (size_t)used, sizeof *v, cmp_double);
        *lo = boot_percentile_sorted(v, used, 2.5);
        *hi = boot_percentile_sorted(v, used, 97.5);
        rc = 0;
    }
    free(v);
    return rc;
}
