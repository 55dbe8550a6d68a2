// April-GAN (Chen et al. 2023, VAND challenge), zero-shot: linear maps from four layers' patch tokens into the
// joint space, trained with focal + dice losses; text from its 35 templates. Its own part here is the mosaic
// augmentation of its training (MVTecDataset.combine_img in the public code, train.baseline.aug_rate: 0.2 when
// training on MVTec-AD): a share of the samples replaced by a 2 x 2 mosaic of four images of their class, whose
// features are computed on the fly.
#include "harness/run/method_baseline.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/rng.h"
#include "datasets/image_mosaic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    BaselineFeatures *f;    // one image's features
    float *pixels;          // (3,S,S)
    uint8_t *mask8;         // (S,S)
    int *by_defect;         // scratch: samples of one class grouped by defect
} Mosaic;

static void mosaic_free(void *p) {
    Mosaic *mo = p;
    if (!mo) return;
    if (mo->f) baseline_features_free(mo->f);
    free(mo->pixels);
    free(mo->mask8);
    free(mo->by_defect);
    free(mo);
}

// The head's mosaic buffers, made on first use.
static Mosaic *mosaic_for(BaselineHead *h) {
    if (h->own) return h->own;
    Mosaic *mo = calloc(1, sizeof *mo);
    size_t SS = (size_t)h->S * h->S;
    mo->f = baseline_features_new(h->b, 1);
    mo->pixels = malloc(sizeof(float) * 3 * SS);
    mo->mask8 = malloc(SS);
    mo->by_defect = malloc(sizeof(int) * h->d->n);
    if (!mo->f || !mo->pixels || !mo->mask8 || !mo->by_defect) {
        mosaic_free(mo);
        err_set("mosaic augmentation: out of memory");
        return NULL;
    }
    h->own = mo;
    h->own_free = mosaic_free;
    log_msg("training april-gan: mosaic augmentation of %.0f%% of the samples", 100.0 * h->bc->aug_rate);
    return mo;
}

// Replaces sample j of the batch in h->f (and its mask) by a mosaic of four images of class c, each drawn as the
// public code does (a defect folder of the class uniformly, then a file of it uniformly).
static int mosaic_sample(BaselineHead *h, Mosaic *mo, int c, Rng *r, int j) {
    const ExecDataset *d = h->d;
    const char *defects[256];
    int nd = 0;
    for (int i = 0; i < d->n; i++) {  // the class's defect folders, in dataset order
        if (d->cls[i] != c) continue;
        int k = 0;
        while (k < nd && strcmp(defects[k], d->s[i]->defect)) k++;
        if (k == nd && nd < 256) defects[nd++] = d->s[i]->defect;
    }
    const char *paths[4], *masks[4];
    for (int q = 0; q < 4; q++) {
        const char *defect = defects[(int)(rng_uniform(r) * nd)];
        int m = 0;
        for (int i = 0; i < d->n; i++)
            if (d->cls[i] == c && !strcmp(d->s[i]->defect, defect)) mo->by_defect[m++] = i;
        const Sample *s = d->s[mo->by_defect[(int)(rng_uniform(r) * m)]];
        paths[q] = s->image_path;
        masks[q] = s->label ? s->mask_path : NULL;
    }
    if (image_mosaic_load(paths, masks, h->S, h->mean, h->std, mo->pixels,
                          mo->mask8) < 0)
        return -1;
    mo->f->B = 1;
    if (baseline_extract(h->b, mo->pixels, mo->f) < 0) return -1;
    const BaselineFeatureShape *s = &h->shape;
    for (int k = 0; k < s->n_blocks; k++)
        memcpy(h->f->blocks[k] + (size_t)j * s->rows[k] * s->ld, mo->f->blocks[k], sizeof(float) * s->rows[k] * s->ld);
    memcpy(h->f->global + (size_t)j * s->P, mo->f->global, sizeof(float) * s->P);
    return 0;
}

static int april_gan_train_step(MethodHead *mh, MethodBatch *b, MethodLosses *out) {
    BaselineHead *h = (BaselineHead *)mh;
    if (baseline_head_load(h, b->idx, b->B) < 0) return -1;
    if (h->bc->aug_rate > 0) {
        Mosaic *mo = mosaic_for(h);
        if (!mo) return -1;
        // Which samples become mosaics, and of what: a function of (seed, epoch, step), so a resumed run draws
        // what an uninterrupted one does.
        Rng r;
        rng_seed(&r, h->bc->seed ^ (0x6d6f73616963ULL + (uint64_t)b->epoch * 1000003ULL + (uint64_t)b->step_in_epoch));
        size_t SS = (size_t)h->S * h->S;
        for (int j = 0; j < b->B; j++) {
            if (rng_uniform(&r) >= h->bc->aug_rate) continue;
            if (mosaic_sample(h, mo, b->cls[j], &r, j) < 0) return -1;
            int any = 0;
            for (size_t q = 0; q < SS; q++) {
                b->mask[j * SS + q] = mo->mask8[q];
                any |= mo->mask8[q];
            }
            b->label[j] = any;
        }
    }
    return baseline_head_step_loaded(h, b, out);
}

const Method METHOD_APRIL_GAN = {
    .name = "april-gan", .label = "April-GAN", .baseline = BL_APRILGAN, .learns = 1, BASELINE_METHOD_OPS,
    .train_step = april_gan_train_step,
};
