// The text tower against tests/ref_clip.py (plain-PyTorch CLIP with HF semantics, float64): text_embeds from
// token ids, from input embeddings with context vectors, and the gradient to the input embeddings, for three
// shapes (widths, heads, activations, pooling rules) and every weights format. Tolerance: relative 1e-4.
#include "tests/npy.h"
#include "model/clip_model.h"
#include "common/error.h"

#define FIX "build/fixtures/clip"
#define TOL 1e-4

static int *ids_of(const char *dir, int *M, int *T) {
    Npy a = npy_load(dir, "ids");
    cr_assert_str_eq(a.dtype, "<i8");
    *M = (int)a.shape[0];
    *T = (int)a.shape[1];
    int *ids = malloc(sizeof(int) * a.count);
    for (size_t i = 0; i < a.count; i++) ids[i] = (int)((int64_t *)a.data)[i];
    free(a.data);
    return ids;
}

// shape: a, b or c; fmt: f32, f16, bf16 or bin (references: ref/ for f32 and bin, ref_f16/, ref_bf16/).
static void check_text(const char *shape, const char *fmt) {
    char dir[256], in[256], ref[256];
    snprintf(dir, sizeof dir, FIX "/%s/%s", shape, fmt);
    snprintf(in, sizeof in, FIX "/%s/ref", shape);
    snprintf(ref, sizeof ref, FIX "/%s/%s", shape,
             !strcmp(fmt, "f16") ? "ref_f16" : !strcmp(fmt, "bf16") ? "ref_bf16" : "ref");
    ClipModel *m = clip_model_load(dir, CLIP_TEXT);
    cr_assert_not_null(m, "%s: %s", dir, err_msg());
    const ClipText *t = &m->text;
    int M, T, W = t->shape.width, P = t->proj_dim;
    int *ids = ids_of(in, &M, &T);
    char what[300];

    // pooling positions
    Npy eot_ref = npy_load(ref, "eot");
    int eot[16];
    for (int b = 0; b < M; b++) {
        eot[b] = clip_text_eot(t, ids + (size_t)b * T, T);
        cr_assert_eq(eot[b], (int)((int64_t *)eot_ref.data)[b], "%s: text %d pools at %d", dir, b, eot[b]);
    }

    // from ids, inference run
    ClipTextRun *r = clip_text_run_new(t, 0);
    float *emb = calloc((size_t)M * P, 4);
    cr_assert_eq(clip_text_forward_ids(r, ids, M, T, emb), 0, "%s", err_msg());
    snprintf(what, sizeof what, "%s text_embeds", dir);
    assert_close(emb, npy_f32(ref, "text_embeds", NULL), (size_t)M * P, TOL, what);
    // one text alone gives the same row (batching does not leak between texts)
    float one[256];
    cr_assert_eq(clip_text_forward_ids(r, ids + T, 1, T, one), 0);
    snprintf(what, sizeof what, "%s text_embeds[1] alone", dir);
    assert_close(one, npy_f32(ref, "text_embeds", NULL) + P, (size_t)P, TOL, what);

    // input embeddings with context vectors at positions 1..n_ctx, forward kept, backward to the embeddings
    size_t nctx;
    float *ctx = npy_f32(in, "ctx", &nctx);
    int n_ctx = (int)(nctx / ((size_t)M * W));
    float *embeds = malloc(sizeof(float) * M * T * W);
    cr_assert_eq(clip_text_token_embeddings(t, ids, M, T, embeds), 0);
    for (int b = 0; b < M; b++)
        memcpy(embeds + ((size_t)b * T + 1) * W, ctx + (size_t)b * n_ctx * W, sizeof(float) * n_ctx * W);
    snprintf(what, sizeof what, "%s ctx_embeds", dir);
    assert_close(embeds, npy_f32(ref, "ctx_embeds", NULL), (size_t)M * T * W, 1e-6, what);
    ClipTextRun *rk = clip_text_run_new(t, 1);
    cr_assert_eq(clip_text_forward(rk, embeds, eot, M, T, emb), 0, "%s", err_msg());
    snprintf(what, sizeof what, "%s text_embeds_ctx", dir);
    assert_close(emb, npy_f32(ref, "text_embeds_ctx", NULL), (size_t)M * P, TOL, what);
    float *dembeds = calloc((size_t)M * T * W, 4);
    float *dtext = npy_f32(in, "dtext", NULL);
    cr_assert_eq(clip_text_backward(rk, dembeds, dtext), 0, "%s", err_msg());
    float *dref = npy_f32(ref, "dembeds", NULL);
    snprintf(what, sizeof what, "%s dembeds", dir);
    assert_close(dembeds, dref, (size_t)M * T * W, TOL, what);
    // the backward accumulates
    cr_assert_eq(clip_text_backward(rk, dembeds, dtext), 0);
    for (size_t i = 0; i < (size_t)M * T * W; i++) dref[i] *= 2;
    snprintf(what, sizeof what, "%s dembeds accumulated", dir);
    assert_close(dembeds, dref, (size_t)M * T * W, TOL, what);

    clip_text_run_free(r);
    clip_text_run_free(rk);
    clip_model_free(m);
}

Test(clip_text, shape_a_f32) { check_text("a", "f32"); }
Test(clip_text, shape_a_f16) { check_text("a", "f16"); }
Test(clip_text, shape_a_bf16) { check_text("a", "bf16"); }
Test(clip_text, shape_a_bin) { check_text("a", "bin"); }
Test(clip_text, shape_b_legacy_eos_f32) { check_text("b", "f32"); }
Test(clip_text, shape_b_legacy_eos_bin) { check_text("b", "bin"); }
Test(clip_text, shape_b_legacy_eos_f16) { check_text("b", "f16"); }
Test(clip_text, shape_c_gelu_argmax_f32) { check_text("c", "f32"); }
Test(clip_text, shape_c_gelu_argmax_f16) { check_text("c", "f16"); }
Test(clip_text, shape_c_gelu_argmax_bin) { check_text("c", "bin"); }

Test(clip_text, errors_name_the_problem) {
    ClipModel *m = clip_model_load(FIX "/a/f32", CLIP_TEXT);
    cr_assert_not_null(m);
    ClipTextRun *r = clip_text_run_new(&m->text, 0);
    int ids[4] = {49406, 320, 321, 0};  // no end-of-text token
    float out[64];
    cr_assert_eq(clip_text_forward_ids(r, ids, 1, 4, out), -1);
    cr_assert(strstr(err_msg(), "no end-of-text") != NULL, "%s", err_msg());
    int bad[3] = {49406, 60000, 49407};
    cr_assert_eq(clip_text_forward_ids(r, bad, 1, 3, out), -1);
    cr_assert(strstr(err_msg(), "60000") != NULL, "%s", err_msg());
    float d[10];
    cr_assert_eq(clip_text_backward(r, d, out), -1);  // not a keep_for_backward run
    clip_text_run_free(r);
    clip_model_free(m);
    cr_assert_null(clip_model_load(FIX "/a/images", CLIP_TEXT));
}
