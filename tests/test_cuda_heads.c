// The heads on the cuda backend against the cpu backend, through the same op table (model/backend.h): each
// orchestration op of model/ops_heads.h on fresh random inputs (fp32, 1e-5 relative to the largest reference
// value; the batched GEMM in fp32 / TF32 / bf16 at 1e-5 / 1e-3 / 1e-2), then a whole KAnoCLIP training step and an
// evaluation batch (TF32: loss terms within 1e-3 relative, maps and scores 1e-3; bf16: gradients within 1e-2 of
// the largest gradient). Skips with the reason when no GPU is present or CUDA is not built.
#include "tests/cuda_test.h"
#include "model/backend.h"
#include "model/kanoclip.h"
#include "model/kanoclip_losses.h"
#include "model/ops_heads.h"

#ifndef KANOCLIP_CUDA
Test(cuda_heads, skipped) { cr_skip_test("built without CUDA"); }
#else

static const Backend *gpu(void) {
    need_gpu();
    const Backend *be = backend_cuda();
    cr_assert_not_null(be, "%s", err_msg());
    return be;
}

static float *up(const Backend *be, const float *h, size_t n) {
    float *d = be->alloc(n);
    cr_assert_not_null(d, "%s", err_msg());
    be->upload(d, h, n);
    return d;
}

static void same(const Backend *be, const float *dev, const float *want, size_t n, double tol, const char *what) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    be->download(h, dev, n);
    cr_assert_eq(be->sync(), 0, "%s: %s", what, err_msg());
    assert_close(h, want, n, tol, what);
    free(h);
}

Test(cuda_heads, batched_gemm_each_precision) {
    const Backend *be = gpu();
    int M = 2, N = 61, K = 24, batch = 4;
    for (int pi = 0; pi < 3; pi++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                rng_seed("gemm");
                be->set_precision(PRECISIONS[pi]);
                long sa = (long)M * K + 5, sb = (long)N * K + 3, sc = (long)M * N + 7;
                float *A = rand_buf(sa * batch, 1), *B = rand_buf(sb * batch, 1), *C = rand_buf(sc * batch, 1);
                float *dA = up(be, A, sa * batch), *dB = up(be, B, sb * batch), *dC = up(be, C, sc * batch);
                int lda = ta ? M : K, ldb = tb ? K : N;
                gemm(ta, tb, M, N, K, 0.7f, A, lda, sa, B, ldb, sb, 0.5f, C, N, sc, batch);
                be->gemm(ta, tb, M, N, K, 0.7f, dA, lda, sa, dB, ldb, sb, 0.5f, dC, N, sc, batch);
                same(be, dC, C, sc * batch, PRECISION_TOL[pi], gemm_precision_name(PRECISIONS[pi]));
                be->release(dA); be->release(dB); be->release(dC);
                free(A); free(B); free(C);
            }
    be->set_precision(GEMM_FP32);
}

Test(cuda_heads, elementwise_and_pair_ops) {
    const Backend *be = gpu();
    rng_seed("elementwise");
    int n = 1000;
    float *x = rand_buf(2 * n, 2), *y = rand_buf(2 * n, 1), *z = rand_buf(2 * n, 1);
    float *dx = up(be, x, 2 * n), *dy = up(be, y, 2 * n), *dz = up(be, z, 2 * n);
    axpy(y, x, 0.3f, 2 * n); be->axpy(dy, dx, 0.3f, 2 * n); same(be, dy, y, 2 * n, 1e-6, "axpy");
    scale_copy(z, x, -1.5f, 2 * n); be->scale_copy(dz, dx, -1.5f, 2 * n); same(be, dz, z, 2 * n, 1e-6, "scale_copy");
    deinterleave2(y, y + n, x, n); be->deinterleave2(dy, dy + n, dx, n); same(be, dy, y, 2 * n, 0, "deinterleave2");
    interleave2(z, x, x + n, n); be->interleave2(dz, dx, dx + n, n); same(be, dz, z, 2 * n, 0, "interleave2");
    mask_binarize(y, z, x, 2 * n); be->mask_binarize(dy, dz, dx, 2 * n);
    same(be, dy, y, 2 * n, 0, "mask gt"); same(be, dz, z, 2 * n, 0, "mask 1-gt");
    softmax_pair_forward(y, x, n); be->softmax_pair_forward(dy, dx, n); same(be, dy, y, 2 * n, 1e-5, "softmax_pair");
    float *g = rand_buf(2 * n, 1), *dg = up(be, g, 2 * n);
    softmax_pair_backward(z, g, y, n); be->softmax_pair_backward(dz, dg, dy, n);
    same(be, dz, z, 2 * n, 1e-5, "softmax_pair backward (+=)");
    int R = 7, C = 333;
    float *p = rand_buf(R * C, 1), *d = rand_buf(R * C, 1);
    float *dp = up(be, p, R * C), *dd = up(be, d, R * C);
    softmax_rows_backward_inplace(d, p, R, C); be->softmax_rows_backward_inplace(dd, dp, R, C);
    same(be, dd, d, R * C, 1e-5, "softmax_rows_backward_inplace");
    be->release(dx); be->release(dy); be->release(dz); be->release(dg); be->release(dp); be->release(dd);
    free(x); free(y); free(z); free(g); free(p); free(d);
}

Test(cuda_heads, losses_and_map_reductions) {
    const Backend *be = gpu();
    rng_seed("losses");
    int n = 37 * 41;
    float *pn = rand_buf(n, 1), *pa = rand_buf(n, 1), *gt = rand_buf(n, 1), *d0 = rand_buf(n, 1), *d1 = rand_buf(n, 1);
    for (int i = 0; i < n; i++) { pa[i] = 0.5f + 0.45f * pa[i]; pn[i] = 1.0f - pa[i]; gt[i] = gt[i] > 0.3f; }
    float *dpn = up(be, pn, n), *dpa = up(be, pa, n), *dgt = up(be, gt, n), *dd0 = up(be, d0, n), *dd1 = up(be, d1, n);
    float want[4], *dslot = be->alloc(4);
    focal_sum_op_forward(want, pn, pa, gt, n); be->focal_sum_op_forward(dslot, dpn, dpa, dgt, n);
    same(be, dslot, want, 1, 1e-5, "focal sum");
    dice_op_forward(want + 1, pa, gt, n); be->dice_op_forward(dslot + 1, dpa, dgt, n);
    same(be, dslot + 1, want + 1, 1, 1e-5, "dice");
    focal_sum_backward(d0, d1, pn, pa, gt, n, 0.25f); be->focal_sum_backward(dd0, dd1, dpn, dpa, dgt, n, 0.25f);
    same(be, dd0, d0, n, 1e-5, "focal backward pn"); same(be, dd1, d1, n, 1e-5, "focal backward pa");
    dice_backward(d0, pa, gt, n, -0.5f); be->dice_backward(dd0, dpa, dgt, n, -0.5f);
    same(be, dd0, d0, n, 1e-5, "dice backward");
    max_value(want + 2, pa, n); be->max_value(dslot + 2, dpa, n); same(be, dslot + 2, want + 2, 1, 0, "max");
    pa[5] = pa[17] = want[2];  // ties share the gradient
    be->upload(dpa, pa, n);
    max_ties_backward(d0, pa, n, 0.6f); be->max_ties_backward(dd0, dpa, n, 0.6f);
    same(be, dd0, d0, n, 1e-6, "max ties backward");
    float *y = malloc(sizeof(float) * n), *dy = be->alloc(n);
    memcpy(y, pn, sizeof(float) * n);
    minmax_forward(y, n); be->copy(dy, dpn, n); be->minmax_forward(dy, n); same(be, dy, y, n, 1e-6, "minmax");
    minmax_backward(d1, d0, pn, y, n); be->minmax_backward(dd1, dd0, dpn, dy, n);
    same(be, dd1, d1, n, 1e-5, "minmax backward");
    float *ptrs[] = {dpn, dpa, dgt, dd0, dd1, dslot, dy};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) be->release(ptrs[i]);
    free(pn); free(pa); free(gt); free(d0); free(d1); free(y);
}

Test(cuda_heads, dat_positions_and_relative_bias) {
    const Backend *be = gpu();
    rng_seed("dat");
    int Hg = 9, Wg = 11, N = Hg * Wg, heads = 3, RS = (2 * Hg - 1) * (2 * Wg - 1);
    float *off = rand_buf(2 * N, 2), *pos = malloc(sizeof(float) * 2 * N), *rpe = rand_buf(heads * RS, 0.5f);
    float *att = rand_buf((size_t)heads * N * N, 3), *datt = rand_buf((size_t)heads * N * N, 1);
    float *drpe = rand_buf(heads * RS, 1), *dpos = rand_buf(2 * N, 1), *doff = malloc(sizeof(float) * 2 * N);
    float *g_off = up(be, off, 2 * N), *g_pos = be->alloc(2 * N), *g_rpe = up(be, rpe, heads * RS);
    float *g_att = up(be, att, (size_t)heads * N * N), *g_datt = up(be, datt, (size_t)heads * N * N);
    float *g_drpe = up(be, drpe, heads * RS), *g_dpos = up(be, dpos, 2 * N), *g_doff = be->alloc(2 * N);
    dat_positions_forward(pos, off, Hg, Wg, 2.0f); be->dat_positions_forward(g_pos, g_off, Hg, Wg, 2.0f);
    same(be, g_pos, pos, 2 * N, 1e-6, "dat positions");
    dat_rpe_softmax_forward(att, rpe, pos, heads, Hg, Wg); be->dat_rpe_softmax_forward(g_att, g_rpe, g_pos, heads, Hg, Wg);
    same(be, g_att, att, (size_t)heads * N * N, 1e-5, "dat bias + softmax");
    dat_rpe_backward(drpe, dpos, datt, rpe, pos, heads, Hg, Wg);
    be->dat_rpe_backward(g_drpe, g_dpos, g_datt, g_rpe, g_pos, heads, Hg, Wg);
    same(be, g_drpe, drpe, heads * RS, 1e-5, "dat bias backward: tables");
    same(be, g_dpos, dpos, 2 * N, 1e-5, "dat bias backward: positions");
    dat_positions_backward(doff, dpos, off, Hg, Wg, 2.0f); be->dat_positions_backward(g_doff, g_dpos, g_off, Hg, Wg, 2.0f);
    same(be, g_doff, doff, 2 * N, 1e-5, "dat positions backward");
    float *ptrs[] = {g_off, g_pos, g_rpe, g_att, g_datt, g_drpe, g_dpos, g_doff};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) be->release(ptrs[i]);
    free(off); free(pos); free(rpe); free(att); free(datt); free(drpe); free(dpos); free(doff);
}

Test(cuda_heads, msda_grid_and_weighted_sum) {
    const Backend *be = gpu();
    rng_seed("msda");
    int Hg = 6, Wg = 7, N = Hg * Wg, M = 4, K = 3, hd = 8, P = M * hd, h = 2;
    size_t noff = (size_t)N * M * K * 2, ngrid = (size_t)N * K * 2, nsamp = (size_t)N * K * hd;
    float *off = rand_buf(noff, 1), *grid = malloc(sizeof(float) * ngrid), *att = rand_buf((size_t)N * M * K, 1);
    float *samp = rand_buf(nsamp, 1), *ao = rand_buf((size_t)N * P, 1), *dgrid = rand_buf(ngrid, 1);
    float *doff = rand_buf(noff, 1), *datt = rand_buf((size_t)N * M * K, 1), *dsamp = rand_buf(nsamp, 1);
    float *g_off = up(be, off, noff), *g_grid = be->alloc(ngrid), *g_att = up(be, att, (size_t)N * M * K);
    float *g_samp = up(be, samp, nsamp), *g_ao = up(be, ao, (size_t)N * P), *g_dgrid = up(be, dgrid, ngrid);
    float *g_doff = up(be, doff, noff), *g_datt = up(be, datt, (size_t)N * M * K), *g_dsamp = up(be, dsamp, nsamp);
    msda_grid_forward(grid, off, h, M, K, Hg, Wg); be->msda_grid_forward(g_grid, g_off, h, M, K, Hg, Wg);
    same(be, g_grid, grid, ngrid, 1e-6, "msda grid");
    msda_grid_backward(doff, dgrid, h, M, K, Hg, Wg); be->msda_grid_backward(g_doff, g_dgrid, h, M, K, Hg, Wg);
    same(be, g_doff, doff, noff, 1e-6, "msda grid backward");
    msda_combine_forward(ao, att, samp, h, N, M, K, hd, P); be->msda_combine_forward(g_ao, g_att, g_samp, h, N, M, K, hd, P);
    same(be, g_ao, ao, (size_t)N * P, 1e-5, "msda weighted sum");
    msda_combine_backward(datt, dsamp, ao, att, samp, h, N, M, K, hd, P);
    be->msda_combine_backward(g_datt, g_dsamp, g_ao, g_att, g_samp, h, N, M, K, hd, P);
    same(be, g_datt, datt, (size_t)N * M * K, 1e-5, "msda backward: weights");
    same(be, g_dsamp, dsamp, nsamp, 1e-5, "msda backward: samples");
    float *ptrs[] = {g_off, g_grid, g_att, g_samp, g_ao, g_dgrid, g_doff, g_datt, g_dsamp};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) be->release(ptrs[i]);
    free(off); free(grid); free(att); free(samp); free(ao); free(dgrid); free(doff); free(datt); free(dsamp);
}

#endif

// ---- a whole KAnoCLIP step and an evaluation batch ------------------------------------------------------------

static const float *random_weight(void *src, const char *name, const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = rand_buf(n, 0.05f);
    if (strstr(name, "norm") && strstr(name, "weight"))
        for (size_t i = 0; i < n; i++) x[i] += 1.0f;
    return x;
}

typedef struct { Kanoclip *m; KanoLosses l; float *grads, *maps, *score; } Side;

// Builds the model on `be` (the text tower on `device`), runs one forward/backward and one evaluation.
static Side run_side(const Backend *be, DeviceKind device, GemmPrecision prec, const ClipText *text, const KanoBatch *b,
                     int U, int S) {
    KanoclipConfig c = kanoclip_config_default();
    c.width = 64; c.text_width = 64; c.heads = 4; c.grid_h = 7; c.grid_w = 7; c.image_size = S; c.n_stages = 2;
    c.dat_groups = 2; c.device = device; c.precision = prec;
    Side s;
    s.m = kanoclip_new_on(be, &c, U, text);
    cr_assert_not_null(s.m, "%s", err_msg());
    int ids[4 * 2 * 32], eot[4 * 2];
    for (int k = 0; k < U; k++)
        for (int st = 0; st < 2; st++) {
            int words[3] = {st ? 600 : 500, 1000 + k, 269};
            cr_assert_eq(kanoclip_prompt_ids(ids + (k * 2 + st) * 32, eot + k * 2 + st, 32, c.n_ctx, words, 3), 0);
        }
    KanoPrompts pr = {U, 32, ids, eot, 1};
    rng_seed("kb");
    float *kb = rand_buf(U * 64, 1);
    cr_assert_eq(kanoclip_set_prompts(s.m, &pr), 0, "%s", err_msg());
    cr_assert_eq(kanoclip_set_kb(s.m, kb), 0);
    cr_assert_eq(kanoclip_forward_backward(s.m, b, &s.l), 0, "%s", err_msg());
    size_t n = kanoclip_layout_of(s.m)->total;
    s.grads = malloc(sizeof(float) * n);
    kanoclip_download_grads(s.m, s.grads);
    s.maps = malloc(sizeof(float) * b->B * S * S);
    s.score = malloc(sizeof(float) * b->B);
    cr_assert_eq(kanoclip_eval(s.m, b, s.maps, NULL, s.score), 0, "%s", err_msg());
    free(kb);
    return s;
}

// The step and the evaluation on `be` (the text tower on `device`) against the cpu backend, in TF32 and bf16.
static void step_matches_cpu(const Backend *be, DeviceKind device) {
    ClipConfig cc = {0};
    cc.text = (TowerShape){64, 2, 4, 128, 1e-5f, ACT_QUICK_GELU};
    cc.vocab_size = 49408; cc.context_length = 32; cc.eos_token_id = 49407; cc.projection_dim = 64;
    ClipText text;
    rng_seed("tower");
    cr_assert_eq(clip_text_bind(&text, &cc, random_weight, NULL), 0, "%s", err_msg());
    int B = 4, U = 3, S = 28, N = 49, P = 64;
    rng_seed("batch");
    float *stage = rand_buf((size_t)B * 2 * (N + 1) * P, 1), *glob = rand_buf(B * P, 1), *mask = rand_buf(B * S * S, 1);
    int label[4] = {0, 1, 1, 0}, cls[4] = {0, 1, 2, 1};
    KanoBatch b = {B, stage, glob, mask, label, cls};
    Side cpu = run_side(backend_cpu(), DEVICE_CPU, GEMM_FP32, &text, &b, U, S);
    GemmPrecision precs[2] = {GEMM_TF32, GEMM_BF16};
    for (int k = 0; k < 2; k++) {
        Side dev = run_side(be, device, precs[k], &text, &b, U, S);
        const char *pn = gemm_precision_name(precs[k]);
        float got[5] = {dev.l.total, dev.l.kd, dev.l.global, dev.l.focal, dev.l.dice};
        float want[5] = {cpu.l.total, cpu.l.kd, cpu.l.global, cpu.l.focal, cpu.l.dice};
        double tol = precs[k] == GEMM_TF32 ? 1e-3 : 1e-2;
        for (int i = 0; i < 5; i++)
            cr_assert(fabs(got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])), "%s: loss term %d: %.6g vs cpu %.6g",
                      pn, i, got[i], want[i]);
        size_t n = kanoclip_layout_of(cpu.m)->total;
        if (precs[k] == GEMM_BF16) assert_close(dev.grads, cpu.grads, n, 1e-2, "bf16 gradients");
        else assert_close(dev.grads, cpu.grads, n, 1e-3, "tf32 gradients");
        assert_close(dev.maps, cpu.maps, (size_t)B * S * S, tol, "eval maps");
        assert_close(dev.score, cpu.score, B, tol, "eval scores");
        fprintf(stderr, "cuda_heads %s: loss %.6g (cpu %.6g)\n", pn, dev.l.total, cpu.l.total);
        kanoclip_free(dev.m); free(dev.grads); free(dev.maps); free(dev.score);
    }
    kanoclip_free(cpu.m); free(cpu.grads); free(cpu.maps); free(cpu.score);
    free(stage); free(glob); free(mask);
}

#ifdef KANOCLIP_CUDA
Test(cuda_heads, kanoclip_step_and_eval_match_cpu) { step_matches_cpu(gpu(), DEVICE_CUDA); }
#endif

// The same comparison through the guard backend, which runs here: it proves the test's own orchestration (and
// that the step touches no backend buffer from the host) where no GPU is.
Test(cuda_heads, the_step_comparison_runs_through_the_guard_backend) { step_matches_cpu(backend_guard(), DEVICE_CPU); }
