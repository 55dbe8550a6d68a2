// Per-image runs of the pixel histograms, for the bootstrap over images (metrics_boot.c): each image's pixels
// grouped by histogram bin, so that a resample's histograms are the sum of its images' runs, each times the
// number of draws, and never a pass over the pixels again.
//
// Memory: one 32-byte entry per (image, non-empty bin of that image): at most min(pixels per image, bins) per
// image, growing with the number of images (unlike the histograms). With 2^20 bins over [0, 1] nearly every
// pixel of a smooth map has a bin of its own; a smaller eval.pixel_bins bounds the entries per image.
#include "metrics/metrics_hist.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void pixel_acc_keep_images(pixel_acc *acc) { acc->keep_images = 1; }

void pixel_acc_runs_reset(pixel_acc *acc) { acc->n_entries = 0; }

void pixel_acc_runs_free(pixel_acc *acc) {
    free(acc->image);
    free(acc->runs);
    free(acc->order);
    acc->image = NULL;
    acc->runs = NULL;
    acc->order = NULL;
    acc->cap_images = acc->cap_entries = acc->cap_order = acc->n_entries = 0;
}

// Room for one more image and n_more entries.
static int reserve(pixel_acc *acc, size_t n_more) {
    if ((size_t)acc->n_images + 1 > acc->cap_images) {
        size_t cap = acc->cap_images ? 2 * acc->cap_images : 64;
        image_run *p = realloc(acc->image, cap * sizeof *p);
        if (!p) return err_set("pixel metrics: out of memory for the runs of %zu images", cap);
        acc->image = p;
        acc->cap_images = cap;
    }
    if (acc->n_entries + n_more > acc->cap_entries) {
        size_t cap = acc->cap_entries ? 2 * acc->cap_entries : 4096;
        while (cap < acc->n_entries + n_more) cap *= 2;
        run_entry *p = realloc(acc->runs, cap * sizeof *p);
        if (!p) return err_set("pixel metrics: out of memory for %zu run entries (%zu MiB)", cap, cap * sizeof *p >> 20);
        acc->runs = p;
        acc->cap_entries = cap;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int pixel_acc_record_run(pixel_acc *acc, const float *map, size_t npix, int n_regions, float smin, float smax) {
    if (npix > acc->cap_order) {
        free(acc->order);
        acc->order = malloc(npix * sizeof *acc->order);
        acc->cap_order = acc->order ? npix : 0;
        if (!acc->order) return err_set("pixel metrics: out of memory for a %zu-pixel map's run", npix);
    }
    uint64_t *order = acc->order;
    for (size_t i = 0; i < npix; i++) order[i] = (uint64_t)(uint32_t)acc->bin_of[i] << 32 | (uint64_t)i;
    qsort(order, npix, sizeof *order, cmp_u64);
    size_t n_bins = 0;
    for (size_t i = 0; i < npix; i++) n_bins += i == 0 || order[i] >> 32 != order[i - 1] >> 32;
    if (reserve(acc, n_bins)) return -1;
    image_run *img = &acc->image[acc->n_images];
    *img = (image_run){.off = acc->n_entries, .n = (int32_t)n_bins, .n_regions = n_regions, .score_min = smin,
                       .score_max = smax};
    run_entry *e = acc->runs + acc->n_entries - 1;
    for (size_t k = 0; k < npix; k++) {
        size_t i = (size_t)(order[k] & 0xffffffffu);
        int32_t b = (int32_t)(order[k] >> 32), lab = acc->labels[i];
        if (k == 0 || b != e->bin) {
            e++;
            *e = (run_entry){.bin = b, .first = map[i]};
        } else if (e->first != map[i]) {
            e->mixed = 1;
        }
        if (lab) {
            e->pos++;
            e->pro += acc->inv_size[lab];
            img->n_pos++;
        } else {
            e->neg++;
            img->n_neg++;
        }
    }
    acc->n_entries += n_bins;
    return 0;
}

int pixel_acc_runs_append(pixel_acc *dst, const pixel_acc *src) {
    if (!src->keep_images) return 0;
    if (!dst->keep_images && dst->n_images > 0)
        return err_set("pixel metrics: cannot merge per-image runs into histograms that did not keep theirs");
    dst->keep_images = 1;
    int64_t n0 = dst->n_images;
    for (int64_t i = 0; i < src->n_images; i++) {
        const image_run *s = &src->image[i];
        dst->n_images = n0 + i; // reserve() makes room for image n_images
        if (reserve(dst, (size_t)s->n)) { dst->n_images = n0; return -1; }
        image_run *d = &dst->image[n0 + i];
        *d = *s;
        d->off = dst->n_entries;
        memcpy(dst->runs + dst->n_entries, src->runs + s->off, (size_t)s->n * sizeof *src->runs);
        dst->n_entries += (size_t)s->n;
    }
    dst->n_images = n0;
    return 0;
}
