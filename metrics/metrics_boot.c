// One class's bootstrap (metrics_boot.h): each resample's image metrics from weighted tie groups of the scores,
// and its pixel metrics from the images' runs (metrics_runs.c) summed, each times its draws, into the bins they
// touch; the curves are then those of the point estimate (pixel_metrics_of_view) on those bins, so a resample
// that draws every image once gives the point estimate, and one that draws image i k times gives what the
// accumulator gives with image i added k times. Per resample: O(images + entries of the drawn images + bins the
// class touches), no pass over the pixels.
#include "metrics/metrics_boot.h"
#include "metrics/metrics_hist.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- image level: tie groups of the scores, weighted -------------------------------------------------------

typedef struct {
    size_t n_groups;
    size_t *group;  // (n) tie group of each image, groups numbered from the highest score down
    double *w_pos, *w_neg; // (n) scratch: weighted counts per group
} score_groups;

typedef struct {
    double score;
    size_t item;
} scored_item;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored_item *)a)->score, y = ((const scored_item *)b)->score;
    return (x < y) - (x > y);
}

static int score_groups_init(score_groups *g, const double *scores, const uint8_t *labels, size_t n) {
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) return err_set("item %zu: score is NaN", i);
        if (labels[i] > 1) return err_set("item %zu: label %d is not 0 or 1", i, labels[i]);
    }
    scored_item *order = malloc((n ? n : 1) * sizeof *order);
    g->group = malloc((n ? n : 1) * sizeof *g->group);
    g->w_pos = malloc((n ? n : 1) * sizeof *g->w_pos);
    g->w_neg = malloc((n ? n : 1) * sizeof *g->w_neg);
    if (!order || !g->group || !g->w_pos || !g->w_neg) { free(order); return err_set("bootstrap: out of memory for %zu scores", n); }
    for (size_t i = 0; i < n; i++) order[i] = (scored_item){scores[i], i};
    qsort(order, n, sizeof *order, by_score_desc);
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && order[k].score != order[k - 1].score) g->n_groups++;
        g->group[order[k].item] = g->n_groups;
    }
    g->n_groups += n > 0;
    free(order);
    return 0;
}

static void score_groups_free(score_groups *g) {
    free(g->group);
    free(g->w_pos);
    free(g->w_neg);
}

// AUROC, AP, F1-max of the images weighted by counts (image_metrics_compute on the list with image i repeated
// counts[i] times); NaN when a label is missing.
static void image_resample(score_groups *g, const uint8_t *labels, const uint32_t *counts, size_t n, double out[3]) {
    memset(g->w_pos, 0, g->n_groups * sizeof *g->w_pos);
    memset(g->w_neg, 0, g->n_groups * sizeof *g->w_neg);
    double P = 0, N = 0;
    for (size_t i = 0; i < n; i++) {
        if (!counts[i]) continue;
        if (labels[i]) g->w_pos[g->group[i]] += counts[i], P += counts[i];
        else g->w_neg[g->group[i]] += counts[i], N += counts[i];
    }
    out[0] = out[1] = out[2] = NAN;
    if (P == 0 || N == 0) return;
    double tp = 0, fp = 0, auc = 0, ap = 0, f1_max = 0;
    for (size_t k = 0; k < g->n_groups; k++) {
        double pos = g->w_pos[k], neg = g->w_neg[k];
        if (!pos && !neg) continue;
        tp += pos;
        fp += neg;
        auc += pos * (N - fp + 0.5 * neg);
        if (pos) ap += pos * tp / (tp + fp);
        double f1 = 2.0 * tp / (tp + fp + P);
        if (f1 > f1_max) f1_max = f1;
    }
    out[0] = auc / (P * N);
    out[1] = ap / P;
    out[2] = f1_max;
}

// ---- pixel level: the images' runs summed into the bins the class touches ------------------------------------

typedef struct {
    int n_bins;        // non-empty bins of the class's histogram
    int32_t *index;    // (n_bins) their indices, ascending
    int32_t *slot;     // (acc->n_entries) each run entry's position among them
    hist_bin *sum;     // (n_bins) a resample's histogram
} pixel_bins;

static int pixel_bins_init(pixel_bins *pb, const pixel_acc *acc) {
    memset(pb, 0, sizeof *pb);
    for (int b = 0; b < acc->bins; b++) pb->n_bins += acc->bin[b].pos + acc->bin[b].neg > 0;
    size_t nb = pb->n_bins ? (size_t)pb->n_bins : 1;
    pb->index = malloc(nb * sizeof *pb->index);
    pb->sum = malloc(nb * sizeof *pb->sum);
    pb->slot = malloc((acc->n_entries ? acc->n_entries : 1) * sizeof *pb->slot);
    if (!pb->index || !pb->sum || !pb->slot)
        return err_set("bootstrap: out of memory for %d bins and %zu run entries", pb->n_bins, acc->n_entries);
    for (int b = 0, k = 0; b < acc->bins; b++)
        if (acc->bin[b].pos + acc->bin[b].neg > 0) pb->index[k++] = b;
    for (size_t e = 0; e < acc->n_entries; e++) { // binary search: the entry's bin is among the non-empty ones
        int32_t want = acc->runs[e].bin, lo = 0, hi = pb->n_bins - 1;
        while (lo < hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (pb->index[mid] < want) lo = mid + 1;
            else hi = mid;
        }
        pb->slot[e] = lo;
    }
    return 0;
}

static void pixel_bins_free(pixel_bins *pb) {
    free(pb->index);
    free(pb->slot);
    free(pb->sum);
}

static void pixel_resample(pixel_bins *pb, const boot_class *c, const uint32_t *counts, double *out) {
    const pixel_acc *acc = c->acc;
    memset(pb->sum, 0, (size_t)pb->n_bins * sizeof *pb->sum);
    hist_view v = {.bin = pb->sum, .index = pb->index, .n = pb->n_bins, .score_min = INFINITY,
                   .score_max = -INFINITY, .lo = acc->lo, .hi = acc->hi, .inv_width = acc->inv_width,
                   .bins = acc->bins};
    for (size_t i = 0; i < c->n; i++) {
        int64_t j = c->acc_image ? c->acc_image[i] : (int64_t)i;
        uint32_t w = counts[i];
        if (!w || j < 0) continue;
        const image_run *img = &acc->image[j];
        for (size_t e = img->off; e < img->off + (size_t)img->n; e++) {
            const run_entry *x = &acc->runs[e];
            hist_bin *h = &pb->sum[pb->slot[e]];
            if (h->pos + h->neg == 0) h->first = x->first;
            else if (h->first != x->first) h->mixed = 1;
            h->mixed |= x->mixed;
            h->neg += (uint64_t)w * x->neg;
            h->pos += (uint64_t)w * x->pos;
            h->pro += w * x->pro;
        }
        v.n_pos += (int64_t)w * img->n_pos;
        v.n_neg += (int64_t)w * img->n_neg;
        v.n_regions += (int64_t)w * img->n_regions;
        v.n_images += w;
        if (img->score_min < v.score_min) v.score_min = img->score_min;
        if (img->score_max > v.score_max) v.score_max = img->score_max;
    }
    pixel_metrics pm;
    pixel_metrics_of_view(&v, &pm);
    const metric_value m[6] = {pm.auroc, pm.ap, pm.f1_max, pm.aupro, pm.aupro_ac200, pm.aupro_ac200_f32};
    for (int k = 0; k < 6; k++) out[k] = m[k].defined ? m[k].value : NAN;
}

// ---- the class ---------------------------------------------------------------------------------------------------

int boot_class_resample(boot_samples *out, const boot_class *c, int n_resamples, uint64_t seed, int class_index) {
    if (boot_samples_init(out, n_resamples, seed)) return -1;
    const pixel_acc *acc = c->acc;
    if (acc && !acc->keep_images && acc->n_images > 0)
        return boot_samples_free(out), err_set("bootstrap: the pixel histograms did not keep their images' runs");
    for (size_t i = 0; acc && i < c->n; i++) {
        int64_t j = c->acc_image ? c->acc_image[i] : (int64_t)i;
        if (j >= acc->n_images) {
            boot_samples_free(out);
            return err_set("bootstrap: image %zu's pixels are image %lld of %lld added", i, (long long)j,
                           (long long)acc->n_images);
        }
    }
    score_groups g;
    pixel_bins pb = {0};
    uint32_t *counts = malloc((c->n ? c->n : 1) * sizeof *counts);
    int rc = score_groups_init(&g, c->scores, c->labels, c->n);
    if (rc == 0 && !counts) rc = err_set("bootstrap: out of memory for %zu images", c->n);
    if (rc == 0 && acc) rc = pixel_bins_init(&pb, acc);
    uint64_t state = boot_stream(seed, class_index);
    const int R = n_resamples;
    for (int r = 0; r < R && rc == 0; r++) {
        if ((rc = boot_draw(&state, c->labels, c->n, counts)) < 0) break;
        double im[3], px[6];
        image_resample(&g, c->labels, counts, c->n, im);
        out->v[(size_t)BOOT_IMAGE_AUROC * R + r] = im[0];
        out->v[(size_t)BOOT_IMAGE_AP * R + r] = im[1];
        out->v[(size_t)BOOT_IMAGE_F1_MAX * R + r] = im[2];
        if (!acc) continue;
        pixel_resample(&pb, c, counts, px);
        static const int slot[6] = {BOOT_PIXEL_AUROC, BOOT_PIXEL_AP, BOOT_PIXEL_F1_MAX, BOOT_PIXEL_AUPRO,
                                    BOOT_PIXEL_AUPRO_AC200, BOOT_PIXEL_AUPRO_AC200_F32};
        for (int k = 0; k < 6; k++) out->v[(size_t)slot[k] * R + r] = px[k];
    }
    score_groups_free(&g);
    pixel_bins_free(&pb);
    free(counts);
    if (rc) boot_samples_free(out);
    return rc;
}
