// Bootstrap intervals of every metric by resampling images (metrics_boot.c, metrics_boot_stats.c).
//
// A resample draws a class's images with replacement, stratified by image label: as many anomalous images as the
// class has, from its anomalous ones, and as many normal ones from its normal ones (so no resample loses a label).
// An image drawn k times counts k times in every metric: its score k times in the image metrics, its pixels and
// its ground-truth regions k times in the pixel metrics and AUPRO. The pixels of one image stay together (a
// cluster bootstrap): neighbouring pixels are far from independent, and pixels resampled one by one would give
// intervals far too narrow. A dataset reports the unweighted mean over its classes, so its resample r is the mean
// of its classes' resamples r, each class drawn from its own stream (the classes are strata too).
//
// The interval is the 2.5th and 97.5th percentiles of the resampled values (linear interpolation between order
// statistics, as numpy.percentile), over the resamples where the metric is defined.
//
// The draws depend only on (seed, class index, the class's labels in order), so runs that evaluate the same images
// with the same seed draw the same resamples (the tables pair them to give the interval of a mean over seeds), and
// tests/ref_metrics.py replays them: class c's generator state starts at splitmix64(seed + c * 0x9e3779b97f4a7c15)
// (common/rng.h rng_splitmix64 of that value: its first output); each draw takes the next splitmix64 output x and
// picks floor(x * m / 2^64) of m items; resample r takes the class's n_pos anomalous images (draws over them in
// class order), then its n_neg normal ones.
#ifndef HARNESS_METRICS_BOOT_H
#define HARNESS_METRICS_BOOT_H

#include "metrics/metrics.h"

enum {
    BOOT_IMAGE_AUROC, BOOT_IMAGE_AP, BOOT_IMAGE_F1_MAX,
    BOOT_PIXEL_AUROC, BOOT_PIXEL_AP, BOOT_PIXEL_F1_MAX, BOOT_PIXEL_AUPRO, BOOT_PIXEL_AUPRO_AC200,
    BOOT_PIXEL_AUPRO_AC200_F32,
    BOOT_N_METRICS
};
// "image.auroc", ..., "pixel.aupro", "pixel.aupro_ac200", "pixel.aupro_ac200_f32"
extern const char *const boot_metric_name[BOOT_N_METRICS];

// The resampled values: metric m of resample r at v[m * n_resamples + r]; NaN where the resample leaves it
// undefined (and for every resample of a metric not computed, e.g. pixel metrics without pixels).
typedef struct {
    int n_resamples;
    uint64_t seed;
    double *v;
} boot_samples;

int boot_samples_init(boot_samples *s, int n_resamples, uint64_t seed);
void boot_samples_free(boot_samples *s);

// One class's images.
typedef struct {
    const double *scores;     // (n) image scores
    const uint8_t *labels;    // (n) image labels 0/1: the strata
    size_t n;
    const pixel_acc *acc;     // the class's pixels, added with pixel_acc_keep_images on; NULL: image metrics only
    const int64_t *acc_image; // (n) image i's index among acc's images, -1 where it has no pixel ground truth;
                              // NULL: image i is acc's image i
} boot_class;

// n_resamples (>= 1) resamples of class number class_index (its stream). out is initialised here (free it).
// -1 with err_set (bad labels or scores, a NaN score, acc_image out of range, out of memory).
int boot_class_resample(boot_samples *out, const boot_class *c, int n_resamples, uint64_t seed, int class_index);

// The draws of the class's next resample (see above): counts (n) the times each image is drawn.
uint64_t boot_stream(uint64_t seed, int class_index);
int boot_draw(uint64_t *state, const uint8_t *labels, size_t n, uint32_t *counts); // -1: out of memory
// floor(x * m / 2^64) of the next splitmix64 output x: uniform in [0, m) (bias below m / 2^64).
size_t boot_uniform_below(uint64_t *state, size_t m);

// The unweighted mean over classes, resample by resample. A class counts for a metric when some resample defines
// it; resample r of the mean is undefined (NaN) where a counted class leaves it undefined.
typedef struct {
    int n_resamples;
    uint64_t seed;
    double *sum;   // (BOOT_N_METRICS, n_resamples)
    int *n;        // (BOOT_N_METRICS, n_resamples) counted classes defined at r
    int n_classes[BOOT_N_METRICS];
} boot_mean;

int boot_mean_init(boot_mean *m, int n_resamples, uint64_t seed);
void boot_mean_add(boot_mean *m, const boot_samples *cls);
int boot_mean_samples(const boot_mean *m, boot_samples *out);
void boot_mean_free(boot_mean *m);

// The 95% percentile interval of metric m; null (with the reason) when no resample defines it.
typedef struct {
    metric_value lo, hi;
    int n_used; // resamples that define the metric
} boot_interval;

boot_interval boot_interval_of(const boot_samples *s, int metric);
// numpy.percentile's default (linear) on sorted v (n >= 1), q in [0, 100].
double boot_percentile_sorted(const double *v, int n, double q);

// JSON (metrics_json.c). "ci": {"image.auroc": [lo, hi], ...} for each metric some resample defines; aupro_as:
// the BOOT_PIXEL_AUPRO* variant written as "pixel.aupro" (the others left out), or -1: each under its own name.
struct cJSON *boot_ci_json(const boot_samples *s, int aupro_as);
// "bootstrap": {"resamples", "seed", "resampled", "interval"[, "undefined_resamples": {name: count}]}
struct cJSON *boot_info_json(const boot_samples *s, int aupro_as);

#endif
