// Both CLIP towers on the GPU against the CPU towers (the reference) with random weights: the vision tower's
// every output (image embeddings with and without post-LN, hidden layers, the V-V path, stage features) at an
// input size other than the checkpoint's, through each attention path (cuDNN's in bf16) and each precision; the
// text tower's forward and backward to the input embeddings, and one prompt-learning step (forward, backward,
// Adam on the context rows). Towers compound each op's rounding over layers, so the tolerances are 1e-4 (fp32),
// 5e-3 (TF32) and 5e-2 (bf16) here, against 1e-5 / 1e-3 / 1e-2 per op (tests/test_cuda_ops.c).
#include "tests/cuda_test.h"
#include "model/adam.h"
#include "model/clip_model.h"

#ifndef KANOCLIP_CUDA
Test(cuda_towers, skipped) { cr_skip_test("built without CUDA"); }
#else
#include "model/cuda/clip_cuda.h"

static const double TOWER_TOL[3] = {1e-4, 5e-3, 5e-2};

// Random weights of any shape; LayerNorm weights near 1, others small, so activations stay O(1) over layers.
static const float *random_tensor(void *src, const char *name, const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = rand_buf(n, 0.08f);
    int ln_weight = (strstr(name, "norm") || strstr(name, "layrnorm")) && strstr(name, "weight");
    if (ln_weight)
        for (size_t i = 0; i < n; i++) x[i] += 1.0f;
    return x;  // leaked: the towers borrow these for the test's life
}

static ClipConfig small_config(Activation act) {
    ClipConfig c = {0};
    c.text = (TowerShape){64, 2, 4, 128, 1e-5f, act};
    c.vision = (TowerShape){96, 3, 6, 192, 1e-5f, act};  // head size 16
    c.vocab_size = 300;
    c.context_length = 24;
    c.eos_token_id = 299;
    c.image_size = 24;
    c.patch_size = 4;
    c.channels = 3;
    c.projection_dim = 48;
    return c;
}

Test(cuda_towers, vision_every_output) {
    need_gpu();
    rng_seed("vision tower");
    ClipConfig cc = small_config(ACT_QUICK_GELU);
    ClipVision v;
    cr_assert_eq(clip_vision_bind(&v, &cc, random_tensor, NULL), 0, "%s", err_msg());
    int S = 30, B = 3, L = 3, vv_from = 2, W = 96, P = 48;  // grid 7 from a checkpoint grid of 6
    ClipVisionRun *cpu = clip_vision_run_new(&v, S, CLIP_POS_BICUBIC);
    ClipVisionCuda *gpu = clip_vision_cuda_new(&v, S, CLIP_POS_BICUBIC);
    cr_assert(cpu && gpu, "%s", err_msg());
    int T = clip_vision_tokens(cpu);
    cr_assert_eq(clip_vision_cuda_tokens(gpu), T);
    float *pixels = rand_buf((size_t)B * 3 * S * S, 2);
    int layers[] = {0, 1, 2, 3}, n = L + 1;
    float *want[3][4], *got[3][4], *emb[2], *emb_g[2];  // [hidden, vv, stages][layer]
    size_t sz[3] = {(size_t)B * T * W, (size_t)B * T * W, (size_t)B * T * P};
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < n; l++) { want[k][l] = malloc(4 * sz[k]); got[k][l] = malloc(4 * sz[k]); }
    for (int k = 0; k < 2; k++) { emb[k] = malloc(4 * B * P); emb_g[k] = malloc(4 * B * P); }
    ClipVisionOut o = {.image_embeds = emb[0], .image_embeds_noln = emb[1], .n_hidden = n, .hidden_layers = layers,
                       .hidden = want[0], .vv_from = vv_from, .n_vv = n, .vv_layers = layers, .vv = want[1],
                       .n_stages = n, .stage_layers = layers, .stages = want[2]};
    cr_assert_eq(clip_vision_forward(cpu, pixels, B, &o), 0, "%s", err_msg());
    ClipVisionOut og = o;
    og.image_embeds = emb_g[0]; og.image_embeds_noln = emb_g[1];
    og.hidden = got[0]; og.vv = got[1]; og.stages = got[2];
    const char *kind[3] = {"hidden", "vv", "stage"};
    char what[128];
    // each attention path in each precision; cuDNN's (bf16 / fp16 I/O) and the default in bf16, where cuDNN is
    // the default (a shape cuDNN declines falls back, logged; the outputs must match either way)
    struct { CudaAttentionMode mode; int pi; } runs[] = {
        {CUDA_ATTN_UNFUSED, 0},    {CUDA_ATTN_UNFUSED, 1},    {CUDA_ATTN_UNFUSED, 2}, {CUDA_ATTN_FUSED_FP32, 0},
        {CUDA_ATTN_FUSED_FP32, 1}, {CUDA_ATTN_FUSED_FP32, 2}, {CUDA_ATTN_CUDNN, 2},   {CUDA_ATTN_CUDNN_FP16, 2},
        {CUDA_ATTN_AUTO, 2},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int pi = runs[r].pi;
        cuda_attention_set_mode(runs[r].mode);
        cuda_ops_set_precision(PRECISIONS[pi]);
        cr_assert_eq(clip_vision_cuda_forward(gpu, pixels, B, &og), 0, "%s", err_msg());
        char mode[96];
        snprintf(mode, sizeof mode, "%s (asked %s) %s", cuda_attention_mode_name(cuda_attention_last_path()),
                 cuda_attention_mode_name(runs[r].mode), gemm_precision_name(PRECISIONS[pi]));
        if (runs[r].mode >= CUDA_ATTN_CUDNN && cuda_attention_last_path() == CUDA_ATTN_UNFUSED)
            cr_log_warn("%s: cuDNN fell back", mode);
        for (int k = 0; k < 2; k++) {
            snprintf(what, sizeof what, "%s image_embeds%s", mode, k ? "_noln" : "");
            assert_close(emb_g[k], emb[k], (size_t)B * P, TOWER_TOL[pi], what);
        }
        for (int k = 0; k < 3; k++)
            for (int l = 0; l < n; l++) {
                snprintf(what, sizeof what, "%s %s layer %d", mode, kind[k], l);
                assert_close(got[k][l], want[k][l], sz[k], TOWER_TOL[pi], what);
            }
    }
    // the asynchronous pair: outputs land only at finish, and a second submit before it is refused
    cuda_attention_set_mode(CUDA_ATTN_AUTO);
    cuda_ops_set_precision(GEMM_FP32);
    ClipVisionOut only = {.image_embeds = emb_g[0]};
    memset(emb_g[0], 0, 4 * B * P);
    cr_assert_eq(clip_vision_cuda_submit(gpu, pixels, B, &only), 0, "%s", err_msg());
    cr_assert_eq(clip_vision_cuda_submit(gpu, pixels, B, &only), -1);
    cr_assert_eq(clip_vision_cuda_finish(gpu), 0, "%s", err_msg());
    assert_close(emb_g[0], emb[0], (size_t)B * P, TOWER_TOL[0], "submit/finish image_embeds");
    clip_vision_cuda_free(gpu);
    clip_vision_run_free(cpu);
}

Test(cuda_towers, text_forward_backward_and_prompt_step) {
    need_gpu();
    rng_seed("text tower");
    ClipConfig cc = small_config(ACT_GELU);
    ClipText t;
    cr_assert_eq(clip_text_bind(&t, &cc, random_tensor, NULL), 0, "%s", err_msg());
    int B = 4, T = 24, W = 64, P = 48, n_ctx = 5;
    int eot[] = {9, 17, 12, 6};  // the computed length is 18; rows past each eot get no gradient
    size_t ne = (size_t)B * T * W;
    float *emb0 = rand_buf(ne, 0.5f), *dtext = rand_buf((size_t)B * P, 1);
    ClipTextRun *cpu = clip_text_run_new(&t, 1);
    ClipTextCuda *gpu = clip_text_cuda_new(&t, 1);
    cr_assert(cpu && gpu, "%s", err_msg());
    float *te = malloc(4 * B * P), *te_g = malloc(4 * B * P);
    float *demb = rand_buf(ne, 1), *demb_g = copy_buf(demb, ne);
    cr_assert_eq(clip_text_forward(cpu, emb0, eot, B, T, te), 0, "%s", err_msg());
    cr_assert_eq(clip_text_backward(cpu, demb, dtext), 0, "%s", err_msg());
    char what[128];
    for (int pi = 0; pi < 3; pi++) {
        cuda_ops_set_precision(PRECISIONS[pi]);
        const char *mode = gemm_precision_name(PRECISIONS[pi]);
        float *d = copy_buf(demb_g, ne);
        cr_assert_eq(clip_text_cuda_forward(gpu, emb0, eot, B, T, te_g), 0, "%s", err_msg());
        snprintf(what, sizeof what, "%s text_embeds", mode);
        assert_close(te_g, te, (size_t)B * P, TOWER_TOL[pi], what);
        cr_assert_eq(clip_text_cuda_backward(gpu, d, dtext), 0, "%s", err_msg());
        snprintf(what, sizeof what, "%s d embeds (accumulated onto random values)", mode);
        assert_close(d, demb, ne, TOWER_TOL[pi], what);
        free(d);
    }
    // One prompt-learning step: loss = <text_embeds, target>, context rows 1..n_ctx of each prompt learn by Adam.
    cuda_ops_set_precision(GEMM_FP32);
    size_t nc = (size_t)B * n_ctx * W;
    float *ctx = rand_buf(nc, 0.5f), *ctx_g = copy_buf(ctx, nc), *m = calloc(nc, 4), *v = calloc(nc, 4);
    float *gm = cuda_alloc_floats(nc), *gv = cuda_alloc_floats(nc), *gp = to_dev(ctx, nc), *gg = cuda_alloc_floats(nc);
    cuda_zero(gm, nc);
    cuda_zero(gv, nc);
    float *grad[2] = {malloc(4 * nc), malloc(4 * nc)}, *emb = copy_buf(emb0, ne);
    for (int dev = 0; dev < 2; dev++) {
        float *c = dev ? ctx_g : ctx;
        for (int b = 0; b < B; b++) memcpy(emb + ((size_t)b * T + 1) * W, c + (size_t)b * n_ctx * W, 4 * n_ctx * W);
        float *de = calloc(ne, 4);
        if (dev) {
            cr_assert_eq(clip_text_cuda_forward(gpu, emb, eot, B, T, te_g), 0, "%s", err_msg());
            cr_assert_eq(clip_text_cuda_backward(gpu, de, dtext), 0, "%s", err_msg());
        } else {
            cr_assert_eq(clip_text_forward(cpu, emb, eot, B, T, te), 0, "%s", err_msg());
            cr_assert_eq(clip_text_backward(cpu, de, dtext), 0, "%s", err_msg());
        }
        float *g = grad[dev];
        for (int b = 0; b < B; b++) memcpy(g + (size_t)b * n_ctx * W, de + ((size_t)b * T + 1) * W, 4 * n_ctx * W);
        if (dev) {
            cuda_upload(gg, g, nc);
            adam_update_cuda(gp, gg, gm, gv, nc, 1, 1e-3f, 0.5f, 0.999f, 1e-8f);
        } else {
            adam_update(ctx, g, m, v, nc, 1, 1e-3f, 0.5f, 0.999f, 1e-8f);
        }
        free(de);
    }
    assert_close(grad[1], grad[0], nc, TOWER_TOL[0], "prompt step: context gradients");
    // The moments follow the gradient smoothly; the first step itself moves each parameter by about ±lr (the
    // sign of its gradient), so the parameters get a tolerance that one sign flip of a near-zero gradient
    // (2 lr against parameters of size ~0.5) would still pass, while a wrong or missing update would not.
    check_dev(gm, m, nc, 1e-4, "prompt step: Adam first moments");
    check_dev(gv, v, nc, 1e-4, "prompt step: Adam second moments");
    check_dev(gp, ctx, nc, 5e-3, "prompt step: updated contexts");
    float *after = to_host(gp, nc);
    double moved = 0;
    for (size_t i = 0; i < nc; i++) moved += fabs(after[i] - ctx_g[i]);
    cr_assert(fabs(moved / nc - 1e-3) < 1e-4, "prompt step: mean |update| %g, expected about lr = 1e-3", moved / nc);
    clip_text_cuda_free(gpu);
    clip_text_run_free(cpu);
}
#endif
