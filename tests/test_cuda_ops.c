// Every CUDA op against its CPU op (the reference) on fresh random inputs: GEMM-based ops in fp32 (1e-5),
// TF32 (1e-3) and bf16 (1e-2), attention (a chain of GEMMs) at 1e-5 / 2e-3 / 2e-2 (tests/cuda_tolerances.py);
// the other ops in fp32 (1e-5). Gradient buffers start random, not zero, so the
// accumulate (+=) rule is checked too. Skips with the reason when no GPU is present or CUDA is not built.
#include "tests/cuda_test.h"
#include "model/adam.h"
#include "model/ops.h"
#include "model/ops_baseline.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

#ifndef KANOCLIP_CUDA
Test(cuda_ops, skipped) { cr_skip_test("built without CUDA"); }
#else
#include <cuda_runtime_api.h>

#define N_(x) (sizeof(x) / sizeof((x)[0]))

Test(cuda_ops, matmul_forward_backward_each_precision) {
    need_gpu();
    int N = 67, C = 96, OC = 80;
    for (int pi = 0; pi < 3; pi++) {
        rng_seed("matmul");
        cuda_ops_set_precision(PRECISIONS[pi]);
        double tol = PRECISION_TOL[pi];
        float *x = rand_buf(N * C, 1), *w = rand_buf(OC * C, 1), *b = rand_buf(OC, 1), *dy = rand_buf(N * OC, 1);
        float *dx = rand_buf(N * C, 1), *dw = rand_buf(OC * C, 1), *db = rand_buf(OC, 1), *y = malloc(4 * N * OC);
        float *gx = to_dev(x, N * C), *gw = to_dev(w, OC * C), *gb = to_dev(b, OC), *gdy = to_dev(dy, N * OC);
        float *gdx = to_dev(dx, N * C), *gdw = to_dev(dw, OC * C), *gdb = to_dev(db, OC);
        float *gy = cuda_alloc_floats(N * OC);
        matmul_forward(y, x, w, b, N, C, OC);
        matmul_forward_cuda(gy, gx, gw, gb, N, C, OC);
        check_dev(gy, y, N * OC, tol, gemm_precision_name(PRECISIONS[pi]));
        matmul_forward(y, x, w, NULL, N, C, OC);
        matmul_forward_cuda(gy, gx, gw, NULL, N, C, OC);
        check_dev(gy, y, N * OC, tol, "matmul without bias");
        matmul_backward(dx, dw, db, dy, x, w, N, C, OC);
        matmul_backward_cuda(gdx, gdw, gdb, gdy, gx, gw, N, C, OC);
        check_dev(gdx, dx, N * C, tol, "matmul dinp");
        check_dev(gdw, dw, OC * C, tol, "matmul dweight");
        check_dev(gdb, db, OC, 1e-5, "matmul dbias");
        cuda_free(gx); cuda_free(gw); cuda_free(gb); cuda_free(gdy); cuda_free(gdx); cuda_free(gdw); cuda_free(gdb);
        cuda_free(gy);
        free(x); free(w); free(b); free(dy); free(dx); free(dw); free(db); free(y);
    }
}

Test(cuda_ops, gemm_transposes_and_batches) {
    need_gpu();
    rng_seed("gemm");
    // C (3 batches of 13x17) = 0.5 · Aᵀ (A stored 11x13, ld 15) · Bᵀ (B stored 17x11, ld 12) + 2 C
    int M = 13, N = 17, K = 11, lda = 15, ldb = 12, ldc = 19, batch = 3;
    long sa = K * lda, sb = N * ldb, sc = M * ldc;
    float *A = rand_buf(sa * batch, 1), *B = rand_buf(sb * batch, 1), *C = rand_buf(sc * batch, 1);
    float *want = copy_buf(C, sc * batch);
    for (int t = 0; t < batch; t++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int k = 0; k < K; k++) s += (double)A[t * sa + k * lda + i] * B[t * sb + j * ldb + k];
                want[t * sc + i * ldc + j] = (float)(0.5 * s + 2.0 * C[t * sc + i * ldc + j]);
            }
    float *gA = to_dev(A, sa * batch), *gB = to_dev(B, sb * batch), *gC = to_dev(C, sc * batch);
    gemm_cuda(1, 1, M, N, K, 0.5f, gA, lda, sa, gB, ldb, sb, 2.0f, gC, ldc, sc, batch);
    check_dev(gC, want, sc * batch, 1e-5, "strided batched gemm, both transposed");
}

Test(cuda_ops, layernorm_forward_backward) {
    need_gpu();
    rng_seed("layernorm");
    int N = 45, C = 200;
    float *x = rand_buf(N * C, 2), *w = rand_buf(C, 1), *b = rand_buf(C, 1), *dy = rand_buf(N * C, 1);
    float *y = malloc(4 * N * C), *m = malloc(4 * N), *r = malloc(4 * N);
    float *dx = rand_buf(N * C, 1), *dw = rand_buf(C, 1), *db = rand_buf(C, 1);
    float *gx = to_dev(x, N * C), *gw = to_dev(w, C), *gb = to_dev(b, C), *gdy = to_dev(dy, N * C);
    float *gy = cuda_alloc_floats(N * C), *gm = cuda_alloc_floats(N), *gr = cuda_alloc_floats(N);
    float *gdx = to_dev(dx, N * C), *gdw = to_dev(dw, C), *gdb = to_dev(db, C);
    layernorm_forward(y, m, r, x, w, b, N, C, 1e-5f);
    layernorm_forward_cuda(gy, gm, gr, gx, gw, gb, N, C, 1e-5f);
    check_dev(gy, y, N * C, 1e-5, "layernorm y");
    check_dev(gm, m, N, 1e-5, "layernorm mean");
    check_dev(gr, r, N, 1e-5, "layernorm rstd");
    layernorm_backward(dx, dw, db, dy, x, w, m, r, N, C);
    layernorm_backward_cuda(gdx, gdw, gdb, gdy, gx, gw, gm, gr, N, C);
    check_dev(gdx, dx, N * C, 1e-5, "layernorm dinp");
    check_dev(gdw, dw, C, 1e-5, "layernorm dweight");
    check_dev(gdb, db, C, 1e-5, "layernorm dbias");
    // in place, as the vision tower's pre-LN runs
    layernorm_forward_cuda(gx, NULL, NULL, gx, gw, gb, N, C, 1e-5f);
    check_dev(gx, y, N * C, 1e-5, "layernorm in place");
}

// Attention with and without a causal mask, self (packed q|k|v) and cross (Tq != Tk, separate strides).
static void check_attention(int B, int Tq, int Tk, int H, int hd, int causal, int cross, const char *tag) {
    int C = H * hd, ldq = cross ? C : 3 * C, ldkv = cross ? 2 * C : 3 * C, ldo = C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int pi = 0; pi < 3; pi++) {
        rng_seed(tag);
        cuda_ops_set_precision(PRECISIONS[pi]);
        double tol = CHAIN_TOL[pi];
        size_t nq = (size_t)B * Tq * ldq, nkv = (size_t)B * Tk * ldkv, no = (size_t)B * Tq * ldo;
        size_t na = (size_t)B * H * Tq * Tk;
        float *qb = rand_buf(nq, 1), *kvb = cross ? rand_buf(nkv, 1) : qb, *dout = rand_buf(no, 1);
        float *q = qb, *k = cross ? kvb : qb + C, *v = cross ? kvb + C : qb + 2 * C;
        float *out = malloc(4 * no), *att = malloc(4 * na), *datt = malloc(4 * na);
        float *dqb = rand_buf(nq, 1), *dkvb = cross ? rand_buf(nkv, 1) : dqb;
        float *gqb = to_dev(qb, nq), *gkvb = cross ? to_dev(kvb, nkv) : gqb, *gdout = to_dev(dout, no);
        float *gq = gqb, *gk = cross ? gkvb : gqb + C, *gv = cross ? gkvb + C : gqb + 2 * C;
        float *gout = cuda_alloc_floats(no), *gatt = cuda_alloc_floats(na), *gdatt = cuda_alloc_floats(na);
        float *gdqb = to_dev(dqb, nq), *gdkvb = cross ? to_dev(dkvb, nkv) : gdqb;
        attention_forward(out, att, q, k, v, B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, scale);
        attention_forward_cuda(gout, gatt, gq, gk, gv, B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, scale);
        char what[128];
        snprintf(what, sizeof what, "%s %s out", tag, gemm_precision_name(PRECISIONS[pi]));
        check_dev(gout, out, no, tol, what);
        snprintf(what, sizeof what, "%s %s probabilities", tag, gemm_precision_name(PRECISIONS[pi]));
        check_dev(gatt, att, na, tol, what);
        float *dq = dqb, *dk = cross ? dkvb : dqb + C, *dv = cross ? dkvb + C : dqb + 2 * C;
        float *gdq = gdqb, *gdk = cross ? gdkvb : gdqb + C, *gdv = cross ? gdkvb + C : gdqb + 2 * C;
        attention_backward(dq, dk, dv, datt, dout, att, q, k, v, B, Tq, Tk, H, hd, ldq, ldkv, ldo, scale);
        attention_backward_cuda(gdq, gdk, gdv, gdatt, gdout, gatt, gq, gk, gv, B, Tq, Tk, H, hd, ldq, ldkv, ldo,
                                scale);
        snprintf(what, sizeof what, "%s %s dq", tag, gemm_precision_name(PRECISIONS[pi]));
        check_dev(gdqb, dqb, nq, tol, what);
        if (cross) {
            snprintf(what, sizeof what, "%s %s dk|dv", tag, gemm_precision_name(PRECISIONS[pi]));
            check_dev(gdkvb, dkvb, nkv, tol, what);
        }
        cuda_free(gqb); cuda_free(gdout); cuda_free(gout); cuda_free(gatt); cuda_free(gdatt); cuda_free(gdqb);
        if (cross) { cuda_free(gkvb); cuda_free(gdkvb); free(kvb); free(dkvb); }
        free(qb); free(dout); free(out); free(att); free(datt); free(dqb);
    }
}

Test(cuda_ops, attention_full) { need_gpu(); check_attention(2, 37, 37, 4, 16, 0, 0, "attention full"); }
Test(cuda_ops, attention_causal) { need_gpu(); check_attention(3, 21, 21, 2, 32, 1, 0, "attention causal"); }
Test(cuda_ops, attention_cross) { need_gpu(); check_attention(2, 2, 50, 4, 8, 0, 1, "attention cross"); }

// Inference attention (no kept probabilities) by every path: unfused through cuBLAS in each precision, fused
// (fp32), cuDNN's fused attention with bf16 and fp16 I/O (at the bf16 chain tolerance: its inputs, probabilities
// and output are rounded to 8 or 11 bits), and the default (AUTO) in bf16. A cuDNN mode that cannot run a shape
// falls back to the unfused path, which must then be as right; cudnn_must_run says whether it may fall back.
static void check_attention_infer_paths(int B, int T, int H, int hd, int causal, int cudnn_must_run,
                                        const char *tag) {
    int C = H * hd, ld = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    rng_seed(tag);
    size_t nq = (size_t)B * T * ld, no = (size_t)B * T * C;
    float *qkv = rand_buf(nq, 1), *out = malloc(4 * no);
    attention_infer_forward(out, qkv, qkv + C, qkv + 2 * C, B, T, T, H, hd, ld, ld, C, causal, scale);
    float *g = to_dev(qkv, nq), *gout = cuda_alloc_floats(no);
    struct { CudaAttentionMode mode; int pi; } runs[] = {
        {CUDA_ATTN_UNFUSED, 0}, {CUDA_ATTN_UNFUSED, 1}, {CUDA_ATTN_UNFUSED, 2}, {CUDA_ATTN_FUSED_FP32, 0},
        {CUDA_ATTN_CUDNN, 2},   {CUDA_ATTN_CUDNN_FP16, 2}, {CUDA_ATTN_AUTO, 2},
    };
    char what[160];
    for (size_t r = 0; r < N_(runs); r++) {
        cuda_attention_set_mode(runs[r].mode);
        cuda_ops_set_precision(PRECISIONS[runs[r].pi]);
        cuda_zero(gout, no);
        attention_infer_forward_cuda(gout, g, g + C, g + 2 * C, B, T, T, H, hd, ld, ld, C, causal, scale);
        CudaAttentionMode ran = cuda_attention_last_path();
        snprintf(what, sizeof what, "%s: %s (asked %s), %s", tag, cuda_attention_mode_name(ran),
                 cuda_attention_mode_name(runs[r].mode), gemm_precision_name(PRECISIONS[runs[r].pi]));
        check_dev(gout, out, no, CHAIN_TOL[runs[r].pi], what);
        int wants_cudnn = runs[r].mode == CUDA_ATTN_CUDNN || runs[r].mode == CUDA_ATTN_CUDNN_FP16 ||
                          runs[r].mode == CUDA_ATTN_AUTO;
        if (wants_cudnn && cudnn_must_run)
            cr_assert(ran == CUDA_ATTN_CUDNN || ran == CUDA_ATTN_CUDNN_FP16, "%s: cuDNN should have run it", what);
        if (wants_cudnn && ran == CUDA_ATTN_UNFUSED) cr_log_info("%s: fell back", what);
    }
    cuda_attention_set_mode(CUDA_ATTN_AUTO);
    cuda_free(g); cuda_free(gout); free(qkv); free(out);
}

static void check_attention_infer(int B, int T, int H, int hd, int causal, const char *tag) {
    check_attention_infer_paths(B, T, H, hd, causal, 0, tag);
}

// 1 when cuDNN's fused attention must plan here (the build has it, the library loads, the GPU is Ampere or newer);
// otherwise logs why it may not.
static int cudnn_expected(void) {
    if (!attention_cudnn_built() || !attention_cudnn_available()) {
        cr_log_warn("cuDNN path not checked against its own kernels: %s", err_msg());
        return 0;
    }
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    if (major < 8) cr_log_warn("cuDNN's fused attention needs sm_80 or newer; this GPU is sm_%d", major * 10);
    return major >= 8;
}

Test(cuda_ops, attention_infer_vision_shape) { need_gpu(); check_attention_infer(2, 197, 4, 64, 0, "infer hd64"); }
Test(cuda_ops, attention_infer_causal) { need_gpu(); check_attention_infer(3, 77, 3, 32, 1, "infer causal"); }
Test(cuda_ops, attention_infer_small_heads) { need_gpu(); check_attention_infer(1, 70, 2, 8, 0, "infer hd8"); }

// ViT-L/14-336 at 518 px: 1370 tokens, 16 heads of 64; cuDNN must run it where it can run at all.
Test(cuda_ops, attention_cudnn_vision_518) {
    need_gpu();
    int must = cudnn_expected();
    if (must) cr_assert_eq(attention_cudnn_plan(2, 1370, 1370, 16, 64, 0, 0), 0, "cuDNN plan: %s", err_msg());
    check_attention_infer_paths(2, 1370, 16, 64, 0, must, "cuDNN 518 px");
}

// Odd sizes: 3 images of 37 tokens, 3 heads of 64 (cuDNN must run it), 3 heads of 40 (it may decline); causal,
// as the text tower asks (77 tokens, 4 heads of 64; cuDNN may decline the mask, the fallback is logged).
Test(cuda_ops, attention_cudnn_odd_and_causal) {
    need_gpu();
    int must = cudnn_expected();
    check_attention_infer_paths(3, 37, 3, 64, 0, must, "cuDNN odd");
    check_attention_infer_paths(3, 37, 3, 40, 0, 0, "cuDNN odd hd40");
    check_attention_infer_paths(2, 77, 4, 64, 1, 0, "cuDNN causal");
}

// A head size cuDNN's engines refuse (12: not a multiple of 8) must fall back and stay right; cross attention
// (Tq != Tk, separate strides) and q = k = v (the vision tower's V-V path) go through cuDNN.
Test(cuda_ops, attention_cudnn_fallback_cross_and_aliased) {
    need_gpu();
    int must = cudnn_expected();
    check_attention_infer_paths(2, 50, 2, 12, 0, 0, "cuDNN hd12");
    int B = 2, Tq = 9, Tk = 61, H = 4, hd = 32, C = H * hd;
    float scale = 1.0f / sqrtf((float)hd);
    rng_seed("cuDNN cross");
    size_t nq = (size_t)B * Tq * C, nkv = (size_t)B * Tk * 2 * C, no = (size_t)B * Tq * C;
    float *q = rand_buf(nq, 1), *kv = rand_buf(nkv, 1), *out = malloc(4 * no);
    attention_infer_forward(out, q, kv, kv + C, B, Tq, Tk, H, hd, C, 2 * C, C, 0, scale);
    float *gq = to_dev(q, nq), *gkv = to_dev(kv, nkv), *gout = cuda_alloc_floats(no);
    cuda_attention_set_mode(CUDA_ATTN_CUDNN);
    attention_infer_forward_cuda(gout, gq, gkv, gkv + C, B, Tq, Tk, H, hd, C, 2 * C, C, 0, scale);
    if (must) cr_assert_eq(cuda_attention_last_path(), CUDA_ATTN_CUDNN, "cross attention: cuDNN should run it");
    check_dev(gout, out, no, CHAIN_TOL[2], "cuDNN cross attention");
    // V-V: q = k = v = the v columns of packed rows
    int T = 50, ld = 3 * C;
    size_t n = (size_t)B * T * ld, nv = (size_t)B * T * C;
    float *qkv = rand_buf(n, 1), *vv = malloc(4 * nv);
    attention_infer_forward(vv, qkv + 2 * C, qkv + 2 * C, qkv + 2 * C, B, T, T, H, hd, ld, ld, C, 0, scale);
    float *g = to_dev(qkv, n), *gvv = cuda_alloc_floats(nv);
    attention_infer_forward_cuda(gvv, g + 2 * C, g + 2 * C, g + 2 * C, B, T, T, H, hd, ld, ld, C, 0, scale);
    if (must) cr_assert_eq(cuda_attention_last_path(), CUDA_ATTN_CUDNN, "V-V attention: cuDNN should run it");
    check_dev(gvv, vv, nv, CHAIN_TOL[2], "cuDNN V-V attention");
    cuda_attention_set_mode(CUDA_ATTN_AUTO);
    cuda_free(gq); cuda_free(gkv); cuda_free(gout); cuda_free(g); cuda_free(gvv);
    free(q); free(kv); free(out); free(qkv); free(vv);
}

Test(cuda_ops, elementwise_activations) {
    need_gpu();
    rng_seed("elementwise");
    size_t n = 10007;
    float *x = rand_buf(n, 4), *x2 = rand_buf(n, 4), *dy = rand_buf(n, 1), *d0 = rand_buf(n, 1);
    float *y = malloc(4 * n), *d = copy_buf(d0, n);
    float *gx = to_dev(x, n), *gx2 = to_dev(x2, n), *gdy = to_dev(dy, n), *gy = cuda_alloc_floats(n);
    float *gd = to_dev(d0, n);
    quickgelu_forward(y, x, n); quickgelu_forward_cuda(gy, gx, n); check_dev(gy, y, n, 1e-5, "quickgelu");
    quickgelu_backward(d, x, dy, n); quickgelu_backward_cuda(gd, gx, gdy, n); check_dev(gd, d, n, 1e-5, "dquickgelu");
    gelu_forward(y, x, n); gelu_forward_cuda(gy, gx, n); check_dev(gy, y, n, 1e-5, "gelu");
    gelu_backward(d, x, dy, n); gelu_backward_cuda(gd, gx, gdy, n); check_dev(gd, d, n, 1e-5, "dgelu");
    relu_forward(y, x, n); relu_forward_cuda(gy, gx, n); check_dev(gy, y, n, 1e-5, "relu");
    relu_backward(d, y, dy, n); relu_backward_cuda(gd, gy, gdy, n); check_dev(gd, d, n, 1e-5, "drelu");
    residual_forward(y, x, x2, n); residual_forward_cuda(gy, gx, gx2, n); check_dev(gy, y, n, 1e-5, "residual");
    // act_backward_inplace: dx *= act'(pre), the same numbers as the backward into a zero gradient
    for (int act = 1; act <= 2; act++) {
        float *want = calloc(n, 4);
        if (act == 1) quickgelu_backward(want, x, dy, n);
        else gelu_backward(want, x, dy, n);
        float *gdx = to_dev(dy, n);
        act_backward_inplace_cuda(gdx, gx, n, act);
        check_dev(gdx, want, n, 1e-5, act == 1 ? "quickgelu' in place" : "gelu' in place");
        cuda_free(gdx); free(want);
    }
}

Test(cuda_ops, bias_and_activation_rows) {
    need_gpu();
    rng_seed("bias_act");
    int N = 33, C = 130;
    size_t n = (size_t)N * C;
    float *x0 = rand_buf(n, 3), *bias = rand_buf(C, 1), *gb = to_dev(bias, C);
    for (int act = 0; act <= 2; act++) {
        float *x = copy_buf(x0, n), *pre = malloc(4 * n), *gx = to_dev(x0, n), *gpre = cuda_alloc_floats(n);
        bias_act_forward(x, pre, bias, N, C, act);
        bias_act_forward_cuda(gx, gpre, gb, N, C, act);
        check_dev(gx, x, n, 1e-5, "bias_act out");
        check_dev(gpre, pre, n, 1e-5, "bias_act pre-activation");
        cuda_free(gx); cuda_free(gpre); free(x); free(pre);
    }
    float *x = copy_buf(x0, n), *gx = to_dev(x0, n);
    add_bias_rows(x, bias, N, C);
    add_bias_rows_cuda(gx, gb, N, C);
    check_dev(gx, x, n, 1e-5, "add_bias_rows");
}

Test(cuda_ops, softmax_and_l2norm_rows) {
    need_gpu();
    rng_seed("rows");
    int R = 29, C = 77;
    size_t n = (size_t)R * C;
    float *x = rand_buf(n, 3), *dy = rand_buf(n, 1), *dx = rand_buf(n, 1), *y = malloc(4 * n), *nrm = malloc(4 * R);
    float *gx = to_dev(x, n), *gdy = to_dev(dy, n), *gdx = to_dev(dx, n), *gy = cuda_alloc_floats(n);
    float *gn = cuda_alloc_floats(R);
    softmax_rows_forward(y, x, R, C, 0.7f);
    softmax_rows_forward_cuda(gy, gx, R, C, 0.7f);
    check_dev(gy, y, n, 1e-5, "softmax rows");
    softmax_rows_backward(dx, dy, y, R, C, 0.7f);
    softmax_rows_backward_cuda(gdx, gdy, gy, R, C, 0.7f);
    check_dev(gdx, dx, n, 1e-5, "softmax rows backward");
    l2norm_rows_forward(y, nrm, x, R, C);
    l2norm_rows_forward_cuda(gy, gn, gx, R, C);
    check_dev(gy, y, n, 1e-5, "l2norm rows");
    check_dev(gn, nrm, R, 1e-5, "l2norm norms");
    l2norm_rows_backward(dx, dy, y, nrm, R, C);
    l2norm_rows_backward_cuda(gdx, gdy, gy, gn, R, C);
    check_dev(gdx, dx, n, 1e-5, "l2norm rows backward");
}

Test(cuda_ops, grid_sample_forward_backward) {
    need_gpu();
    for (int ac = 0; ac < 2; ac++) {
        rng_seed(ac ? "grid ac" : "grid");
        int H = 9, W = 11, C = 40, ld_in = 48, Np = 150, ld_out = 44;
        float *inp = rand_buf((size_t)H * W * ld_in, 1), *grid = rand_buf(2 * Np, 1.15f);  // some taps outside
        float *out = rand_buf((size_t)Np * ld_out, 1), *dout = rand_buf((size_t)Np * ld_out, 1);
        float *dinp = rand_buf((size_t)H * W * ld_in, 1), *dgrid = rand_buf(2 * Np, 1);
        float *gi = to_dev(inp, (size_t)H * W * ld_in), *gg = to_dev(grid, 2 * Np);
        float *go = to_dev(out, (size_t)Np * ld_out), *gdo = to_dev(dout, (size_t)Np * ld_out);
        float *gdi = to_dev(dinp, (size_t)H * W * ld_in), *gdg = to_dev(dgrid, 2 * Np);
        grid_sample_forward(out, inp, grid, H, W, C, ld_in, Np, ld_out, ac);
        grid_sample_forward_cuda(go, gi, gg, H, W, C, ld_in, Np, ld_out, ac);
        check_dev(go, out, (size_t)Np * ld_out, 1e-5, "grid_sample out (and untouched columns)");
        grid_sample_backward(dinp, dgrid, dout, inp, grid, H, W, C, ld_in, Np, ld_out, ac);
        grid_sample_backward_cuda(gdi, gdg, gdo, gi, gg, H, W, C, ld_in, Np, ld_out, ac);
        check_dev(gdi, dinp, (size_t)H * W * ld_in, 1e-5, "grid_sample dinp");
        check_dev(gdg, dgrid, 2 * Np, 1e-5, "grid_sample dgrid");
    }
}

Test(cuda_ops, dwconv_forward_backward) {
    need_gpu();
    rng_seed("dwconv");
    int H = 10, W = 13, C = 24, ld_in = 30;
    for (int k = 3; k <= 5; k += 2) {
        size_t ni = (size_t)H * W * ld_in, no = (size_t)H * W * C;
        float *inp = rand_buf(ni, 1), *w = rand_buf((size_t)C * k * k, 1), *b = rand_buf(C, 1);
        float *out = malloc(4 * no), *dout = rand_buf(no, 1), *dinp = rand_buf(ni, 1);
        float *dw = rand_buf((size_t)C * k * k, 1), *db = rand_buf(C, 1);
        float *gi = to_dev(inp, ni), *gw = to_dev(w, (size_t)C * k * k), *gb = to_dev(b, C);
        float *go = cuda_alloc_floats(no), *gdo = to_dev(dout, no), *gdi = to_dev(dinp, ni);
        float *gdw = to_dev(dw, (size_t)C * k * k), *gdb = to_dev(db, C);
        dwconv_forward(out, inp, w, b, H, W, C, ld_in, k);
        dwconv_forward_cuda(go, gi, gw, gb, H, W, C, ld_in, k);
        check_dev(go, out, no, 1e-5, "dwconv out");
        dwconv_backward(dinp, dw, db, dout, inp, w, H, W, C, ld_in, k);
        dwconv_backward_cuda(gdi, gdw, gdb, gdo, gi, gw, H, W, C, ld_in, k);
        check_dev(gdi, dinp, ni, 1e-5, "dwconv dinp");
        check_dev(gdw, dw, (size_t)C * k * k, 1e-5, "dwconv dweight");
        check_dev(gdb, db, C, 1e-5, "dwconv dbias");
    }
}

Test(cuda_ops, upsample_bilinear_forward_backward) {
    need_gpu();
    for (int ac = 0; ac < 2; ac++) {
        rng_seed(ac ? "upsample ac" : "upsample");
        int B = 3, h = 7, w = 9, Ho = 33, Wo = 29;
        size_t ni = (size_t)B * h * w, no = (size_t)B * Ho * Wo;
        float *inp = rand_buf(ni, 1), *out = malloc(4 * no), *dout = rand_buf(no, 1), *dinp = rand_buf(ni, 1);
        float *gi = to_dev(inp, ni), *go = cuda_alloc_floats(no), *gdo = to_dev(dout, no), *gdi = to_dev(dinp, ni);
        upsample_bilinear_forward(out, inp, B, h, w, Ho, Wo, ac);
        upsample_bilinear_forward_cuda(go, gi, B, h, w, Ho, Wo, ac);
        check_dev(go, out, no, 1e-5, "upsample out");
        upsample_bilinear_backward(dinp, dout, B, h, w, Ho, Wo, ac);
        upsample_bilinear_backward_cuda(gdi, gdo, B, h, w, Ho, Wo, ac);
        check_dev(gdi, dinp, ni, 1e-5, "upsample dinp");
    }
}

Test(cuda_ops, gaussian_filter) {
    need_gpu();
    rng_seed("gaussian");
    int B = 2, H = 40, W = 37;
    size_t n = (size_t)B * H * W;
    float *x = rand_buf(n, 1), *y = malloc(4 * n), *gx = to_dev(x, n), *gy = cuda_alloc_floats(n);
    gaussian_filter_forward(y, x, B, H, W, 4.0f, 4.0f);
    gaussian_filter_forward_cuda(gy, gx, B, H, W, 4.0f, 4.0f);
    check_dev(gy, y, n, 1e-5, "gaussian sigma 4 (radius 16 over 37 columns: reflection beyond one period)");
    gaussian_filter_forward_cuda(gx, gx, B, H, W, 1.5f, 4.0f);  // in place
    gaussian_filter_forward(y, x, B, H, W, 1.5f, 4.0f);
    check_dev(gx, y, n, 1e-5, "gaussian sigma 1.5 in place");
}

Test(cuda_ops, bce_logits) {
    need_gpu();
    rng_seed("bce");
    int N = 1000;
    float *x = rand_buf(N, 8), *y = rand_buf(N, 1), *dx = rand_buf(N, 1);
    for (int i = 0; i < N; i++) y[i] = y[i] > 0;
    float *gx = to_dev(x, N), *gy = to_dev(y, N), *gdx = to_dev(dx, N), *gl = cuda_alloc_floats(1);
    float want = bce_logits_forward(x, y, N);
    bce_logits_forward_cuda(gl, gx, gy, N);
    check_dev(gl, &want, 1, 1e-5, "bce loss");
    bce_logits_backward(dx, x, y, N, 0.5f);
    bce_logits_backward_cuda(gdx, gx, gy, N, 0.5f);
    check_dev(gdx, dx, N, 1e-5, "bce dx");
}

Test(cuda_ops, adam_three_steps) {
    need_gpu();
    rng_seed("adam");
    size_t n = 5000;
    float *p = rand_buf(n, 1), *m = calloc(n, 4), *v = calloc(n, 4);
    float *gp = to_dev(p, n), *gm = to_dev(m, n), *gv = to_dev(v, n);
    for (long step = 1; step <= 3; step++) {
        float *g = rand_buf(n, 1), *gg = to_dev(g, n);
        adam_update(p, g, m, v, n, step, 1e-3f, 0.5f, 0.999f, 1e-8f);
        adam_update_cuda(gp, gg, gm, gv, n, step, 1e-3f, 0.5f, 0.999f, 1e-8f);
        cuda_free(gg); free(g);
    }
    check_dev(gp, p, n, 1e-5, "adam parameters");
    check_dev(gm, m, n, 1e-5, "adam first moments");
    check_dev(gv, v, n, 1e-5, "adam second moments");
}

// model/ops_baseline.h: the baselines' two-way probabilities (saturated too, in place too) and the global
// loss's two-class cross-entropy (a sum over more columns than the one block has threads).
Test(cuda_ops, baseline_pair_probabilities_and_cross_entropy) {
    need_gpu();
    rng_seed("baseline pairs");
    int n = 3000;
    float *x = rand_buf(2 * n, 40), *acc = rand_buf(n, 1), *out = malloc(sizeof(float) * 2 * n);
    float *gx = to_dev(x, 2 * n), *gout = cuda_alloc_floats(2 * n), *gacc = to_dev(acc, n);
    pair_probs_forward(out, x, n);
    pair_probs_forward_cuda(gout, gx, n);
    check_dev(gout, out, 2 * n, 1e-5, "pair probabilities");
    pair_prob_add(acc, x, n);
    pair_prob_add_cuda(gacc, gx, n);
    check_dev(gacc, acc, n, 1e-5, "abnormal probability added");
    pair_probs_forward_cuda(gx, gx, n);
    check_dev(gx, out, 2 * n, 1e-5, "pair probabilities in place");
    float *lg = rand_buf(2 * n, 8), *lab = rand_buf(n, 1), *dl = rand_buf(2 * n, 1), loss;
    for (int i = 0; i < n; i++) lab[i] = lab[i] > 0;
    float *glg = to_dev(lg, 2 * n), *glab = to_dev(lab, n), *gdl = to_dev(dl, 2 * n), *gloss = cuda_alloc_floats(1);
    ce_pair_forward_backward(&loss, dl, lg, lab, n, 0.25f);
    ce_pair_forward_backward_cuda(gloss, gdl, glg, glab, n, 0.25f);
    check_dev(gloss, &loss, 1, 1e-5, "cross-entropy sum");
    check_dev(gdl, dl, 2 * n, 1e-5, "cross-entropy dlogits");
    ce_pair_forward_backward_cuda(gloss, NULL, glg, glab, n, 0.25f);
    check_dev(gloss, &loss, 1, 1e-5, "cross-entropy without the gradient");
    cuda_free(gx); cuda_free(gout); cuda_free(gacc); cuda_free(glg); cuda_free(glab); cuda_free(gdl); cuda_free(gloss);
    free(x); free(acc); free(out); free(lg); free(lab); free(dl);
}

Test(cuda_ops, failures_reported_at_sync) {
    need_gpu();
    float *g = cuda_alloc_floats(16);
    // a GEMM with a leading dimension smaller than its rows is an invalid cuBLAS call
    gemm_cuda(0, 0, 4, 4, 4, 1.0f, g, 1, 0, g, 4, 0, 0.0f, g, 4, 0, 1);
    cr_assert_eq(cuda_ops_sync(), -1);
    cr_assert(strstr(err_msg(), "gemm_cuda"), "%s", err_msg());
    cr_assert_eq(cuda_ops_sync(), 0, "the failure is reported once: %s", err_msg());
    cuda_free(g);
}
#endif
