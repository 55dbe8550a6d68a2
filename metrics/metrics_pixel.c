// Streaming pixel-level metrics: fixed histograms of scores for normal and anomalous pixels (and the
// per-region overlap mass for AUPRO), fed one (map, mask) pair at a time.
//
// Why binning is safe, and how wrong it can be. Bins are monotone in the score, so every bin edge is a
// threshold of the exact curves (the pixels at or above the edge are those at or above the lowest score
// above it). The binned curves are therefore the exact curves with each bin's pixels tied; only what
// happens inside a bin is lost. With tp/fp counted from the top down to bin b inclusive, tp'/fp' before b,
// pos_b/neg_b the bin's counts and P/N the totals, the exact value differs from the binned one by at most:
//   AUROC:  0.5 * sum_b pos_b * neg_b / (P N)         (pairs inside a bin count 1/2 instead of 0 or 1)
//   AP:     sum_b (pos_b / P) * (tp/(tp+fp') - (tp'+1)/(tp'+1+fp))
//           (the exact precisions inside bin b lie between these two)
//   F1-max: max_b 2 tp / (tp + fp' + P) - binned F1-max (F1 rises with tp and falls with fp)
//   AUPRO:  see metrics_pro.c.
// A bin whose pixels all have one score (tracked per bin) is an exact tie and contributes nothing to the
// bounds, so quantised scores are scored exactly. The bounds are computed from the histograms and reported.
// For scores with a continuous distribution the AUROC bound is about 0.5 * bin width * integral f_pos f_neg:
// 5e-6 for 2^20 bins over [0, 1] and densities of order 10 per unit score.
#include "metrics/metrics_hist.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pixel_acc *pixel_acc_create(double lo, double hi, int bins) {
    if (!(lo < hi) || !isfinite(lo) || !isfinite(hi)) {
        err_set("pixel metrics: score range [%g, %g] is empty or not finite", lo, hi);
        return NULL;
    }
    if (bins < 3 || bins > (1 << 26)) {
        err_set("pixel metrics: bins must be in 3..%d (got %d)", 1 << 26, bins);
        return NULL;
    }
    pixel_acc *acc = calloc(1, sizeof *acc);
    if (!acc) { err_set("pixel metrics: out of memory"); return NULL; }
    acc->lo = lo;
    acc->hi = hi;
    acc->bins = bins;
    acc->inv_width = (bins - 2) / (hi - lo);
    acc->bin = aligned_alloc(64, ((size_t)bins * sizeof *acc->bin + 63) / 64 * 64);
    if (!acc->bin) {
        pixel_acc_free(acc);
        err_set("pixel metrics: out of memory for %d bins", bins);
        return NULL;
    }
    pixel_acc_reset(acc);
    return acc;
}

void pixel_acc_free(pixel_acc *acc) {
    if (!acc) return;
    free(acc->bin);
    free(acc->bin_of); free(acc->labels); free(acc->parent); free(acc->sizes); free(acc->inv_size);
    pixel_acc_runs_free(acc);
    free(acc);
}

void pixel_acc_reset(pixel_acc *acc) {
    memset(acc->bin, 0, (size_t)acc->bins * sizeof *acc->bin);
    acc->n_pos = acc->n_neg = acc->n_regions = acc->n_images = 0;
    acc->score_min = INFINITY;
    acc->score_max = -INFINITY;
    pixel_acc_runs_reset(acc);
}

static int grow_scratch(pixel_acc *acc, size_t npix) {
    if (npix <= acc->cap) return 0;
    free(acc->bin_of); free(acc->labels); free(acc->parent); free(acc->sizes); free(acc->inv_size);
    acc->bin_of = malloc(npix * sizeof *acc->bin_of);
    acc->labels = malloc(npix * sizeof *acc->labels);
    acc->parent = malloc((npix + 1) * sizeof *acc->parent);
    acc->sizes = malloc((npix + 1) * sizeof *acc->sizes);
    acc->inv_size = malloc((npix + 1) * sizeof *acc->inv_size);
    if (!acc->bin_of || !acc->labels || !acc->parent || !acc->sizes || !acc->inv_size) {
        acc->cap = 0;
        return err_set("pixel metrics: out of memory for a %zu-pixel map", npix);
    }
    acc->cap = npix;
    return 0;
}

int pixel_acc_add(pixel_acc *acc, const char *item, const float *map, int map_h, int map_w,
                  const uint8_t *mask, int mask_h, int mask_w) {
    if (map_h != mask_h || map_w != mask_w)
        return err_set("%s: anomaly map is %dx%d but its mask is %dx%d (HxW)", item, map_h, map_w, mask_h, mask_w);
    if (map_h < 1 || map_w < 1) return err_set("%s: empty anomaly map (%dx%d)", item, map_h, map_w);
    size_t npix = (size_t)map_h * map_w;
    if (grow_scratch(acc, npix)) return err_wrap("%s: ", item);

    // Bin every pixel, checking NaN and range. Serial on purpose: an OpenMP split of this pass was measured
    // (perf, 518x518 maps) to lose more to the idle team spinning through the serial scatter below than it
    // saved. To use several cores, give each thread its own accumulator over a share of the images and
    // pixel_acc_merge them.
    const double lo = acc->lo, hi = acc->hi;
    int32_t *bin_of = acc->bin_of;
    int64_t n_bad = 0;
    float smin = INFINITY, smax = -INFINITY;
    for (size_t i = 0; i < npix; i++) {
        float s = map[i];
        if (!(s >= lo && s <= hi)) { n_bad++; bin_of[i] = 0; continue; } // NaN fails both comparisons
        if (s < smin) smin = s;
        if (s > smax) smax = s;
        bin_of[i] = hist_bin_index(acc, s);
    }
    if (n_bad) {
        for (size_t i = 0; i < npix; i++) {
            float s = map[i];
            if (isnan(s)) return err_set("%s: score at (y=%zu, x=%zu) is NaN", item, i / map_w, i % map_w);
            if (!(s >= lo && s <= hi))
                return err_set("%s: score %g at (y=%zu, x=%zu) is outside the declared range [%g, %g]", item,
                               (double)s, i / map_w, i % map_w, lo, hi);
        }
    }

    int n_regions = regions_label8(mask, map_h, map_w, acc->labels, acc->parent, acc->sizes);
    for (int r = 1; r <= n_regions; r++) acc->inv_size[r] = 1.0 / (double)acc->sizes[r];
    if (acc->keep_images && pixel_acc_record_run(acc, map, npix, n_regions, smin, smax)) return err_wrap("%s: ", item);
    const int32_t *labels = acc->labels;
    const double *inv_size = acc->inv_size;
    hist_bin *bins = acc->bin;
    for (size_t i = 0; i < npix; i++) {
        hist_bin *h = &bins[bin_of[i]];
        int32_t lab = labels[i];
        if (h->pos + h->neg == 0) h->first = map[i];
        else if (h->first != map[i]) h->mixed = 1;
        if (!lab) {
            h->neg++;
        } else {
            h->pos++;
            h->pro += inv_size[lab];
        }
    }
    acc->n_pos += (int64_t)npix - acc->sizes[0];
    acc->n_neg += acc->sizes[0];
    acc->n_regions += n_regions;
    acc->n_images++;
    if (smin < acc->score_min) acc->score_min = smin;
    if (smax > acc->score_max) acc->score_max = smax;
    return 0;
}

int pixel_acc_merge(pixel_acc *dst, const pixel_acc *src) {
    if (dst->bins != src->bins || dst->lo != src->lo || dst->hi != src->hi)
        return err_set("pixel metrics: cannot merge histograms of different ranges or bin counts");
    if (pixel_acc_runs_append(dst, src)) return -1;
    for (int b = 0; b < dst->bins; b++) {
        hist_bin *d = &dst->bin[b];
        const hist_bin *s = &src->bin[b];
        int dst_empty = d->neg + d->pos == 0, src_empty = s->neg + s->pos == 0;
        if (dst_empty) d->first = s->first;
        d->mixed |= s->mixed | (!dst_empty && !src_empty && d->first != s->first);
        d->neg += s->neg;
        d->pos += s->pos;
        d->pro += s->pro;
    }
    dst->n_pos += src->n_pos;
    dst->n_neg += src->n_neg;
    dst->n_regions += src->n_regions;
    dst->n_images += src->n_images;
    if (src->score_min < dst->score_min) dst->score_min = src->score_min;
    if (src->score_max > dst->score_max) dst->score_max = src->score_max;
    return 0;
}

static metric_value defined(double v) { return (metric_value){.value = v, .defined = 1, .why_null = NULL}; }
static metric_value null_because(const char *why) { return (metric_value){.value = NAN, .defined = 0, .why_null = why}; }

hist_view hist_view_of(const pixel_acc *acc) {
    return (hist_view){.bin = acc->bin, .index = NULL, .n = acc->bins, .n_pos = acc->n_pos, .n_neg = acc->n_neg,
                       .n_regions = acc->n_regions, .n_images = acc->n_images, .score_min = acc->score_min,
                       .score_max = acc->score_max, .lo = acc->lo, .hi = acc->hi, .inv_width = acc->inv_width,
                       .bins = acc->bins};
}

int pixel_acc_compute(const pixel_acc *acc, pixel_metrics *out) {
    hist_view v = hist_view_of(acc);
    return pixel_metrics_of_view(&v, out);
}

int pixel_metrics_of_view(const hist_view *v, pixel_metrics *out) {
    memset(out, 0, sizeof *out);
    out->n_pos = v->n_pos;
    out->n_neg = v->n_neg;
    out->n_regions = v->n_regions;
    out->n_images = v->n_images;
    out->score_min = v->score_min;
    out->score_max = v->score_max;
    out->lo = v->lo;
    out->hi = v->hi;
    out->bins = v->bins;
    const int64_t P = v->n_pos, N = v->n_neg;
    if (P == 0 || N == 0) {
        const char *why = v->n_images == 0 ? "no images"
                          : P == 0         ? "only one label: no anomalous pixels in the masks"
                                           : "only one label: no normal pixels";
        out->auroc = out->ap = out->f1_max = null_because(why);
    } else {
        long double auc = 0, tied = 0, ap = 0, ap_bound = 0;
        double f1_max = 0, f1_upper = 0;
        int64_t tp = 0, fp = 0;
        for (int b = v->n - 1; b >= 0; b--) {
            int64_t pb = (int64_t)v->bin[b].pos, nb = (int64_t)v->bin[b].neg;
            if (!pb && !nb) continue;
            int64_t tp0 = tp, fp0 = fp;
            tp += pb;
            fp += nb;
            auc += (long double)pb * ((long double)(N - fp) + 0.5L * nb);
            int exact = !v->bin[b].mixed;
            if (!exact) tied += (long double)pb * nb;
            if (pb) {
                ap += (long double)pb * tp / (tp + fp);
                if (!exact) {
                    long double hi_prec = (long double)tp / (tp + fp0), lo_prec = (long double)(tp0 + 1) / (tp0 + 1 + fp);
                    ap_bound += (long double)pb * (hi_prec - lo_prec);
                }
                double up = exact ? 2.0 * tp / (double)(tp + fp + P) : 2.0 * tp / (double)(tp + fp0 + P);
                if (up > f1_upper) f1_upper = up;
            }
            double f1 = 2.0 * tp / (double)(tp + fp + P);
            if (f1 > f1_max) f1_max = f1;
        }
        long double pn = (long double)P * N;
        out->auroc = defined((double)(auc / pn));
        out->ap = defined((double)(ap / P));
        out->f1_max = defined(f1_max);
        out->auroc_err_bound = (double)(0.5L * tied / pn);
        out->ap_err_bound = (double)(ap_bound / P);
        out->f1_max_err_bound = f1_upper > f1_max ? f1_upper - f1_max : 0;
    }
    out->aupro = aupro_of_view(v, AUPRO_FPR_LIMIT, &out->aupro_err_bound);
    out->aupro_ac200 = aupro_ac200_of_view(v, AUPRO_FPR_LIMIT, 0);
    out->aupro_ac200_f32 = aupro_ac200_of_view(v, AUPRO_FPR_LIMIT, 1);
    return 0;
}
