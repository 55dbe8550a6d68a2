// AUPRO from the streaming histograms: the MVTec AD definition and AnomalyCLIP's 200-threshold variant.
//
// PRO(t) = mean over all ground-truth regions (8-connected, of all images) of the fraction of the region's
// pixels scoring at or above t; FPR(t) = normal pixels at or above t / all normal pixels. Per bin the
// accumulator holds sum over regions of (region pixels in the bin) / (region size), so PRO at a bin edge is
// a suffix sum divided by the number of regions.
//
// MVTec (exact thresholds): the curve starts at (0, 0), runs through the points of every threshold, and is
// integrated by the trapezoid rule up to FPR 0.3, the last segment cut at 0.3 by linear interpolation
// (MVTec's trapezoid(x, y, x_max)), then divided by 0.3. Bin edges are exact thresholds, so the binned
// polyline passes through points of the exact one; inside a bin the exact polyline is monotone in both
// coordinates, so its area over a segment [x0, x1] lies in [(x1-x0) y0, (x1-x0) y1]. The trapezoid lies there
// too, hence |error| <= sum over segments of (x1-x0)(y1-y0)/2, and (L-x0)(y1-y0) for the segment cut at L;
// a bin of one distinct score is one exact point and adds nothing.
#include "metrics/metrics_hist.h"

#include <math.h>
#include <stdlib.h>

static metric_value defined(double v) { return (metric_value){.value = v, .defined = 1, .why_null = NULL}; }
static metric_value null_because(const char *why) { return (metric_value){.value = NAN, .defined = 0, .why_null = why}; }

metric_value aupro_of_view(const hist_view *v, double fpr_limit, double *err_bound) {
    *err_bound = 0;
    if (v->n_regions == 0) return null_because("no anomalous regions in the masks");
    if (v->n_neg == 0) return null_because("no normal pixels");
    const double N = (double)v->n_neg, R = (double)v->n_regions, L = fpr_limit;
    double x0 = 0, y0 = 0, area = 0, bound = 0, fp = 0, pro = 0;
    for (int b = v->n - 1; b >= 0; b--) {
        const hist_bin *h = &v->bin[b];
        if (!h->neg && !h->pos) continue;
        fp += (double)h->neg;
        pro += h->pro;
        double x1 = fmin(fp / N, 1.0), y1 = fmin(pro / R, 1.0); // MVTec clips both to 1
        int exact = !h->mixed;
        if (x1 <= L) {
            area += 0.5 * (x1 - x0) * (y0 + y1);
            if (!exact) bound += 0.5 * (x1 - x0) * (y1 - y0);
            x0 = x1;
            y0 = y1;
            if (x1 == L) break;
            continue;
        }
        double y_cut = y0 + (y1 - y0) * (L - x0) / (x1 - x0);
        area += 0.5 * (L - x0) * (y0 + y_cut);
        if (!exact) bound += (L - x0) * (y1 - y0);
        break;
    }
    *err_bound = bound / L;
    return defined(area / L);
}

// AnomalyCLIP metrics.py cal_pro_score (from cflow-ad): thresholds th = np.arange(min, max, (max-min)/200)
// over the class's maps; at each, a pixel is positive when its score > th; keep the thresholds with
// FPR < 0.3, rescale those FPRs min-max to [0, 1] and take sklearn.metrics.auc of PRO over them. It
// normalises by the largest FPR reached below 0.3, not by 0.3. The thresholds are computed in double from
// the float32 extremes. A threshold falls inside a bin: if the bin holds one distinct score, its pixels are
// above the threshold or not, exactly; otherwise its counts are split linearly at the threshold, so each
// PRO/FPR is off by at most that bin's share (no bound is reported for this variant).
// f32_compare: the thresholds rounded to float32 before the comparison, as cal_pro_score compares its float32
// maps with them (`amaps > th`: under numpy 1.x value-based casting a float64 scalar against a float32 array
// compares in float32); it differs from the float64 comparison only for scores equal to a rounded threshold.
metric_value aupro_ac200_of_view(const hist_view *v, double fpr_limit, int f32_compare) {
    if (v->n_regions == 0) return null_because("no anomalous regions in the masks");
    if (v->n_neg == 0) return null_because("no normal pixels");
    const double smin = v->score_min, smax = v->score_max;
    if (!(smax > smin)) return null_because("all scores are equal: no thresholds");
    const double delta = (smax - smin) / 200.0;
    const int K = (int)ceil((smax - smin) / delta); // numpy.arange's length
    double *fpr = malloc(K * sizeof *fpr), *pro = malloc(K * sizeof *pro);
    if (!fpr || !pro) { free(fpr); free(pro); return null_because("out of memory"); }
    // Thresholds ascend with k; walk the bins from the top once, keeping suffix sums above each threshold.
    const double N = (double)v->n_neg, R = (double)v->n_regions;
    static const hist_bin empty;
    int b = v->n - 1;
    double fp_above = 0, pro_above = 0; // over the view's bins above b
    for (int k = K - 1; k >= 0; k--) {
        double th = smin + k * delta;
        if (f32_compare) th = (double)(float)th;
        int tb = hist_bin_at(v->lo, v->hi, v->inv_width, v->bins, th);
        for (; b >= 0 && hist_view_index(v, b) > tb; b--) {
            fp_above += (double)v->bin[b].neg;
            pro_above += v->bin[b].pro;
        }
        double frac;
        const hist_bin *h = b >= 0 && hist_view_index(v, b) == tb ? &v->bin[b] : &empty; // left out: empty
        if (!h->mixed) frac = (double)h->first > th; // one score: above th or not (empty: no-op)
        else {
            frac = (v->lo + tb / v->inv_width - th) * v->inv_width; // share of regular bin tb above th
            frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
        }
        fpr[k] = (fp_above + frac * (double)h->neg) / N;
        pro[k] = (pro_above + frac * h->pro) / R;
    }
    double fmin_kept = INFINITY, fmax_kept = -INFINITY;
    int kept = 0;
    for (int k = 0; k < K; k++) {
        if (!(fpr[k] < fpr_limit)) continue;
        kept++;
        if (fpr[k] < fmin_kept) fmin_kept = fpr[k];
        if (fpr[k] > fmax_kept) fmax_kept = fpr[k];
    }
    metric_value result;
    if (kept < 2 || !(fmax_kept > fmin_kept)) {
        result = null_because("fewer than two distinct FPRs below the limit among the 200 thresholds");
    } else {
        // FPR falls as k rises (sklearn.auc's direction -1), so the area is minus the trapezoid sum in k.
        double area = 0, xp = 0, yp = 0;
        int first = 1;
        for (int k = 0; k < K; k++) {
            if (!(fpr[k] < fpr_limit)) continue;
            double x = (fpr[k] - fmin_kept) / (fmax_kept - fmin_kept), y = pro[k];
            if (!first) area += 0.5 * (xp - x) * (yp + y);
            xp = x;
            yp = y;
            first = 0;
        }
        result = defined(area);
    }
    free(fpr);
    free(pro);
    return result;
}
