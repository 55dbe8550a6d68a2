// MVFA-AD's zero-shot head (model/baseline_mvfa.c, mvfa_adapter.c, frozen_blocks.c) against tests/ref_mvfa.py: its
// public code's arithmetic in PyTorch (float64) on a tiny open_clip-style CLIP with adapters after layers 2, 3 and 6
// of 6. Text features, image scores, pixel maps, the training loss and every adapter's gradient with and without
// masks: relative error 1e-4 (max |diff| / max |ref| over the buffer). Three Adam steps through its two optimisers
// (masks, none, masks): the parameter updates within 1e-3 of the largest. Plus the resumable state and bad layers.
#include "tests/clip_batch_fixture.h"
#include "model/baselines.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <unistd.h>

#define FIX "build/fixtures/mvfa"
#define TOL 1e-4
#define CLS "retinal OCT"

// MVFA_VERBOSE=1 prints each measured relative error (for reports).
#define check_close(got, want, n, tol, what)                                                                   \
    do {                                                                                                    \
        if (getenv("MVFA_VERBOSE")) fprintf(stderr, "%-24s rel err %.3g\n", (what), rel_error((got), (want), (n))); \
        assert_close((got), (want), (n), (tol), (what));                                                    \
    } while (0)

static int B = 3, S = 40;
static const char *names[3] = {CLS, CLS, CLS};

static void setup(void) { clip_batch_load(FIX); }
static void teardown(void) { clip_batch_free(); }

TestSuite(mvfa, .init = setup, .fini = teardown, .timeout = 120);

static BaselineConfig config(void) {
    BaselineConfig c;
    baseline_config_defaults(&c, BL_MVFA, model->vision.shape.layers);
    c.image_size = S;
    int layers[] = {2, 3, 6};
    cr_assert_eq(baseline_config_set_list(&c, "layers", layers, 3), 0);
    return c;
}

// A host copy of the head's parameters (the block lives on its backend).
static float *params_of(const Baseline *b) {
    float *x = malloc(sizeof(float) * (baseline_n_params(b) + 1));
    baseline_download_params(b, x);
    return x;
}

static Baseline *head(void) {
    BaselineConfig c = config();
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    size_t n;
    float *p = npy_f32(FIX, "params", &n);
    cr_assert_eq(n, baseline_n_params(b), "%zu parameters, the reference has %zu", baseline_n_params(b), n);
    baseline_upload_params(b, p);
    free(p);
    return b;
}

Test(mvfa, published_defaults) {
    BaselineConfig c;
    baseline_config_defaults(&c, BL_MVFA, 24);
    cr_assert_eq(c.image_size, 240);
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(c.layers[0], 6);
    cr_assert_eq(c.layers[3], 24);
    cr_assert_float_eq(c.logit_scale, 100.0f, 0);
    cr_assert_eq(c.softmax_first, 0);
    cr_assert_eq(c.align_corners, 1);
    cr_assert_eq(c.pixel_norm, 0);
    cr_assert_eq(c.pos_interp, CLIP_POS_BICUBIC_AA);
    cr_assert_float_eq(c.adapter_keep, 0.8f, 0);
    cr_assert_float_eq(c.adapter_mix, 0.1f, 0);
    cr_assert_float_eq(c.lr, 1e-4f, 0);
    cr_assert_eq(baseline_method_from_name("mvfa-ad"), BL_MVFA);
    cr_assert_str_eq(baseline_method_name(BL_MVFA), "mvfa-ad");
    cr_assert_eq(baseline_config_set(&c, "adapter_keep", "0.7"), 0);
    cr_assert_float_eq(c.adapter_keep, 0.7f, 0);
    cr_assert_eq(baseline_config_set(&c, "normalize", "true"), 0);
    cr_assert_eq(c.pixel_norm, 1);
    cr_assert_eq(baseline_config_set(&c, "adapter_mix", "x"), -1);
    cr_assert(strstr(err_msg(), "train.baseline.adapter_mix"), "%s", err_msg());
    // APRIL-GAN's ensemble with the prompt name, as MVFA-AD's utils.py and prompt.py REAL_NAME
    char **s;
    int n = baseline_prompt_sentences(&c, CLS, 1, &s);
    cr_assert_eq(n, 175);
    cr_assert_str_eq(s[0], "a bad photo of a damaged retinal OCT.");
    baseline_free_strings(s, n);
    cr_assert_str_eq(baseline_class_arg(&c, "retina", "retinal OCT"), "retinal OCT");
}

Test(mvfa, text_scores_and_maps) {
    BaselineConfig c = config();
    float text[2 * 24];
    cr_assert_eq(baseline_text_features(&model->text, tok, &c, CLS, text), 0, "%s", err_msg());
    float *ref = npy_f32(FIX, "text", NULL);
    check_close(text, ref, 48, TOL, "text features");
    free(ref);
    Baseline *b = head();
    float scores[3], *maps = malloc(sizeof(float) * B * S * S);
    cr_assert_eq(baseline_score_batch(b, CLS, pixels, B, scores, maps), 0, "%s", err_msg());
    ref = npy_f32(FIX, "scores", NULL);
    check_close(scores, ref, B, TOL, "image scores");
    free(ref);
    size_t n;
    ref = npy_f32(FIX, "maps", &n);
    cr_assert_eq(n, (size_t)B * S * S);
    check_close(maps, ref, n, TOL, "pixel maps");
    free(ref);
    // one image alone scores as it does in the batch
    float one, *map1 = malloc(sizeof(float) * S * S);
    cr_assert_eq(baseline_score_batch(b, CLS, pixels + 3 * S * S, 1, &one, map1), 0, "%s", err_msg());
    cr_assert_float_eq(one, scores[1], 1e-5);
    free(map1);
    free(maps);
    baseline_free(b);
}

static void check_loss_grad(Baseline *b, const float *m, const char *tag) {
    size_t n = baseline_n_params(b);
    float loss, *grad = calloc(n, sizeof(float));
    cr_assert_eq(baseline_loss_grad(b, pixels, m, labels, names, B, &loss, grad), 0, "%s", err_msg());
    char name[64];
    snprintf(name, sizeof name, "loss%s", tag);
    float *ref = npy_f32(FIX, name, NULL);
    check_close(&loss, ref, 1, TOL, name);
    free(ref);
    snprintf(name, sizeof name, "grad%s", tag);
    size_t ng;
    ref = npy_f32(FIX, name, &ng);
    cr_assert_eq(ng, n);
    check_close(grad, ref, n, TOL, name);
    // the gradient reaches every adapter (fc1) through the frozen blocks between the layers, but for the last
    // layer's segmentation adapter in a batch without masks: its tokens feed the segmentation loss alone
    size_t per = n / 6;
    for (int k = 0; k < 6; k++) {
        double s = 0;
        for (size_t i = 0; i < per / 2; i++) s += fabs(grad[k * per + i]);
        if (!m && k == 2) cr_assert_eq(s, 0, "%s: the last segmentation adapter has a gradient", tag);
        else cr_assert_gt(s, 0, "%s: adapter %d (fc1) has no gradient", tag, k);
    }
    free(ref);
    free(grad);
}

Test(mvfa, loss_and_gradients) {
    Baseline *b = head();
    check_loss_grad(b, masks, "");
    check_loss_grad(b, NULL, "_det");  // a batch without pixel ground truth: the detection terms alone
    baseline_free(b);
}

// train_zero.py's two optimisers: the segmentation adapters step only with masks, each with its own step count
// (so its bias correction after masks, none, masks is that of step 2, not 3).
Test(mvfa, two_optimisers_three_steps) {
    Baseline *b = head();
    size_t n = baseline_n_params(b);
    float *p0 = params_of(b), loss;
    const float *m[3] = {masks, NULL, masks};
    for (int s = 0; s < 3; s++)
        cr_assert_eq(baseline_train_step(b, pixels, m[s], labels, names, B, &loss), 0, "%s", err_msg());
    cr_assert_eq(baseline_step(b), 3);
    float *ref = npy_f32(FIX, "params_adam3", NULL), *got = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
    float *pb = params_of(b);
    for (size_t i = 0; i < n; i++) got[i] = pb[i] - p0[i], want[i] = ref[i] - p0[i];
    check_close(got, want, n, 1e-3, "3 Adam updates");
    free(p0); free(ref); free(got); free(want); free(pb);
    baseline_free(b);
}

Test(mvfa, state_keeps_both_step_counts) {
    char dir[] = "/tmp/mvfa_stateXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/state.bin", dir);
    Baseline *a = head(), *b = head();
    float la, lb;
    cr_assert_eq(baseline_train_step(a, pixels, masks, labels, names, B, &la), 0, "%s", err_msg());
    cr_assert_eq(baseline_train_step(a, pixels, NULL, labels, names, B, &la), 0, "%s", err_msg());
    cr_assert_eq(baseline_save(a, path), 0, "%s", err_msg());
    cr_assert_eq(baseline_load(b, path), 0, "%s", err_msg());
    cr_assert_eq(baseline_step(b), 2);
    cr_assert_eq(baseline_train_step(a, pixels, masks, labels, names, B, &la), 0);
    cr_assert_eq(baseline_train_step(b, pixels, masks, labels, names, B, &lb), 0);
    cr_assert_float_eq(la, lb, 0);
    float *pa = params_of(a), *pb = params_of(b);
    cr_assert_arr_eq(pa, pb, baseline_n_params(a) * sizeof(float));
    free(pa); free(pb);
    remove(path);
    rmdir(dir);
    baseline_free(a);
    baseline_free(b);
}

Test(mvfa, features_and_bad_layers) {
    Baseline *b = head();
    BaselineFeatureShape s;
    baseline_feature_shape(b, &s);
    cr_assert_eq(s.n_blocks, 1);
    cr_assert_eq(s.rows[0], 26);  // 5 x 5 patches + the class row
    cr_assert_eq(s.ld, 32);       // the raw stream after layer 2
    BaselineFeatures *f = baseline_features_new(b, B);
    cr_assert_eq(baseline_extract(b, pixels, f), 0, "%s", err_msg());
    float s1[3], s2[3], *m1 = malloc(sizeof(float) * B * S * S), *m2 = malloc(sizeof(float) * B * S * S);
    cr_assert_eq(baseline_score_features(b, CLS, f, s1, m1), 0);
    cr_assert_eq(baseline_score_batch(b, CLS, pixels, B, s2, m2), 0);
    cr_assert_arr_eq(s1, s2, sizeof s1);
    cr_assert_arr_eq(m1, m2, sizeof(float) * B * S * S);
    free(m1); free(m2);
    baseline_features_free(f);
    baseline_free(b);
    BaselineConfig c = config();
    int down[] = {3, 2, 6};
    cr_assert_eq(baseline_config_set_list(&c, "layers", down, 3), 0);
    cr_assert_null(baseline_new(&c, model, tok));
    cr_assert(strstr(err_msg(), "map layers must increase"), "%s", err_msg());
}
