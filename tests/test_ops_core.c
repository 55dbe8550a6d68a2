// Core ops against PyTorch (tests/ref_ops_core.py, float64 reference): forward within 1e-5, gradients within 1e-4.
#include "tests/npy.h"
#include "model/ops.h"

#define DIR "build/fixtures/ops_core"
#define F(name) npy_f32(DIR, name, NULL)

Test(ops_core, matmul_forward_backward) {
    int N = 37, C = 48, OC = 29;
    float *x = F("mm_x"), *w = F("mm_w"), *b = F("mm_b"), *dy = F("mm_dy");
    float *y = calloc(N * OC, 4), *dx = calloc(N * C, 4), *dw = calloc(OC * C, 4), *db = calloc(OC, 4);
    matmul_forward(y, x, w, b, N, C, OC);
    assert_close(y, F("mm_y"), N * OC, 1e-5, "matmul y");
    matmul_backward(dx, dw, db, dy, x, w, N, C, OC);
    assert_close(dx, F("mm_dx"), N * C, 1e-5, "matmul dx");
    assert_close(dw, F("mm_dw"), OC * C, 1e-5, "matmul dw");
    assert_close(db, F("mm_db"), OC, 1e-5, "matmul db");
    // accumulation: a second backward doubles the gradients
    matmul_backward(dx, NULL, NULL, dy, x, w, N, C, OC);
    float *want = F("mm_dx");
    for (int i = 0; i < N * C; i++) want[i] *= 2;
    assert_close(dx, want, N * C, 1e-5, "matmul dx accumulated");
}

Test(ops_core, layernorm_forward_backward) {
    int N = 23, C = 40;
    float *x = F("ln_x"), *w = F("ln_w"), *b = F("ln_b"), *dy = F("ln_dy");
    float *y = calloc(N * C, 4), *m = calloc(N, 4), *r = calloc(N, 4);
    float *dx = calloc(N * C, 4), *dw = calloc(C, 4), *db = calloc(C, 4);
    layernorm_forward(y, m, r, x, w, b, N, C, 1e-5f);
    assert_close(y, F("ln_y"), N * C, 1e-5, "layernorm y");
    layernorm_backward(dx, dw, db, dy, x, w, m, r, N, C);
    assert_close(dx, F("ln_dx"), N * C, 1e-4, "layernorm dx");
    assert_close(dw, F("ln_dw"), C, 1e-4, "layernorm dw");
    assert_close(db, F("ln_db"), C, 1e-5, "layernorm db");
}

static void check_self_attention(const char *tag, int causal) {
    int B = 2, T = 11, C = 32, H = 4, hd = C / H;
    char name[64];
    snprintf(name, sizeof name, "%s_qkv", tag); float *qkv = F(name);
    snprintf(name, sizeof name, "%s_dy", tag); float *dy = F(name);
    float *y = calloc(B * T * C, 4), *att = calloc(B * H * T * T, 4), *datt = calloc(B * H * T * T, 4);
    float *dqkv = calloc(B * T * 3 * C, 4);
    attention_forward(y, att, qkv, qkv + C, qkv + 2 * C, B, T, T, H, hd, 3 * C, 3 * C, C, causal, 1.0f / sqrtf(hd));
    snprintf(name, sizeof name, "%s_y", tag);
    assert_close(y, F(name), B * T * C, 1e-5, name);
    attention_backward(dqkv, dqkv + C, dqkv + 2 * C, datt, dy, att, qkv, qkv + C, qkv + 2 * C, B, T, T, H, hd,
                       3 * C, 3 * C, C, 1.0f / sqrtf(hd));
    snprintf(name, sizeof name, "%s_dqkv", tag);
    assert_close(dqkv, F(name), B * T * 3 * C, 1e-4, name);
}

Test(ops_core, attention_full) { check_self_attention("attf", 0); }
Test(ops_core, attention_causal) { check_self_attention("attc", 1); }

Test(ops_core, attention_cross) {
    int B = 2, Tq = 2, Tk = 11, C = 32, H = 4, hd = C / H;
    float *q = F("attx_q"), *kv = F("attx_kv"), *dy = F("attx_dy");
    float *y = calloc(B * Tq * C, 4), *att = calloc(B * H * Tq * Tk, 4), *datt = calloc(B * H * Tq * Tk, 4);
    float *dq = calloc(B * Tq * C, 4), *dkv = calloc(B * Tk * 2 * C, 4);
    attention_forward(y, att, q, kv, kv + C, B, Tq, Tk, H, hd, C, 2 * C, C, 0, 1.0f / sqrtf(hd));
    assert_close(y, F("attx_y"), B * Tq * C, 1e-5, "cross y");
    attention_backward(dq, dkv, dkv + C, datt, dy, att, q, kv, kv + C, B, Tq, Tk, H, hd, C, 2 * C, C,
                       1.0f / sqrtf(hd));
    assert_close(dq, F("attx_dq"), B * Tq * C, 1e-4, "cross dq");
    assert_close(dkv, F("attx_dkv"), B * Tk * 2 * C, 1e-4, "cross dkv");
}

Test(ops_core, quickgelu) {
    float *x = F("qg_x"), *dy = F("qg_dy"), *y = calloc(1000, 4), *dx = calloc(1000, 4);
    quickgelu_forward(y, x, 1000);
    assert_close(y, F("qg_y"), 1000, 1e-5, "quickgelu y");
    quickgelu_backward(dx, x, dy, 1000);
    assert_close(dx, F("qg_dx"), 1000, 1e-5, "quickgelu dx");
}
