// Image-level AUROC, AP and F1-max, exact with ties, and the bootstrap interval of AUROC.
//
// All three walk the distinct score thresholds from the highest down. With tie groups g (equal scores) in
// that order, tp/fp the positives/negatives at or above the group and P/N the totals:
//   AUROC  = sum_g pos_g * (N - fp_g + neg_g / 2) / (P N)   (Mann-Whitney, ties count 1/2; = trapezoidal ROC)
//   AP     = sum_g (pos_g / P) * tp_g / (tp_g + fp_g)      (scikit-learn: sum of dRecall * Precision)
//   F1-max = max_g 2 tp_g / (tp_g + fp_g + P)              (= 2PR/(P+R) at that threshold)
#include "metrics/metrics.h"
#include "metrics/metrics_boot.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static metric_value defined(double v) { return (metric_value){.value = v, .defined = 1, .why_null = NULL}; }
static metric_value null_because(const char *why) { return (metric_value){.value = NAN, .defined = 0, .why_null = why}; }

typedef struct {
    double score;
    uint8_t label;
} scored_item;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored_item *)a)->score, y = ((const scored_item *)b)->score;
    return (x < y) - (x > y);
}

// Checks the inputs and sorts them by score, highest first; NULL on error (err_set names the item).
static scored_item *sorted_items(const double *scores, const uint8_t *labels, size_t n, int64_t *n_pos) {
    scored_item *items = malloc((n ? n : 1) * sizeof *items);
    if (!items) { err_set("out of memory for %zu scores", n); return NULL; }
    int64_t p = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) { free(items); err_set("item %zu: score is NaN", i); return NULL; }
        if (labels[i] > 1) { free(items); err_set("item %zu: label %d is not 0 or 1", i, labels[i]); return NULL; }
        items[i] = (scored_item){scores[i], labels[i]};
        p += labels[i];
    }
    qsort(items, n, sizeof *items, by_score_desc);
    *n_pos = p;
    return items;
}

int image_metrics_compute(image_metrics *out, const double *scores, const uint8_t *labels, size_t n) {
    int64_t P = 0;
    scored_item *items = sorted_items(scores, labels, n, &P);
    if (!items) return -1;
    int64_t N = (int64_t)n - P;
    out->n_pos = P;
    out->n_neg = N;
    if (P == 0 || N == 0) {
        const char *why = n == 0 ? "no items" : P == 0 ? "only one label: no positive (anomalous) items"
                                                       : "only one label: no negative (normal) items";
        out->auroc = out->ap = out->f1_max = null_because(why);
        free(items);
        return 0;
    }
    long double auc = 0, ap = 0;
    double f1_max = 0;
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t pos = 0, neg = 0;
        while (j < n && items[j].score == items[i].score) { pos += items[j].label; neg += !items[j].label; j++; }
        tp += pos;
        fp += neg;
        auc += (long double)pos * ((long double)(N - fp) + 0.5L * neg);
        if (pos) ap += (long double)pos * tp / (tp + fp);
        double f1 = 2.0 * tp / (double)(tp + fp + P);
        if (f1 > f1_max) f1_max = f1;
        i = j;
    }
    out->auroc = defined((double)(auc / ((long double)P * N)));
    out->ap = defined((double)(ap / P));
    out->f1_max = defined(f1_max);
    free(items);
    return 0;
}

// ---- bootstrap ---------------------------------------------------------------------------------------

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Draws from splitmix64 (boot_uniform_below, metrics_boot.h): the interval depends only on (data, seed,
// n_resamples).
int image_auroc_bootstrap(auroc_interval *out, const double *scores, const uint8_t *labels, size_t n,
                          int n_resamples, uint64_t seed, int stratified) {
    memset(out, 0, sizeof *out);
    out->n_resamples = n_resamples;
    out->seed = seed;
    out->stratified = stratified;
    if (n_resamples < 1) return err_set("bootstrap: the number of resamples must be at least 1 (got %d)", n_resamples);
    int64_t P = 0;
    scored_item *items = sorted_items(scores, labels, n, &P);
    if (!items) return -1;
    int64_t N = (int64_t)n - P;
    if (P == 0 || N == 0) {
        out->lo = out->hi = null_because(n == 0 ? "no items" : "only one label");
        free(items);
        return 0;
    }
    // Tie groups of the sorted items; a resample is a count per item, reduced to counts per group, and
    // its AUROC is the Mann-Whitney sum over groups: O(n) per resample after one sort.
    size_t *group = malloc(n * sizeof *group);          // (n) group of each sorted item
    size_t *pos_idx = malloc((size_t)P * sizeof *pos_idx); // (P) sorted index of each positive
    size_t *neg_idx = malloc((size_t)N * sizeof *neg_idx); // (N)
    double *wpos = calloc(n, sizeof *wpos), *wneg = calloc(n, sizeof *wneg); // (n_groups <= n)
    double *aucs = malloc((size_t)n_resamples * sizeof *aucs);
    if (!group || !pos_idx || !neg_idx || !wpos || !wneg || !aucs) {
        free(items); free(group); free(pos_idx); free(neg_idx); free(wpos); free(wneg); free(aucs);
        return err_set("bootstrap: out of memory for %zu items", n);
    }
    size_t n_groups = 0;
    int64_t ip = 0, in = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && items[i].score != items[i - 1].score) n_groups++;
        group[i] = n_groups;
        if (items[i].label) pos_idx[ip++] = i; else neg_idx[in++] = i;
    }
    n_groups++;
    uint64_t state = seed;
    int kept = 0;
    for (int r = 0; r < n_resamples; r++) {
        memset(wpos, 0, n_groups * sizeof *wpos);
        memset(wneg, 0, n_groups * sizeof *wneg);
        double p = 0, q = 0;
        if (stratified) {
            for (int64_t k = 0; k < P; k++) wpos[group[pos_idx[boot_uniform_below(&state, (size_t)P)]]] += 1;
            for (int64_t k = 0; k < N; k++) wneg[group[neg_idx[boot_uniform_below(&state, (size_t)N)]]] += 1;
            p = (double)P;
            q = (double)N;
        } else {
            for (size_t k = 0; k < n; k++) {
                size_t i = boot_uniform_below(&state, n);
                if (items[i].label) { wpos[group[i]] += 1; p += 1; } else { wneg[group[i]] += 1; q += 1; }
            }
            if (p == 0 || q == 0) { out->n_skipped++; continue; }
        }
        double fp = 0, auc = 0;
        for (size_t g = 0; g < n_groups; g++) {
            fp += wneg[g];
            auc += wpos[g] * (q - fp + 0.5 * wneg[g]);
        }
        aucs[kept++] = auc / (p * q);
    }
    if (kept == 0) {
        out->lo = out->hi = null_because("every resample had one class only");
    } else {
        qsort(aucs, kept, sizeof *aucs, cmp_double);
        out->lo = defined(boot_percentile_sorted(aucs, kept, 2.5));
        out->hi = defined(boot_percentile_sorted(aucs, kept, 97.5));
    }
    free(items); free(group); free(pos_idx); free(neg_idx); free(wpos); free(wneg); free(aucs);
    return 0;
}
