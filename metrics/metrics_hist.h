// Internal to the pixel metrics: the streaming histograms and the curves computed from them.
#ifndef HARNESS_METRICS_HIST_H
#define HARNESS_METRICS_HIST_H

#include "metrics/metrics.h"

// One score bin; one 32-byte record (two per cache line) because each pixel touches all of its fields.
typedef struct {
    uint64_t neg, pos; // normal / anomalous pixel counts
    double pro;        // sum over regions of (region pixels in the bin) / (region size)
    float first;       // the first score that fell in the bin
    uint32_t mixed;    // 1 when the bin holds more than one distinct score; else its pixels are exactly
                       // tied and binning loses nothing there
} hist_bin;

struct pixel_acc {
    double lo, hi, inv_width; // score range; regular bins per unit score
    int bins;
    hist_bin *bin;            // (bins)
    int64_t n_pos, n_neg, n_regions, n_images;
    float score_min, score_max;
    size_t cap;               // pixels the scratch buffers hold (grows to the largest image, not with count)
    int32_t *bin_of;          // (cap) bin of each pixel of the current image
    int32_t *labels, *parent; // (cap), (cap + 1) region labelling
    int64_t *sizes;           // (cap + 1) region sizes
    double *inv_size;         // (cap + 1) 1 / region size
};

// Bin 0 holds the score lo exactly, bin bins-1 the score hi exactly, and bins 1..bins-2 split (lo, hi)
// evenly. Saturated maps (softmax at 1.0f, clamping) then keep their ties at the ends out of the nearest
// values' bins, where they would make those bins mixed and the bounds loose.
static inline int32_t hist_bin_index(const struct pixel_acc *acc, double s) {
    if (s <= acc->lo) return 0;
    if (s >= acc->hi) return acc->bins - 1;
    int32_t b = 1 + (int32_t)((s - acc->lo) * acc->inv_width);
    return b > acc->bins - 2 ? acc->bins - 2 : b;
}

// MVTec AUPRO (integrated to fpr_limit, divided by it) and its bound; null when undefined.
metric_value aupro_from_hist(const struct pixel_acc *acc, double fpr_limit, double *err_bound);
// AnomalyCLIP's cal_pro_score: 200 thresholds from the smallest to the largest score added.
metric_value aupro_ac200_from_hist(const struct pixel_acc *acc, double fpr_limit);
// The same with each threshold rounded to float32 before `score > th`, as cal_pro_score on float32 maps.
metric_value aupro_ac200_f32_from_hist(const struct pixel_acc *acc, double fpr_limit);

#endif
