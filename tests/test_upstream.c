// The baselines' public code where our arithmetic once differed (issue 13 part 6), against tests/ref_upstream.py,
// which runs that code's operations in PyTorch.
#include "tests/npy.h"
#include "model/clip_model.h"
#include "metrics/metrics.h"

#define FIX "build/fixtures/upstream"

// open_clip's resize_pos_embed (bicubic, antialias=True) and the plain bicubic/bilinear forms, for grids that grow
// and shrink. Float32 on both sides with different summation orders (torch: two separable passes): measured
// max error about 1e-6, asserted within 1e-5 relative. The antialiased result must differ from the plain
// bicubic one by far more than that, or the test could not tell the kernels apart.
Test(upstream, positional_embedding_resize) {
    const int cases[3][2] = {{7, 12}, {3, 37}, {12, 5}};
    const char *modes[3] = {"bilinear", "bicubic", "bicubic_aa"};
    const int W = 6;
    for (int c = 0; c < 3; c++) {
        int gin = cases[c][0], gout = cases[c][1];
        char tag[64], name[96];
        snprintf(tag, sizeof tag, "pos_%d_%d", gin, gout);
        snprintf(name, sizeof name, "%s_in", tag);
        float *in = npy_f32(FIX, name, NULL), *out[3];
        for (int m = 0; m < 3; m++) {
            size_t n;
            snprintf(name, sizeof name, "%s_%s", tag, modes[m]);
            float *want = npy_f32(FIX, name, &n);
            cr_assert_eq(n, (size_t)(gout * gout + 1) * W);
            out[m] = malloc(sizeof(float) * n);
            clip_resize_positions(out[m], in, gin, gout, W, (ClipPosResize)m);
            assert_close(out[m], want, n, 1e-5, name);
            free(want);
        }
        double diff = 0;
        for (size_t k = W; k < (size_t)(gout * gout + 1) * W; k++) diff = fmax(diff, fabs(out[1][k] - out[2][k]));
        cr_assert_gt(diff, 1e-3, "%s: antialiased and plain bicubic agree (%g)", tag, diff);
        for (int m = 0; m < 3; m++) free(out[m]);
        free(in);
    }
    cr_assert_str_eq(clip_pos_resize_name(CLIP_POS_BICUBIC_AA), "bicubic-aa");
}

// AnomalyCLIP's cal_pro_score compares float32 maps with its thresholds in float32. On maps whose values sit on
// the 200-threshold grid the two comparisons give different curves (the reference: 0.2727 against 0.2779), so
// eval.aupro: anomalyclip-f32 must give the first and anomalyclip the second. Every map value is its own bin
// (2^20 bins, 200 distinct values), so the histogram is exact: asserted within 1e-6 (float32 fixtures).
Test(upstream, aupro_ac200_float32_thresholds) {
    size_t n, nm;
    float *maps = npy_f32(FIX, "ac200_maps", &n);
    Npy masks = npy_load(FIX, "ac200_masks");
    cr_assert_eq(masks.count, n);
    const int H = 24, W = 24, N = (int)(n / (H * W));
    pixel_acc *acc = pixel_acc_create(0.0, 1.0, PIXEL_BINS_DEFAULT);
    cr_assert_not_null(acc);
    for (int i = 0; i < N; i++)
        cr_assert_eq(pixel_acc_add(acc, "map", maps + (size_t)i * H * W, H, W, (uint8_t *)masks.data + (size_t)i * H * W,
                                   H, W), 0);
    pixel_metrics pm;
    cr_assert_eq(pixel_acc_compute(acc, &pm), 0);
    float *f32 = npy_f32(FIX, "ac200_f32", &nm), *f64 = npy_f32(FIX, "ac200_f64", NULL);
    cr_assert(pm.aupro_ac200_f32.defined && pm.aupro_ac200.defined);
    cr_assert_float_eq(pm.aupro_ac200_f32.value, f32[0], 1e-6, "float32 thresholds: %.8f vs %.8f",
                       pm.aupro_ac200_f32.value, f32[0]);
    cr_assert_float_eq(pm.aupro_ac200.value, f64[0], 1e-6, "float64 thresholds: %.8f vs %.8f", pm.aupro_ac200.value,
                       f64[0]);
    cr_assert_gt(fabs(f32[0] - f64[0]), 1e-3, "the fixture does not separate the two comparisons");
    pixel_acc_free(acc);
    free(maps);
    free(masks.data);
    free(f32);
    free(f64);
}
