// The vision tower against tests/ref_clip.py (plain-PyTorch CLIP with HF semantics, float64): image_embeds,
// every hidden layer, the CLIP-VV path and stage features, for three shapes (widths, heads, patch sizes, GELU
// kinds; b and c at an input size other than the checkpoint's, positions resized bilinearly and bicubically)
// and every weights format. Tolerance: relative 1e-4.
#include "tests/npy.h"
#include "model/clip_model.h"
#include "common/error.h"

#define FIX "build/fixtures/clip"
#define TOL 1e-4

static void meta(const char *in, int *S, int *vv_from, int *L) {
    Npy a = npy_load(in, "meta");
    int64_t *m = a.data;
    *S = (int)m[0], *vv_from = (int)m[1], *L = (int)m[2];
    free(a.data);
}

static void check_vision(const char *shape, const char *fmt) {
    char dir[256], in[256], ref[256], name[64], what[300];
    snprintf(dir, sizeof dir, FIX "/%s/%s", shape, fmt);
    snprintf(in, sizeof in, FIX "/%s/ref", shape);
    snprintf(ref, sizeof ref, FIX "/%s/%s", shape,
             !strcmp(fmt, "f16") ? "ref_f16" : !strcmp(fmt, "bf16") ? "ref_bf16" : "ref");
    ClipModel *m = clip_model_load(dir, CLIP_VISION);
    cr_assert_not_null(m, "%s: %s", dir, err_msg());
    const ClipVision *v = &m->vision;
    int S, vv_from, L;
    meta(in, &S, &vv_from, &L);
    cr_assert_eq(L, v->shape.layers);
    size_t npx;
    float *pixels = npy_f32(in, "pixels", &npx);
    int B = (int)(npx / ((size_t)3 * S * S)), W = v->shape.width, P = v->proj_dim;

    ClipVisionRun *r = clip_vision_run_new(v, S, CLIP_POS_BILINEAR);
    cr_assert_not_null(r, "%s", err_msg());
    int T = clip_vision_tokens(r);
    cr_assert_eq(T, (S / v->patch_size) * (S / v->patch_size) + 1);
    int layers[64];
    float *hidden[64], *vv[64], *stages[64];
    for (int l = 0; l <= L; l++) {
        layers[l] = l;
        hidden[l] = malloc(sizeof(float) * B * T * W);
        vv[l] = malloc(sizeof(float) * B * T * W);
        stages[l] = malloc(sizeof(float) * B * T * P);
    }
    float *emb = malloc(sizeof(float) * B * P), *emb_noln = malloc(sizeof(float) * B * P);
    ClipVisionOut out = {.image_embeds = emb, .image_embeds_noln = emb_noln, .n_hidden = L + 1,
                         .hidden_layers = layers, .hidden = hidden, .vv_from = vv_from, .n_vv = L + 1,
                         .vv_layers = layers, .vv = vv, .n_stages = L + 1, .stage_layers = layers, .stages = stages};
    cr_assert_eq(clip_vision_forward(r, pixels, B, &out), 0, "%s", err_msg());
    snprintf(what, sizeof what, "%s image_embeds", dir);
    assert_close(emb, npy_f32(ref, "image_embeds", NULL), (size_t)B * P, TOL, what);
    snprintf(what, sizeof what, "%s image_embeds_noln", dir);
    assert_close(emb_noln, npy_f32(ref, "image_embeds_noln", NULL), (size_t)B * P, TOL, what);
    for (int l = 0; l <= L; l++) {
        snprintf(name, sizeof name, "hidden_%02d", l);
        snprintf(what, sizeof what, "%s %s", dir, name);
        assert_close(hidden[l], npy_f32(ref, name, NULL), (size_t)B * T * W, TOL, what);
        snprintf(name, sizeof name, "vv_%02d", l);
        snprintf(what, sizeof what, "%s %s", dir, name);
        assert_close(vv[l], npy_f32(ref, name, NULL), (size_t)B * T * W, TOL, what);
        snprintf(name, sizeof name, "stage_%02d", l);
        snprintf(what, sizeof what, "%s %s", dir, name);
        assert_close(stages[l], npy_f32(ref, name, NULL), (size_t)B * T * P, TOL, what);
    }

    // the method's entry point: stage features at the last two layers and the global feature, one image alone
    int st[2] = {L - 1, L};
    float *st_out[2] = {stages[0], stages[1]};
    cr_assert_eq(clip_vision_stage_features(r, pixels + (size_t)3 * S * S, 1, vv_from, 2, st, st_out, emb, 1), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "stage_%02d", st[i]);
        snprintf(what, sizeof what, "%s %s of image 1 alone", dir, name);
        assert_close(st_out[i], npy_f32(ref, name, NULL) + (size_t)T * P, (size_t)T * P, TOL, what);
    }
    snprintf(what, sizeof what, "%s global of image 1 alone", dir);
    assert_close(emb, npy_f32(ref, "image_embeds", NULL) + P, (size_t)P, TOL, what);

    // a shallow request stops early and still matches
    ClipVisionOut one = {.n_hidden = 1, .hidden_layers = &layers[1], .hidden = hidden};
    cr_assert_eq(clip_vision_forward(r, pixels, B, &one), 0);
    snprintf(what, sizeof what, "%s hidden_01 alone", dir);
    assert_close(hidden[0], npy_f32(ref, "hidden_01", NULL), (size_t)B * T * W, TOL, what);

    // positions resized bicubically (shapes whose input size differs from the checkpoint's)
    if (S != v->image_size) {
        ClipVisionRun *rb = clip_vision_run_new(v, S, CLIP_POS_BICUBIC);
        ClipVisionOut ob = {.image_embeds = emb, .n_hidden = 1, .hidden_layers = &layers[L], .hidden = hidden};
        cr_assert_eq(clip_vision_forward(rb, pixels, B, &ob), 0);
        snprintf(what, sizeof what, "%s image_embeds (bicubic positions)", dir);
        assert_close(emb, npy_f32(ref, "image_embeds_bicubic", NULL), (size_t)B * P, TOL, what);
        snprintf(name, sizeof name, "hidden_%02d_bicubic", L);
        snprintf(what, sizeof what, "%s %s", dir, name);
        assert_close(hidden[0], npy_f32(ref, name, NULL), (size_t)B * T * W, TOL, what);
        clip_vision_run_free(rb);
    }
    clip_vision_run_free(r);
    clip_model_free(m);
}

Test(clip_vision, shape_a_f32) { check_vision("a", "f32"); }
Test(clip_vision, shape_a_f16) { check_vision("a", "f16"); }
Test(clip_vision, shape_a_bf16) { check_vision("a", "bf16"); }
Test(clip_vision, shape_a_bin) { check_vision("a", "bin"); }
Test(clip_vision, shape_b_upsampled_positions_f32) { check_vision("b", "f32"); }
Test(clip_vision, shape_b_upsampled_positions_f16) { check_vision("b", "f16"); }
Test(clip_vision, shape_b_upsampled_positions_bin) { check_vision("b", "bin"); }
Test(clip_vision, shape_c_gelu_downsampled_positions_f32) { check_vision("c", "f32"); }
Test(clip_vision, shape_c_gelu_downsampled_positions_f16) { check_vision("c", "f16"); }
Test(clip_vision, shape_c_gelu_downsampled_positions_bin) { check_vision("c", "bin"); }

Test(clip_vision, errors_name_the_problem) {
    ClipModel *m = clip_model_load(FIX "/a/f32", CLIP_VISION);
    cr_assert_not_null(m);
    cr_assert_null(clip_vision_run_new(&m->vision, 4, CLIP_POS_BILINEAR));
    cr_assert(strstr(err_msg(), "smaller than the patch size") != NULL, "%s", err_msg());
    ClipVisionRun *r = clip_vision_run_new(&m->vision, 32, CLIP_POS_BILINEAR);
    float px[3 * 32 * 32] = {0}, buf[17 * 64];
    int bad = 9;
    float *hs[1] = {buf};
    ClipVisionOut out = {.n_hidden = 1, .hidden_layers = &bad, .hidden = hs};
    cr_assert_eq(clip_vision_forward(r, px, 1, &out), -1);
    cr_assert(strstr(err_msg(), "hidden layer 9 outside 0..3") != NULL, "%s", err_msg());
    ClipVisionOut out2 = {.vv_from = 4};
    cr_assert_eq(clip_vision_forward(r, px, 1, &out2), -1);
    clip_vision_run_free(r);
    clip_model_free(m);
}
