// The baselines (model/baselines.h) against tests/ref_baselines.py: a tiny random CLIP, each baseline written in
// plain PyTorch (float64) as its public code computes it. Image scores, pixel maps, text features, training
// losses and gradients: relative error 1e-4 (max |diff| / max |ref| over the buffer). Plus the WinCLIP window
// and harmonic-aggregation examples of anomalib's docstrings, prompt counts and config errors; and the heads on
// the guard backend (model/backend.h) against the cpu one, byte for byte.
#include "tests/clip_batch_fixture.h"
#include "model/baselines.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <unistd.h>

#define FIX "build/fixtures/baselines"
#define TOL 1e-4
#define CLS "metal_nut"

// BASELINES_VERBOSE=1 prints each measured relative error (for reports).
#define check_close(got, want, n, what)                                                                  \
    do {                                                                                               \
        if (getenv("BASELINES_VERBOSE")) fprintf(stderr, "%-32s rel err %.3g\n", (what), rel_error((got), (want), (n))); \
        assert_close((got), (want), (n), TOL, (what));                                                 \
    } while (0)

static int B = 3, S = 48;

static void setup(void) { clip_batch_load(FIX); }
static void teardown(void) { clip_batch_free(); }

static BaselineConfig config(BaselineMethod m) {
    BaselineConfig c;
    baseline_config_defaults(&c, m, model->vision.shape.layers);
    c.image_size = S;
    return c;
}

// Scores and maps of one configured baseline against the fixtures TAG_scores / TAG_maps.
static void check_scores(Baseline *b, const char *tag) {
    float scores[3], *maps = malloc(sizeof(float) * B * S * S);
    cr_assert_eq(baseline_score_batch(b, CLS, pixels, B, scores, maps), 0, "%s: %s", tag, err_msg());
    char name[64], what[96];
    snprintf(name, sizeof name, "%s_scores", tag);
    float *ref = npy_f32(FIX, name, NULL);
    snprintf(what, sizeof what, "%s image scores", tag);
    check_close(scores, ref, B, what);
    free(ref);
    snprintf(name, sizeof name, "%s_maps", tag);
    size_t n;
    ref = npy_f32(FIX, name, &n);
    cr_assert_eq(n, (size_t)B * S * S);
    snprintf(what, sizeof what, "%s pixel maps", tag);
    check_close(maps, ref, n, what);
    free(ref);
    free(maps);
}

static void check_text(const BaselineConfig *c, const char *tag) {
    float text[2 * 24];
    cr_assert_eq(baseline_text_features(&model->text, tok, c, CLS, text), 0, "%s", err_msg());
    char name[64];
    snprintf(name, sizeof name, "%s_text", tag);
    float *ref = npy_f32(FIX, name, NULL);
    check_close(text, ref, 48, name);
    free(ref);
}

static void load_params(Baseline *b, const char *tag) {
    char name[64];
    snprintf(name, sizeof name, "%s_params", tag);
    size_t n;
    float *p = npy_f32(FIX, name, &n);
    cr_assert_eq(n, baseline_n_params(b), "%s: %zu parameters, the reference has %zu", tag, baseline_n_params(b), n);
    baseline_upload_params(b, p);
    free(p);
}

static void check_loss_grad(Baseline *b, const char *tag) {
    const char *names[3] = {CLS, CLS, CLS};
    size_t n = baseline_n_params(b);
    float loss, *grad = calloc(n, sizeof(float));
    cr_assert_eq(baseline_loss_grad(b, pixels, masks, labels, names, B, &loss, grad), 0, "%s", err_msg());
    char name[64];
    snprintf(name, sizeof name, "%s_loss", tag);
    float *ref = npy_f32(FIX, name, NULL);
    check_close(&loss, ref, 1, name);
    free(ref);
    snprintf(name, sizeof name, "%s_grad", tag);
    size_t ng;
    ref = npy_f32(FIX, name, &ng);
    cr_assert_eq(ng, n);
    check_close(grad, ref, n, name);
    free(ref);
    free(grad);
}

TestSuite(baselines, .init = setup, .fini = teardown, .timeout = 120);

Test(baselines, clip) {
    BaselineConfig c = config(BL_CLIP);
    check_text(&c, "clip");
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    check_scores(b, "clip");
    baseline_free(b);
}

Test(baselines, clip_ac) {
    BaselineConfig c = config(BL_CLIP_AC);
    check_text(&c, "clipac");
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    check_scores(b, "clipac");
    baseline_free(b);
}

Test(baselines, winclip) {
    BaselineConfig c = config(BL_WINCLIP);
    check_text(&c, "winclip");  // the raw category, as anomalib
    BaselineConfig spaced = c;
    spaced.class_name = BL_CLASS_SPACES;
    check_text(&spaced, "winclip_spaces");  // the switch: "metal nut"
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    check_scores(b, "winclip");
    baseline_free(b);
}

Test(baselines, april_gan) {
    BaselineConfig c = config(BL_APRILGAN);
    check_text(&c, "aprilgan");
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    load_params(b, "aprilgan");
    check_scores(b, "aprilgan");
    check_loss_grad(b, "aprilgan");
    baseline_free(b);
}

static Baseline *anomalyclip_new_at(int aliased, float lambda, int vv_from, int fp16) {
    BaselineConfig c = config(BL_ANOMALYCLIP);
    c.vv_from = vv_from;
    c.deep_fp16 = fp16;
    c.deep_depth = 3;
    c.aliased_layers = aliased;
    c.local_weight = lambda;
    Baseline *b = baseline_new(&c, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    return b;
}

static Baseline *anomalyclip_new(int aliased, float lambda) { return anomalyclip_new_at(aliased, lambda, 2, 0); }

Test(baselines, anomalyclip_published) {
    Baseline *b = anomalyclip_new(0, 1.0f);
    load_params(b, "anomalyclip");
    check_scores(b, "anomalyclip");
    check_loss_grad(b, "anomalyclip");
    baseline_free(b);
}

Test(baselines, anomalyclip_aliased_lambda4) {
    Baseline *b = anomalyclip_new(1, 4.0f);
    load_params(b, "anomalyclip");
    check_scores(b, "anomalyclip_alias");
    check_loss_grad(b, "anomalyclip_alias");
    baseline_free(b);
}

// Upstream before 2025-04-13 aliased the layers from vv_from-1 on (tests/ref_baselines.py vision_tokens_inplace
// runs its in-place arithmetic): with V-V from layer 3, layer 1 keeps its own tokens, layers 2-4 are the final
// V-V map. The old rule (every layer aliased) gives other maps, so this fails on it.
Test(baselines, anomalyclip_aliased_from_the_layer_before_vv) {
    Baseline *b = anomalyclip_new_at(1, 4.0f, 3, 0);
    load_params(b, "anomalyclip");
    check_scores(b, "anomalyclip_alias_vv3");
    check_loss_grad(b, "anomalyclip_alias_vv3");
    baseline_free(b);
}

// deep_fp16: the deep prompts through .half() as upstream, values and per-text gradients (tolerance of
// check_close; the fp16 rounding itself is exact on both sides: round to nearest even).
Test(baselines, anomalyclip_deep_prompts_fp16) {
    Baseline *b = anomalyclip_new_at(0, 1.0f, 2, 1);
    load_params(b, "anomalyclip");
    check_scores(b, "anomalyclip_fp16");
    check_loss_grad(b, "anomalyclip_fp16");
    baseline_free(b);
}

// A training step moves the parameters against the gradient and lowers the loss on the same batch.
Test(baselines, train_step_lowers_loss) {
    const char *names[3] = {CLS, CLS, CLS};
    Baseline *b = anomalyclip_new(0, 1.0f);
    float l0, l1;
    for (int i = 0; i < 5; i++) cr_assert_eq(baseline_train_step(b, pixels, masks, labels, names, B, i ? &l1 : &l0), 0, "%s", err_msg());
    cr_assert_lt(l1, l0, "anomalyclip loss %g -> %g", l0, l1);
    baseline_free(b);
    BaselineConfig c = config(BL_CLIP);
    b = baseline_new(&c, model, tok);
    cr_assert_eq(baseline_train_step(b, pixels, masks, labels, names, B, &l0), -1);
    cr_assert(strstr(err_msg(), "nothing to train"));
    baseline_free(b);
}

Test(baselines, bad_configs) {
    BaselineConfig c = config(BL_APRILGAN);
    c.layers[3] = 9;
    cr_assert_null(baseline_new(&c, model, tok));
    cr_assert(strstr(err_msg(), "layer 9 outside 1..4"), "%s", err_msg());
    c = config(BL_WINCLIP);
    c.scales[1] = 7;  // 6x6 grid at 48 px
    cr_assert_null(baseline_new(&c, model, tok));
    cr_assert(strstr(err_msg(), "window of 7 patches"), "%s", err_msg());
    c = config(BL_ANOMALYCLIP);
    c.deep_depth = 9;  // 8 deep prompts for 3 text layers
    cr_assert_null(baseline_new(&c, model, tok));
    cr_assert(strstr(err_msg(), "deep_depth"), "%s", err_msg());
}

// anomalib utils.make_masks / harmonic_aggregation docstring examples.
Test(winclip_parts, masks_and_harmonic) {
    int idx[9 * 4];
    cr_assert_eq(winclip_window_count(4, 2), 9);
    winclip_make_masks(idx, 4, 2);
    // make_masks((4, 4), 2) columns: [0,1,4,5], [1,2,5,6], [2,3,6,7], [4,5,8,9], ...
    int want[] = {0, 1, 4, 5, 1, 2, 5, 6, 2, 3, 6, 7, 4, 5, 8, 9, 5, 6, 9, 10, 6, 7, 10, 11, 8, 9, 12, 13, 9, 10, 13, 14, 10, 11, 14, 15};
    for (int i = 0; i < 36; i++) cr_assert_eq(idx[i], want[i], "mask entry %d", i);
    int idx3[16];
    winclip_make_masks(idx3, 3, 2);
    float scores[4] = {1.0f, 0.75f, 0.5f, 0.25f}, out[9];
    winclip_harmonic(out, scores, idx3, 4, 2, 3, 1);
    float ref[9] = {1.0f, 0.8571f, 0.75f, 0.6667f, 0.48f, 0.375f, 0.5f, 0.3333f, 0.25f};
    for (int i = 0; i < 9; i++) cr_assert_float_eq(out[i], ref[i], 1e-4, "patch %d: %g", i, out[i]);
    float img = 0.5f, a[2] = {0.25f, 1.0f}, c2[2] = {1.0f, 0.5f}, comb[2];
    const float *sm[2] = {a, c2};
    winclip_combine(comb, &img, sm, 2, 1, 2);
    cr_assert_float_eq(comb[0], 3.0f / (2 + 4 + 1), 1e-6);
    cr_assert_float_eq(comb[1], 3.0f / (2 + 1 + 2), 1e-6);
}

Test(prompts, counts_and_strings) {
    BaselineConfig c;
    char **s;
    struct { BaselineMethod m; int nn, na; const char *first_n, *last_a; } cases[] = {
        {BL_CLIP, 1, 1, "a photo of a normal metal nut.", "a photo of an anomalous metal nut."},
        {BL_CLIP_AC, 80, 80, "a bad photo of a normal metal nut.", "a tattoo of the anomalous metal nut."},
        {BL_WINCLIP, 147, 84, "a cropped photo of the metal_nut.", "a photo of a metal_nut with damage for anomaly detection."},
        {BL_APRILGAN, 245, 175, "a bad photo of a metal_nut.", "this is one metal_nut with damage in the scene."},
    };
    for (int i = 0; i < 4; i++) {
        baseline_config_defaults(&c, cases[i].m, 24);
        int n = baseline_prompt_sentences(&c, CLS, 0, &s);
        cr_assert_eq(n, cases[i].nn, "%s normal: %d", baseline_method_name(cases[i].m), n);
        cr_assert_str_eq(s[0], cases[i].first_n);
        baseline_free_strings(s, n);
        n = baseline_prompt_sentences(&c, CLS, 1, &s);
        cr_assert_eq(n, cases[i].na);
        cr_assert_str_eq(s[n - 1], cases[i].last_a);
        baseline_free_strings(s, n);
    }
    cr_assert_eq(baseline_template_count(BL_TPL_WINCLIP22), 22);
    baseline_config_defaults(&c, BL_APRILGAN, 24);
    cr_assert_str_eq(baseline_class_arg(&c, "metal_nut", "metal nut"), "metal_nut");
    baseline_config_defaults(&c, BL_WINCLIP, 12);
    cr_assert_str_eq(baseline_class_arg(&c, "01", "electrical commutators"), "01");  // anomalib: the category
    c.class_name = BL_CLASS_SPACES;
    cr_assert_str_eq(baseline_class_arg(&c, "01", "electrical commutators"), "electrical commutators");
    for (int m = 0; m <= BL_ANOMALYCLIP; m++) cr_assert_eq(baseline_method_from_name(baseline_method_name(m)), m);
    cr_assert_eq(baseline_method_from_name("kanoclip"), -1);
}

Test(config, keys_values_and_errors) {
    BaselineConfig c;
    baseline_config_defaults(&c, BL_ANOMALYCLIP, 24);
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(c.layers[3], 24);
    cr_assert_eq(c.vv_from, 6);
    cr_assert_float_eq(c.logit_scale, 1.0f / 0.07f, 1e-4);
    cr_assert_eq(baseline_config_set(&c, "temperature", "0.01"), 0);
    cr_assert_float_eq(c.logit_scale, 100.0f, 1e-3);
    cr_assert_eq(baseline_config_set(&c, "sigma", "null"), 0);  // keeps the default
    cr_assert_float_eq(c.sigma, 4.0f, 0);
    cr_assert_eq(baseline_config_set(&c, "aliased_layers", "true"), 0);
    cr_assert_eq(c.aliased_layers, 1);
    cr_assert_eq(baseline_config_set(&c, "local_weight", "4"), 0);
    cr_assert_float_eq(c.local_weight, 4.0f, 0);
    cr_assert_eq(baseline_config_set(&c, "state_abnormal", "abnormal"), 0);
    cr_assert_str_eq(c.state_abnormal, "abnormal");
    cr_assert_eq(baseline_config_set(&c, "templates", "winclip22"), 0);
    cr_assert_eq(c.templates, BL_TPL_WINCLIP22);
    int l24[] = {24}, zero[] = {0};
    cr_assert_eq(baseline_config_set_list(&c, "layers", zero, 1), 0);
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(baseline_config_set_list(&c, "layers", l24, 1), 0);
    cr_assert_eq(c.n_layers, 1);
    cr_assert_eq(baseline_config_set(&c, "sigmaa", "1"), -1);
    cr_assert(strstr(err_msg(), "train.baseline.sigmaa: unknown key"), "%s", err_msg());
    cr_assert_eq(baseline_config_set(&c, "templates", "imagenet"), -1);
    cr_assert(strstr(err_msg(), "imagenet80"), "%s", err_msg());
    cr_assert_eq(baseline_config_set(&c, "softmax_first", "maybe"), -1);
    cr_assert_eq(baseline_config_set(&c, "n_ctx", "12x"), -1);
    cr_assert(strstr(err_msg(), "train.baseline.n_ctx"), "%s", err_msg());
}

Test(baselines, feature_shapes) {
    BaselineFeatureShape s;
    struct { BaselineMethod m; int n, rows0, rows1, ld; } cases[] = {
        {BL_CLIP, 1, 37, 0, 24}, {BL_WINCLIP, 2, 25, 16, 24}, {BL_APRILGAN, 4, 37, 37, 32}, {BL_ANOMALYCLIP, 4, 37, 37, 24},
    };
    for (int i = 0; i < 4; i++) {
        BaselineConfig c = config(cases[i].m);
        if (c.method == BL_ANOMALYCLIP) c.deep_depth = 3;
        Baseline *b = baseline_new(&c, model, tok);
        cr_assert_not_null(b, "%s", err_msg());
        baseline_feature_shape(b, &s);
        cr_assert_eq(s.n_blocks, cases[i].n, "%s", baseline_method_name(c.method));
        cr_assert_eq(s.rows[0], cases[i].rows0);
        cr_assert_eq(s.rows[1], cases[i].rows1);
        cr_assert_eq(s.ld, cases[i].ld);
        cr_assert_eq(s.P, 24);
        // scoring from features extracted once equals scoring from pixels
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
    }
}

Test(baselines, state_save_load) {
    const char *names[3] = {CLS, CLS, CLS};
    char dir[] = "/tmp/bl_stateXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], bad[128];
    snprintf(path, sizeof path, "%s/state.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    BaselineConfig c = config(BL_APRILGAN);
    Baseline *a = baseline_new(&c, model, tok), *b = baseline_new(&c, model, tok);
    float loss, l2;
    cr_assert_eq(baseline_train_step(a, pixels, masks, labels, names, B, &loss), 0, "%s", err_msg());
    cr_assert_eq(baseline_save(a, path), 0, "%s", err_msg());
    cr_assert_eq(baseline_load(b, path), 0, "%s", err_msg());
    size_t n = baseline_n_params(a);
    float *pa = malloc(sizeof(float) * n), *pb = malloc(sizeof(float) * n);
    baseline_download_params(a, pa);
    baseline_download_params(b, pb);
    cr_assert_arr_eq(pa, pb, n * sizeof(float));
    // the same next step from both (moments and step count restored)
    cr_assert_eq(baseline_train_step(a, pixels, masks, labels, names, B, &loss), 0);
    cr_assert_eq(baseline_train_step(b, pixels, masks, labels, names, B, &l2), 0);
    cr_assert_float_eq(loss, l2, 0);
    baseline_download_params(a, pa);
    baseline_download_params(b, pb);
    cr_assert_arr_eq(pa, pb, n * sizeof(float));
    free(pa); free(pb);
    // wrong method, truncated file, not a state file
    BaselineConfig ca = config(BL_ANOMALYCLIP);
    ca.deep_depth = 3;
    Baseline *o = baseline_new(&ca, model, tok);
    cr_assert_eq(baseline_load(o, path), -1);
    cr_assert(strstr(err_msg(), "state of baseline april-gan, the configured method is anomalyclip"), "%s", err_msg());
    size_t size;
    char *raw = fs_read_file(path, &size);
    cr_assert_eq(fs_write_atomic(bad, raw, size - 4), 0);
    cr_assert_eq(baseline_load(b, bad), -1);
    cr_assert(strstr(err_msg(), "bytes, expected"), "%s", err_msg());
    cr_assert_eq(fs_write_atomic(bad, "hello", 5), 0);
    cr_assert_eq(baseline_load(b, bad), -1);
    cr_assert(strstr(err_msg(), "not a baseline state file"), "%s", err_msg());
    BaselineConfig cc = config(BL_CLIP);
    Baseline *z = baseline_new(&cc, model, tok);
    cr_assert_eq(baseline_save(z, bad), -1);
    free(raw);
    remove(path);
    remove(bad);
    rmdir(dir);
    baseline_free(a); baseline_free(b); baseline_free(o); baseline_free(z);
}

// The guard backend (model/backend.h): the heads with every buffer in memory the host cannot touch outside an op,
// against the cpu backend. Losses of several Adam steps, the gradient after them, the parameters, scores and maps
// must be the same bytes (the same CPU ops run; only where the memory lives differs).
static void same_on_guard(BaselineConfig c, const char *tag, int steps) {
    const char *names[3] = {CLS, "screw", CLS};  // APRIL-GAN's text differs per image
    Baseline *b[2] = {baseline_new_on(backend_cpu(), &c, model, tok), baseline_new_on(backend_guard(), &c, model, tok)};
    cr_assert(b[0] && b[1], "%s: %s", tag, err_msg());
    cr_assert_str_eq(baseline_backend(b[1])->name, "guard");
    BaselineFeatures *f = baseline_features_new(b[0], B);
    cr_assert_eq(baseline_extract(b[0], pixels, f), 0, "%s", err_msg());
    size_t n = baseline_n_params(b[0]), SS = (size_t)S * S;
    float loss[2][8], scores[2][3], *maps[2], *grad[2], *par[2];
    long before = backend_guard_calls();
    for (int k = 0; k < 2; k++) {
        maps[k] = malloc(sizeof(float) * B * SS);
        grad[k] = calloc(n + 1, sizeof(float));
        par[k] = malloc(sizeof(float) * (n + 1));
        for (int s = 0; s < steps && n; s++)
            cr_assert_eq(baseline_train_step_features(b[k], f, masks, labels, names, &loss[k][s]), 0, "%s", err_msg());
        if (n) {
            cr_assert_eq(baseline_loss_grad_features(b[k], f, masks, labels, names, &loss[k][steps], grad[k]), 0);
            baseline_download_params(b[k], par[k]);
        }
        cr_assert_eq(baseline_score_features(b[k], CLS, f, scores[k], maps[k]), 0, "%s: %s", tag, err_msg());
    }
    cr_assert(backend_guard_calls() > before + (n ? 100 : 10), "%s: the guard backend was not used", tag);
    if (n) {
        cr_assert(memcmp(loss[0], loss[1], sizeof(float) * (steps + 1)) == 0, "%s: losses differ on guard", tag);
        cr_assert(loss[0][steps] < loss[0][0], "%s: loss %g -> %g", tag, loss[0][0], loss[0][steps]);
        cr_assert(memcmp(grad[0], grad[1], sizeof(float) * n) == 0, "%s: gradients differ on guard", tag);
        cr_assert(memcmp(par[0], par[1], sizeof(float) * n) == 0, "%s: parameters differ on guard", tag);
    }
    cr_assert(memcmp(scores[0], scores[1], sizeof scores[0]) == 0, "%s: scores differ on guard", tag);
    cr_assert(memcmp(maps[0], maps[1], sizeof(float) * B * SS) == 0, "%s: maps differ on guard", tag);
    fprintf(stderr, "baseline %s: guard backend identical to cpu (%zu parameters, %d steps)\n", tag, n, n ? steps : 0);
    for (int k = 0; k < 2; k++) { baseline_free(b[k]); free(maps[k]); free(grad[k]); free(par[k]); }
    baseline_features_free(f);
}

TestSuite(baselines_guard, .init = setup, .fini = teardown, .timeout = 120);

Test(baselines_guard, trained_heads_identical_to_cpu) {
    BaselineConfig c = config(BL_APRILGAN);  // logits upsampled, then the softmax
    same_on_guard(c, "april-gan", 3);
    c.softmax_first = 1, c.align_corners = 0, c.sigma = 1.0f;  // the other order, smoothed maps
    same_on_guard(c, "april-gan softmax first", 3);
    c = config(BL_ANOMALYCLIP);
    c.deep_depth = 3, c.vv_from = 2;
    same_on_guard(c, "anomalyclip", 3);
    c.softmax_first = 0, c.deep_fp16 = 1, c.local_weight = 4.0f;
    same_on_guard(c, "anomalyclip upsample first fp16", 3);
}

Test(baselines_guard, training_free_heads_identical_to_cpu) {
    BaselineConfig c = config(BL_CLIP);
    same_on_guard(c, "clip", 0);
    c = config(BL_CLIP_AC);
    same_on_guard(c, "clip-ac", 0);
}
