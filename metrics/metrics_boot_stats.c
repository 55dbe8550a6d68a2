// The bootstrap's draws, its samples, the mean over classes and the percentile interval (metrics_boot.h).
#include "metrics/metrics_boot.h"
#include "common/error.h"
#include "common/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const boot_metric_name[BOOT_N_METRICS] = {
    "image.auroc", "image.ap", "image.f1_max", "pixel.auroc", "pixel.ap", "pixel.f1_max", "pixel.aupro",
    "pixel.aupro_ac200", "pixel.aupro_ac200_f32"};

int boot_samples_init(boot_samples *s, int n_resamples, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (n_resamples < 1) return err_set("bootstrap: the number of resamples must be at least 1 (got %d)", n_resamples);
    s->v = malloc((size_t)BOOT_N_METRICS * n_resamples * sizeof *s->v);
    if (!s->v) return err_set("bootstrap: out of memory for %d resamples", n_resamples);
    for (size_t i = 0; i < (size_t)BOOT_N_METRICS * n_resamples; i++) s->v[i] = NAN;
    s->n_resamples = n_resamples;
    s->seed = seed;
    return 0;
}

void boot_samples_free(boot_samples *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}

// ---- draws ---------------------------------------------------------------------------------------------------

uint64_t boot_stream(uint64_t seed, int class_index) {
    uint64_t t = seed + (uint64_t)class_index * 0x9e3779b97f4a7c15ULL;
    return rng_splitmix64(&t);
}

size_t boot_uniform_below(uint64_t *state, size_t m) {
    return (size_t)(((unsigned __int128)rng_splitmix64(state) * m) >> 64);
}

int boot_draw(uint64_t *state, const uint8_t *labels, size_t n, uint32_t *counts) {
    size_t *members = malloc((n ? n : 1) * sizeof *members); // the stratum's images, in class order
    if (!members) return err_set("bootstrap: out of memory for %zu images", n);
    memset(counts, 0, n * sizeof *counts);
    for (int want = 1; want >= 0; want--) { // anomalous images first, then normal ones
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == want) members[m++] = i;
        for (size_t k = 0; k < m; k++) counts[members[boot_uniform_below(state, m)]]++;
    }
    free(members);
    return 0;
}

// ---- mean over classes ---------------------------------------------------------------------------------------

int boot_mean_init(boot_mean *m, int n_resamples, uint64_t seed) {
    memset(m, 0, sizeof *m);
    size_t n = (size_t)BOOT_N_METRICS * (n_resamples > 0 ? n_resamples : 1);
    m->sum = calloc(n, sizeof *m->sum);
    m->n = calloc(n, sizeof *m->n);
    if (!m->sum || !m->n) { boot_mean_free(m); return err_set("bootstrap: out of memory for %d resamples", n_resamples); }
    m->n_resamples = n_resamples;
    m->seed = seed;
    return 0;
}

void boot_mean_add(boot_mean *m, const boot_samples *cls) {
    int R = m->n_resamples;
    for (int k = 0; k < BOOT_N_METRICS; k++) {
        const double *v = cls->v + (size_t)k * R;
        int any = 0;
        for (int r = 0; r < R && !any; r++) any = !isnan(v[r]);
        if (!any) continue;
        m->n_classes[k]++;
        for (int r = 0; r < R; r++)
            if (!isnan(v[r])) {
                m->sum[(size_t)k * R + r] += v[r];
                m->n[(size_t)k * R + r]++;
            }
    }
}

int boot_mean_samples(const boot_mean *m, boot_samples *out) {
    if (boot_samples_init(out, m->n_resamples, m->seed)) return -1;
    int R = m->n_resamples;
    for (int k = 0; k < BOOT_N_METRICS; k++)
        for (int r = 0; r < R; r++) {
            size_t i = (size_t)k * R + r;
            if (m->n_classes[k] > 0 && m->n[i] == m->n_classes[k]) out->v[i] = m->sum[i] / m->n_classes[k];
        }
    return 0;
}

void boot_mean_free(boot_mean *m) {
    free(m->sum);
    free(m->n);
    memset(m, 0, sizeof *m);
}

// ---- the interval ----------------------------------------------------------------------------------------------

double boot_percentile_sorted(const double *v, int n, double q) {
    double pos = q / 100.0 * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return v[n - 1];
    double frac = pos - i;
    return v[i] + frac * (v[i + 1] - v[i]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

boot_interval boot_interval_of(const boot_samples *s, int metric) {
    boot_interval out = {0};
    int R = s->n_resamples, n = 0;
    double *v = malloc((size_t)(R > 0 ? R : 1) * sizeof *v);
    for (int r = 0; v && r < R; r++) {
        double x = s->v[(size_t)metric * R + r];
        if (!isnan(x)) v[n++] = x;
    }
    if (n == 0) {
        metric_value none = {.value = NAN, .defined = 0,
                             .why_null = v ? "undefined in every resample" : "out of memory"};
        out.lo = out.hi = none;
    } else {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        out.lo = (metric_value){.value = boot_percentile_sorted(v, n, 2.5), .defined = 1};
        out.hi = (metric_value){.value = boot_percentile_sorted(v, n, 97.5), .defined = 1};
    }
    out.n_used = n;
    free(v);
    return out;
}
