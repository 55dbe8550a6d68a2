// Evaluation metrics: one implementation behind every number in a table (design §8).
// The metrics know nothing of dataset layouts: they take scores and labels, or (map, mask) pairs.
//
// Image level (exact, in double): AUROC with ties counted one half (Mann-Whitney; equals scikit-learn's
// roc_auc_score), AP as scikit-learn's average_precision_score (step-wise sum over distinct thresholds,
// ties grouped), F1-max as the ZSAD repos compute it (precision_recall_curve, F1 = 2PR/(P+R), the max over
// thresholds; equivalently max over distinct score thresholds t of 2 TP(t) / (TP(t) + FP(t) + n_pos)), and a
// seeded percentile bootstrap interval for AUROC (of scores alone; metrics_boot.h resamples images for intervals of
// every image and pixel metric).
//
// Pixel level (streaming): a pixel_acc takes one (map, mask) pair at a time into fixed histograms over a
// declared score range [lo, hi] (equal-width bins, plus one for each end value), so memory does not grow with the number of
// images. Every bin edge is a threshold of the exact curves, so the binned curves are the exact ones with
// the pixels of a bin tied; pixel_acc_compute reports, with each value, a computed bound on how far it can be
// from the exact (sorted, unbinned) value. AUPRO follows MVTec AD (8-connected ground-truth regions, PRO
// averaged over all regions of all images, FPR over all normal pixels, integrated to FPR 0.3 with linear
// interpolation at 0.3, divided by 0.3); aupro_ac200 is AnomalyCLIP's cal_pro_score (200 thresholds, FPR <
// 0.3 kept and min-max rescaled, trapezoid).
#ifndef HARNESS_METRICS_H
#define HARNESS_METRICS_H

#include <stddef.h>
#include <stdint.h>

// A metric that may be undefined (one label only, no regions): JSON null with a reason, never a number.
typedef struct {
    double value;         // meaningful only when defined
    int defined;          // 0: null
    const char *why_null; // static text when !defined
} metric_value;

// ---- image level ---------------------------------------------------------------------------------

typedef struct {
    metric_value auroc, ap, f1_max;
    int64_t n_pos, n_neg;
} image_metrics;

// scores (n), labels (n) with values 0 or 1. Fails (err_set) on a NaN score or a label not 0/1, naming the
// item by its 0-based index.
int image_metrics_compute(image_metrics *out, const double *scores, const uint8_t *labels, size_t n);

// Seeded 95% percentile bootstrap interval of image AUROC: n_resamples resamples with replacement; the
// interval is the 2.5th and 97.5th percentiles of the resampled AUROCs (linear interpolation between order
// statistics, as numpy.percentile). Stratified: positives and negatives are resampled separately, keeping
// n_pos and n_neg (so no resample has one class). Not stratified: n items from all; resamples with one class
// only are skipped and counted.
typedef struct {
    metric_value lo, hi;
    int n_resamples, n_skipped, stratified;
    uint64_t seed;
} auroc_interval;

int image_auroc_bootstrap(auroc_interval *out, const double *scores, const uint8_t *labels, size_t n,
                          int n_resamples, uint64_t seed, int stratified);

// ---- pixel level (streaming) ------------------------------------------------------------------------

#define PIXEL_BINS_DEFAULT (1 << 20)
#define AUPRO_FPR_LIMIT 0.3

typedef struct pixel_acc pixel_acc;

// Histograms over [lo, hi] (lo < hi) with `bins` bins (3..2^26): one for lo exactly, one for hi exactly,
// bins-2 of equal width between. A score outside [lo, hi] is an error. Memory: 32 bytes per bin.
pixel_acc *pixel_acc_create(double lo, double hi, int bins);
void pixel_acc_free(pixel_acc *acc);
// Empties the histograms (keeps range, bins and scratch buffers).
void pixel_acc_reset(pixel_acc *acc);
// Adds one image: map (map_h, map_w) float scores, mask (mask_h, mask_w), nonzero = anomalous pixel.
// `item` names the image in errors (size mismatch, NaN, out-of-range score). On error nothing is added.
int pixel_acc_add(pixel_acc *acc, const char *item, const float *map, int map_h, int map_w,
                  const uint8_t *mask, int mask_h, int mask_w);
// dst += src (same range and bins), for accumulating in parallel; src's per-image runs follow dst's.
int pixel_acc_merge(pixel_acc *dst, const pixel_acc *src);
// From now on also keep each image's pixels by bin (a run), for the bootstrap over images (metrics_boot.h). Costs a
// sort of each map's pixels and 32 bytes per (image, non-empty bin of that image), growing with the images;
// pixel_acc_reset forgets the runs with the histograms.
void pixel_acc_keep_images(pixel_acc *acc);

typedef struct {
    metric_value auroc, ap, f1_max, aupro, aupro_ac200;
    metric_value aupro_ac200_f32; // aupro_ac200 with float32 threshold comparisons (cal_pro_score on float32 maps)
    int64_t n_pos, n_neg, n_regions, n_images;
    float score_min, score_max; // over all pixels added
    double lo, hi;
    int bins;
    // |binned - exact| is at most these (computed from the histograms; see metrics_pixel.c).
    double auroc_err_bound, ap_err_bound, f1_max_err_bound, aupro_err_bound;
} pixel_metrics;

int pixel_acc_compute(const pixel_acc *acc, pixel_metrics *out);

// ---- 8-connected regions (union-find) --------------------------------------------------------------

// labels (h, w): 0 for background (mask 0), 1..n for the 8-connected regions of nonzero mask pixels, in
// raster order of their first pixel. sizes (n + 1): pixel count per label (sizes[0] = background).
// parent (h*w + 1) int32 scratch. Returns n.
int regions_label8(const uint8_t *mask, int h, int w, int32_t *labels, int32_t *parent, int64_t *sizes);

// ---- mean over classes ------------------------------------------------------------------------------

// Unweighted mean over the classes where a metric is defined; null if it is defined in none.
typedef struct {
    double sum;
    int n_defined, n_total;
} metric_mean;

void metric_mean_add(metric_mean *m, metric_value v);
metric_value metric_mean_value(const metric_mean *m);

typedef struct {
    metric_mean auroc, ap, f1_max;
    int64_t n_pos, n_neg;
} image_metrics_mean;

typedef struct {
    metric_mean auroc, ap, f1_max, aupro, aupro_ac200, aupro_ac200_f32;
    int64_t n_pos, n_neg, n_regions, n_images;
} pixel_metrics_mean;

void image_metrics_mean_add(image_metrics_mean *m, const image_metrics *x);
void pixel_metrics_mean_add(pixel_metrics_mean *m, const pixel_metrics *x);

// ---- JSON (cJSON) -----------------------------------------------------------------------------------

struct cJSON;
// {"auroc": x|null, "ap": .., "f1_max": .., "n_pos": n, "n_neg": n[, "null_reasons": {...}]}
struct cJSON *image_metrics_json(const image_metrics *m);
// Adds "auroc_ci95": [lo, hi] | null and "bootstrap": {...} to an image metrics object.
void auroc_interval_json(struct cJSON *obj, const auroc_interval *ci);
struct cJSON *pixel_metrics_json(const pixel_metrics *m);
struct cJSON *image_metrics_mean_json(const image_metrics_mean *m);
struct cJSON *pixel_metrics_mean_json(const pixel_metrics_mean *m);

#endif
