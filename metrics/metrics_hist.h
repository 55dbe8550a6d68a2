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

// One image's pixels by bin, as pixel_acc_keep_images records them: the image's own histogram, its empty bins
// left out, in ascending bin order.
typedef struct {
    int32_t bin;       // index in the accumulator's histogram
    uint32_t neg, pos; // the image's normal / anomalous pixels in the bin
    float first;       // the first of its scores in the bin
    uint32_t mixed;    // 1 when its pixels in the bin hold more than one distinct score
    double pro;        // sum over the image's regions of (region pixels in the bin) / (region size)
} run_entry;

// An image's run: entries [off, off + n) of pixel_acc.runs, and the image's totals.
typedef struct {
    size_t off;
    int32_t n;
    int32_t n_regions;
    int64_t n_pos, n_neg;
    float score_min, score_max;
} image_run;

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
    // pixel_acc_keep_images: every image's run (for the bootstrap over images), else NULL / 0
    int keep_images;
    image_run *image;         // (n_images)
    run_entry *runs;          // (n_entries)
    size_t n_entries, cap_entries, cap_images;
    uint64_t *order;          // (cap_order) scratch: (bin << 32 | pixel) keys of the current image, sorted
    size_t cap_order;
};

// Bin 0 holds the score lo exactly, bin bins-1 the score hi exactly, and bins 1..bins-2 split (lo, hi)
// evenly. Saturated maps (softmax at 1.0f, clamping) then keep their ties at the ends out of the nearest
// values' bins, where they would make those bins mixed and the bounds loose.
static inline int32_t hist_bin_at(double lo, double hi, double inv_width, int bins, double s) {
    if (s <= lo) return 0;
    if (s >= hi) return bins - 1;
    int32_t b = 1 + (int32_t)((s - lo) * inv_width);
    return b > bins - 2 ? bins - 2 : b;
}

static inline int32_t hist_bin_index(const struct pixel_acc *acc, double s) {
    return hist_bin_at(acc->lo, acc->hi, acc->inv_width, acc->bins, s);
}

// The histograms as the curves read them: bins in ascending score order, of which the curves skip the empty
// ones. A whole accumulator (hist_view_of), or only some bins of its histogram with their indices (a bootstrap
// resample: the bins its images touch), give the same curves when the left-out bins are empty.
typedef struct {
    const hist_bin *bin;  // (n)
    const int32_t *index; // (n) bin[k]'s index in the full histogram, ascending; NULL: k itself
    int n;
    int64_t n_pos, n_neg, n_regions, n_images;
    float score_min, score_max;
    double lo, hi, inv_width; // the full histogram's geometry (thresholds -> bins)
    int bins;
} hist_view;

hist_view hist_view_of(const struct pixel_acc *acc);
static inline int32_t hist_view_index(const hist_view *v, int k) { return v->index ? v->index[k] : k; }

// Every pixel metric of a view (pixel_acc_compute is this on hist_view_of).
int pixel_metrics_of_view(const hist_view *v, pixel_metrics *out);
// MVTec AUPRO (integrated to fpr_limit, divided by it) and its bound; null when undefined.
metric_value aupro_of_view(const hist_view *v, double fpr_limit, double *err_bound);
// AnomalyCLIP's cal_pro_score: 200 thresholds from the smallest to the largest score added; f32_compare: each
// threshold rounded to float32 before `score > th`, as cal_pro_score on float32 maps.
metric_value aupro_ac200_of_view(const hist_view *v, double fpr_limit, int f32_compare);

// The runs (metrics_runs.c). record: the image being added, binned (acc->bin_of) and labelled (acc->labels,
// acc->inv_size), before the histograms take it; -1 with err_set (out of memory) and nothing recorded.
int pixel_acc_record_run(struct pixel_acc *acc, const float *map, size_t npix, int n_regions, float smin, float smax);
void pixel_acc_runs_reset(struct pixel_acc *acc);
void pixel_acc_runs_free(struct pixel_acc *acc);
// dst's runs followed by src's (dst keeps images when either does: src's runs are needed then)
int pixel_acc_runs_append(struct pixel_acc *dst, const struct pixel_acc *src);

#endif
