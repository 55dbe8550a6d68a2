// A batch of the baseline heads on their backend (baseline_internal.h): one scratch allocation, grown on demand
// and sliced per use; a map layer's patch rows go up image by image (the class rows stay behind), when the
// layer is reached (one layer's rows on the backend at a time).
#include "model/baseline_internal.h"

int baseline_work(Baseline *b, const BlSlice *s, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += s[i].n;
    if (total > b->work_cap) {
        b->be->release(b->work);
        b->work_cap = 0;
        if (!(b->work = b->be->alloc(total))) return -1;
        b->work_cap = total;
    }
    float *at = b->work;
    for (int i = 0; i < n; i++) { *s[i].ptr = s[i].n ? at : NULL; at += s[i].n; }
    return 0;
}

void baseline_upload_patch_rows(Baseline *b, const BaselineFeatures *f, int layer, float *dst) {
    BaselineFeatureShape sh;
    baseline_feature_shape(b, &sh);
    size_t N = (size_t)b->T - 1, ld = sh.ld;
    for (int k = 0; k < f->B; k++)
        b->be->upload(dst + (size_t)k * N * ld, f->blocks[layer] + ((size_t)k * b->T + 1) * ld, N * ld);
}
