// Extra ops against PyTorch/scipy (tests/ref_kanoclip_ops.py, float64 reference): forward within 1e-5,
// gradients within 1e-4; sampling gradients also against central finite differences of our own forward (1e-2).
#include "tests/npy.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

#define DIR "build/fixtures/kanoclip_ops"
#define F(name) npy_f32(DIR, name, NULL)

Test(kanoclip_ops, gelu_relu) {
    float *x = F("gelu_x"), *dy = F("gelu_dy"), *y = calloc(999, 4), *dx = calloc(999, 4);
    gelu_forward(y, x, 999);
    assert_close(y, F("gelu_y"), 999, 1e-5, "gelu y");
    gelu_backward(dx, x, dy, 999);
    assert_close(dx, F("gelu_dx"), 999, 1e-5, "gelu dx");
    float *xr = F("relu_x"), *yr = calloc(999, 4), *dxr = calloc(999, 4);
    relu_forward(yr, xr, 999);
    assert_close(yr, F("relu_y"), 999, 0, "relu y");
    relu_backward(dxr, yr, dy, 999);
    assert_close(dxr, F("relu_dx"), 999, 0, "relu dx");
}

// MVFA-AD's adapter activation and residual mix (model/baseline_mvfa.c)
Test(kanoclip_ops, leaky_relu_and_scaled_add) {
    float *x = F("lrelu_x"), *dy = F("lrelu_dy"), *y = calloc(999, 4), *dx = calloc(999, 4);
    leaky_relu_forward(y, x, 999, 0.01f);
    assert_close(y, F("lrelu_y"), 999, 1e-6, "leaky relu y");
    leaky_relu_backward(dx, y, dy, 999, 0.01f);
    assert_close(dx, F("lrelu_dx"), 999, 1e-6, "leaky relu dx");
    float *a = F("mix_a"), *b = F("mix_b"), *dm = F("mix_dy"), *m = calloc(301, 4), *da = calloc(301, 4),
          *db = calloc(301, 4);
    scaled_add_forward(m, 0.8f, a, 0.1f, b, 301);
    assert_close(m, F("mix_y"), 301, 1e-6, "scaled add y");
    scaled_add_backward(da, db, dm, 0.8f, 0.1f, 301);
    assert_close(da, F("mix_da"), 301, 1e-6, "scaled add da");
    assert_close(db, F("mix_db"), 301, 1e-6, "scaled add db");
    scaled_add_forward(a, 0.8f, a, 0.1f, b, 301);  // in place, as the residual stream is updated
    assert_close(a, F("mix_y"), 301, 1e-6, "scaled add in place");
}

Test(kanoclip_ops, softmax_rows) {
    float *x = F("sm_x"), *dy = F("sm_dy"), *y = calloc(17 * 9, 4), *dx = calloc(17 * 9, 4);
    softmax_rows_forward(y, x, 17, 9, 1.7f);
    assert_close(y, F("sm_y"), 17 * 9, 1e-5, "softmax y");
    softmax_rows_backward(dx, dy, y, 17, 9, 1.7f);
    assert_close(dx, F("sm_dx"), 17 * 9, 1e-4, "softmax dx");
}

Test(kanoclip_ops, l2norm_rows) {
    float *x = F("l2_x"), *dy = F("l2_dy"), *y = calloc(13 * 21, 4), *n = calloc(13, 4), *dx = calloc(13 * 21, 4);
    l2norm_rows_forward(y, n, x, 13, 21);
    assert_close(y, F("l2_y"), 13 * 21, 1e-5, "l2norm y");
    l2norm_rows_backward(dx, dy, y, n, 13, 21);
    assert_close(dx, F("l2_dx"), 13 * 21, 1e-4, "l2norm dx");
}

static double dot_dy(const float *y, const float *dy, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)y[i] * dy[i];
    return s;
}

static void check_grid_sample(int ac) {
    int H = 5, W = 7, C = 6, Np = 40;
    char nm[32];
#define G(s) (snprintf(nm, sizeof nm, "gs%d_%s", ac, s), F(nm))
    float *x = G("x"), *grid = G("grid"), *dy = G("dy");
    float *y = calloc(Np * C, 4), *dx = calloc(H * W * C, 4), *dg = calloc(Np * 2, 4);
    grid_sample_forward(y, x, grid, H, W, C, C, Np, C, ac);
    assert_close(y, G("y"), Np * C, 1e-5, "grid_sample y");
    grid_sample_backward(dx, dg, dy, x, grid, H, W, C, C, Np, C, ac);
    assert_close(dx, G("dx"), H * W * C, 1e-5, "grid_sample dx");
    assert_close(dg, G("dgrid"), Np * 2, 1e-4, "grid_sample dgrid");
    // finite differences of L = Σ dy·y, per grid coordinate and per input element
    float *fd = calloc(Np * 2, 4), *fdx = calloc(H * W * C, 4), eps = 1e-3f;
    for (int i = 0; i < Np * 2; i++) {
        float keep = grid[i];
        grid[i] = keep + eps; grid_sample_forward(y, x, grid, H, W, C, C, Np, C, ac); double lp = dot_dy(y, dy, Np * C);
        grid[i] = keep - eps; grid_sample_forward(y, x, grid, H, W, C, C, Np, C, ac); double lm = dot_dy(y, dy, Np * C);
        grid[i] = keep;
        fd[i] = (float)((lp - lm) / (2 * eps));
    }
    assert_close(dg, fd, Np * 2, 1e-2, "grid_sample dgrid vs finite differences");
    for (int i = 0; i < H * W * C; i++) {
        float keep = x[i];
        x[i] = keep + eps; grid_sample_forward(y, x, grid, H, W, C, C, Np, C, ac); double lp = dot_dy(y, dy, Np * C);
        x[i] = keep - eps; grid_sample_forward(y, x, grid, H, W, C, C, Np, C, ac); double lm = dot_dy(y, dy, Np * C);
        x[i] = keep;
        fdx[i] = (float)((lp - lm) / (2 * eps));
    }
    assert_close(dx, fdx, H * W * C, 1e-2, "grid_sample dx vs finite differences");
#undef G
}

Test(kanoclip_ops, grid_sample_align_corners_false) { check_grid_sample(0); }
Test(kanoclip_ops, grid_sample_align_corners_true) { check_grid_sample(1); }

Test(kanoclip_ops, dwconv) {
    int H = 6, W = 8, C = 5, k = 5;
    float *x = F("dw_x"), *w = F("dw_w"), *b = F("dw_b"), *dy = F("dw_dy");
    float *y = calloc(H * W * C, 4), *dx = calloc(H * W * C, 4), *dw = calloc(C * k * k, 4), *db = calloc(C, 4);
    dwconv_forward(y, x, w, b, H, W, C, C, k);
    assert_close(y, F("dw_y"), H * W * C, 1e-5, "dwconv y");
    dwconv_backward(dx, dw, db, dy, x, w, H, W, C, C, k);
    assert_close(dx, F("dw_dx"), H * W * C, 1e-5, "dwconv dx");
    assert_close(dw, F("dw_dw"), C * k * k, 1e-5, "dwconv dw");
    assert_close(db, F("dw_db"), C, 1e-5, "dwconv db");
}

static void check_upsample(int ac) {
    int B = 2, h = 5, w = 7, Ho = 23, Wo = 19;
    char nm[32];
#define G(s) (snprintf(nm, sizeof nm, "up%d_%s", ac, s), F(nm))
    float *x = G("x"), *dy = G("dy"), *y = calloc(B * Ho * Wo, 4), *dx = calloc(B * h * w, 4);
    upsample_bilinear_forward(y, x, B, h, w, Ho, Wo, ac);
    assert_close(y, G("y"), B * Ho * Wo, 1e-5, "upsample y");
    upsample_bilinear_backward(dx, dy, B, h, w, Ho, Wo, ac);
    assert_close(dx, G("dx"), B * h * w, 1e-5, "upsample dx");
#undef G
}

Test(kanoclip_ops, upsample_align_corners_false) { check_upsample(0); }
Test(kanoclip_ops, upsample_align_corners_true) { check_upsample(1); }

Test(kanoclip_ops, gaussian_filter_scipy) {
    float *a = F("gauss_a_x"), *ya = calloc(40 * 50, 4);
    gaussian_filter_forward(ya, a, 1, 40, 50, 4.0f, 4.0f);
    assert_close(ya, F("gauss_a_y"), 40 * 50, 1e-5, "gaussian 40x50");
    float *b = F("gauss_b_x");
    gaussian_filter_forward(b, b, 1, 9, 12, 4.0f, 4.0f);  // in place; radius 16 exceeds the map
    assert_close(b, F("gauss_b_y"), 9 * 12, 1e-5, "gaussian 9x12 (in place)");
}

Test(kanoclip_ops, bce_logits) {
    float *x = F("bce_x"), *t = F("bce_t"), *dx = calloc(50, 4);
    float l = bce_logits_forward(x, t, 50);
    assert_close(&l, F("bce_l"), 1, 1e-6, "bce loss");
    bce_logits_backward(dx, x, t, 50, 1.0f);
    assert_close(dx, F("bce_dx"), 50, 1e-5, "bce dx");
}
