// The device dispatch of model/towers.h: on the CPU it is the CPU towers exactly (bit for bit); asking for CUDA
// either works (a GPU is present: outputs within the fp32 tower tolerance, 1e-4) or fails at creation with the
// message that says why (built without CUDA / no device). Random small towers; runs in every build.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/towers.h"

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = scale * frand();
    return x;
}
static const float *random_tensor(void *src, const char *name, const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = rand_buf(n, 0.08f);
    if ((strstr(name, "norm") || strstr(name, "layrnorm")) && strstr(name, "weight"))
        for (size_t i = 0; i < n; i++) x[i] += 1.0f;
    return x;
}
static double rel_error(const float *got, const float *want, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= md)) md = d;
        if (fabs(want[i]) > mr) mr = fabs(want[i]);
    }
    return md / (mr + 1e-30);
}

static ClipConfig config(void) {
    ClipConfig c = {0};
    c.text = (TowerShape){32, 2, 4, 64, 1e-5f, ACT_QUICK_GELU};
    c.vision = (TowerShape){48, 2, 4, 96, 1e-5f, ACT_QUICK_GELU};
    c.vocab_size = 200; c.context_length = 16; c.eos_token_id = 199;
    c.image_size = 16; c.patch_size = 4; c.channels = 3; c.projection_dim = 24;
    return c;
}

// What asking for CUDA must do on this machine: 1 = work, 0 = fail with the right message (checked).
static int cuda_expected(void) {
    if (device_available()) return 1;
    return 0;
}
static void check_cuda_refusal(const void *made) {
    cr_assert_null(made);
    const char *want = device_cuda_built() ? "CUDA was asked for, but" : "this binary was built without CUDA";
    cr_assert(strstr(err_msg(), want), "%s", err_msg());
}

Test(towers, vision_dispatch) {
    ClipConfig cc = config();
    ClipVision v;
    cr_assert_eq(clip_vision_bind(&v, &cc, random_tensor, NULL), 0, "%s", err_msg());
    int S = 20, B = 2, P = 24, layers[] = {1, 2};
    float *px = rand_buf((size_t)B * 3 * S * S, 2);
    ClipVisionRun *ref = clip_vision_run_new(&v, S, CLIP_POS_BILINEAR);
    VisionTower *cpu = vision_tower_new(&v, S, CLIP_POS_BILINEAR, DEVICE_CPU, GEMM_FP32);
    cr_assert(ref && cpu, "%s", err_msg());
    int T = clip_vision_tokens(ref);
    cr_assert_eq(vision_tower_tokens(cpu), T);
    float *e0 = malloc(4 * B * P), *e1 = malloc(4 * B * P), *s0[2], *s1[2];
    for (int i = 0; i < 2; i++) { s0[i] = malloc(4 * B * T * P); s1[i] = malloc(4 * B * T * P); }
    ClipVisionOut o0 = {.image_embeds = e0, .vv_from = 1, .n_stages = 2, .stage_layers = layers, .stages = s0};
    ClipVisionOut o1 = o0;
    o1.image_embeds = e1; o1.stages = s1;
    cr_assert_eq(clip_vision_forward(ref, px, B, &o0), 0, "%s", err_msg());
    cr_assert_eq(vision_tower_submit(cpu, px, B, &o1), 0, "%s", err_msg());
    cr_assert_eq(vision_tower_finish(cpu), 0, "%s", err_msg());
    cr_assert(memcmp(e0, e1, 4 * B * P) == 0, "cpu dispatch changed image_embeds");
    for (int i = 0; i < 2; i++) cr_assert(memcmp(s0[i], s1[i], 4 * B * T * P) == 0, "cpu dispatch changed stage %d", i);
    VisionTower *gpu = vision_tower_new(&v, S, CLIP_POS_BILINEAR, DEVICE_CUDA, GEMM_FP32);
    if (!cuda_expected()) {
        check_cuda_refusal(gpu);
    } else {
        cr_assert_not_null(gpu, "%s", err_msg());
        cr_assert_eq(vision_tower_forward(gpu, px, B, &o1), 0, "%s", err_msg());
        cr_assert(rel_error(e1, e0, B * P) <= 1e-4, "cuda image_embeds: %g", rel_error(e1, e0, B * P));
        for (int i = 0; i < 2; i++)
            cr_assert(rel_error(s1[i], s0[i], (size_t)B * T * P) <= 1e-4, "cuda stage %d", i);
        vision_tower_free(gpu);
    }
    vision_tower_free(cpu);
    clip_vision_run_free(ref);
}

Test(towers, text_dispatch) {
    ClipConfig cc = config();
    ClipText t;
    cr_assert_eq(clip_text_bind(&t, &cc, random_tensor, NULL), 0, "%s", err_msg());
    int B = 3, T = 16, W = 32, P = 24;
    int ids[3 * 16] = {0};
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < T; i++) ids[b * T + i] = 1 + (int)((frand() + 1) * 90);
        ids[b * T + 5 + 3 * b] = 199;  // EOT at 5, 8, 11
    }
    ClipTextRun *ref = clip_text_run_new(&t, 1);
    TextTower *cpu = text_tower_new(&t, 1, DEVICE_CPU, GEMM_FP32);
    cr_assert(ref && cpu, "%s", err_msg());
    float *e0 = malloc(4 * B * P), *e1 = malloc(4 * B * P), *dt = rand_buf((size_t)B * P, 1);
    float *d0 = calloc((size_t)B * T * W, 4), *d1 = calloc((size_t)B * T * W, 4);
    cr_assert_eq(clip_text_forward_ids(ref, ids, B, T, e0), 0, "%s", err_msg());
    cr_assert_eq(clip_text_backward(ref, d0, dt), 0, "%s", err_msg());
    cr_assert_eq(text_tower_forward_ids(cpu, ids, B, T, e1), 0, "%s", err_msg());
    cr_assert_eq(text_tower_backward(cpu, d1, dt), 0, "%s", err_msg());
    cr_assert(memcmp(e0, e1, 4 * B * P) == 0, "cpu dispatch changed text_embeds");
    cr_assert(memcmp(d0, d1, 4 * B * T * W) == 0, "cpu dispatch changed the embedding gradient");
    TextTower *gpu = text_tower_new(&t, 1, DEVICE_CUDA, GEMM_FP32);
    if (!cuda_expected()) {
        check_cuda_refusal(gpu);
    } else {
        cr_assert_not_null(gpu, "%s", err_msg());
        memset(d1, 0, 4 * B * T * W);
        cr_assert_eq(text_tower_forward_ids(gpu, ids, B, T, e1), 0, "%s", err_msg());
        cr_assert_eq(text_tower_backward(gpu, d1, dt), 0, "%s", err_msg());
        cr_assert(rel_error(e1, e0, B * P) <= 1e-4, "cuda text_embeds: %g", rel_error(e1, e0, B * P));
        cr_assert(rel_error(d1, d0, (size_t)B * T * W) <= 1e-4, "cuda dembeds: %g", rel_error(d1, d0, (size_t)B * T * W));
        text_tower_free(gpu);
    }
    text_tower_free(cpu);
    clip_text_run_free(ref);
}
