// The baselines' public code where our arithmetic once differed (issue 13 part 6), against tests/ref_upstream.py,
// which runs that code's operations in PyTorch.
#include "tests/npy.h"
#include "model/clip_model.h"

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
