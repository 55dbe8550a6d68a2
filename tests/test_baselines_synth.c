// The baselines end to end on a synthetic MVTec-layout dataset with the tiny random checkpoint of
// tests/ref_baselines.py: dataset reader -> decode, Pillow-exact resize, normalise -> every baseline's scores and
// maps per class (class folder names with underscores), and training steps of the two trained baselines from
// features extracted once. Asserts ranges (probabilities in [0, 1], maps in [0, layers]), finiteness, and that
// training lowers the loss on a fixed batch.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/dataset.h"
#include "datasets/image.h"
#include "datasets/synth.h"
#include "model/baselines.h"
#include "tmpdir.h"

#define CKPT "build/fixtures/baselines/ckpt"
#define S 48

static char dir[64];
static ClipModel *model;
static Tokenizer *tok;
static Dataset *ds;
static float *pixels, *masks;  // (n, 3, S, S), (n, S, S)

static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-blsynth-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    SynthOptions o = {.out = dir, .layout = "mvtec", .n_classes = 2, .seed = 7, .size = 64, .n_test_normal = 3,
                      .n_test_anomalous = 3, .n_train_normal = 1};
    cr_assert_eq(synth_write(&o), 0, "%s", err_msg());
    ds = dataset_open(DATASET_MVTEC, dir, SPLIT_TEST, NULL);
    cr_assert_not_null(ds, "%s", err_msg());
    model = clip_model_load(CKPT, CLIP_TEXT | CLIP_VISION);
    cr_assert_not_null(model, "%s", err_msg());
    const char *shared = getenv("KANOCLIP_SHARED");
    char *base = fs_join(shared && *shared ? shared : "../shared", "data/clip/bpe_simple_vocab_16e6.txt.gz");
    tok = tokenizer_load(base);
    free(base);
    cr_assert_not_null(tok, "%s", err_msg());
    int n = ds->n_samples;
    pixels = malloc(sizeof(float) * n * 3 * S * S);
    masks = calloc((size_t)n * S * S, sizeof(float));
    for (int i = 0; i < n; i++) {
        const Sample *s = &ds->samples[i];
        cr_assert_eq(image_load_preprocessed(s->image_path, S, IMAGE_RESIZE_SQUARE, model->cfg.image_mean,
                                             model->cfg.image_std, pixels + (size_t)i * 3 * S * S), 0, "%s", err_msg());
        if (!s->mask_path) continue;
        Image m, r;
        cr_assert_eq(image_decode_file(s->mask_path, 1, &m), 0, "%s", err_msg());
        cr_assert_eq(image_resize(&m, S, S, IMAGE_FILTER_BILINEAR, &r), 0);
        for (int p = 0; p < S * S; p++) masks[(size_t)i * S * S + p] = r.data[p] > 127 ? 1.0f : 0.0f;  // ToTensor > 0.5
        image_free(&m);
        image_free(&r);
    }
}

static void teardown(void) {
    free(pixels);
    free(masks);
    dataset_free(ds);
    clip_model_free(model);
    tokenizer_free(tok);
    tmpdir_remove(dir);
}

TestSuite(baselines_synth, .init = setup, .fini = teardown, .timeout = 120);

static BaselineConfig config(BaselineMethod m) {
    BaselineConfig c;
    baseline_config_defaults(&c, m, model->vision.shape.layers);
    c.image_size = S;
    c.deep_depth = 3;  // the tiny text tower has 3 layers
    return c;
}

// The samples of class k: first index and count (samples are sorted by class).
static int class_range(int k, int *first) {
    int n = 0;
    *first = -1;
    for (int i = 0; i < ds->n_samples; i++)
        if (ds->samples[i].class_index == k) {
            if (*first < 0) *first = i;
            n++;
        }
    return n;
}

Test(baselines_synth, every_method_scores_every_class) {
    for (int m = 0; m <= BL_ANOMALYCLIP; m++) {
        BaselineConfig c = config((BaselineMethod)m);
        Baseline *b = baseline_new(&c, model, tok);
        cr_assert_not_null(b, "%s: %s", baseline_method_name(m), err_msg());
        int layers = m == BL_WINCLIP ? 1 : c.n_layers;
        for (int k = 0; k < ds->n_classes; k++) {
            int first, n = class_range(k, &first);
            cr_assert_gt(n, 0);
            float *scores = malloc(sizeof(float) * n), *maps = malloc(sizeof(float) * n * S * S);
            const char *cls = baseline_class_arg(&c, ds->classes[k].name, ds->classes[k].prompt_name);
            cr_assert_eq(baseline_score_batch(b, cls, pixels + (size_t)first * 3 * S * S, n, scores, maps),
                         0, "%s %s: %s", baseline_method_name(m), ds->classes[k].name, err_msg());
            for (int i = 0; i < n; i++) cr_assert(scores[i] >= 0 && scores[i] <= 1, "%s score %g", baseline_method_name(m), scores[i]);
            float lo = INFINITY, hi = -INFINITY;
            for (int i = 0; i < n * S * S; i++) {
                cr_assert(isfinite(maps[i]), "%s: map value %g", baseline_method_name(m), maps[i]);
                lo = fminf(lo, maps[i]), hi = fmaxf(hi, maps[i]);
            }
            cr_assert(lo >= -1e-6f && hi <= layers + 1e-5f && hi > lo, "%s: map range [%g, %g]", baseline_method_name(m), lo, hi);
            free(scores);
            free(maps);
        }
        baseline_free(b);
    }
}

Test(baselines_synth, training_lowers_the_loss) {
    int n = ds->n_samples < 8 ? ds->n_samples : 8, labels[8];
    const char *names[8];
    for (int i = 0; i < n; i++) {
        labels[i] = ds->samples[i].label;
        names[i] = ds->classes[ds->samples[i].class_index].name;  // APRIL-GAN: folder names (BL_CLASS_RAW)
    }
    BaselineMethod trained[2] = {BL_APRILGAN, BL_ANOMALYCLIP};
    for (int t = 0; t < 2; t++) {
        BaselineConfig c = config(trained[t]);
        c.lr = 1e-2f;
        Baseline *b = baseline_new(&c, model, tok);
        cr_assert_not_null(b, "%s", err_msg());
        BaselineFeatures *f = baseline_features_new(b, n);
        cr_assert_eq(baseline_extract(b, pixels, f), 0, "%s", err_msg());
        float first = 0, loss = 0;
        for (int step = 0; step < 8; step++) {
            cr_assert_eq(baseline_train_step_features(b, f, masks, labels, names, &loss), 0, "%s", err_msg());
            cr_assert(isfinite(loss));
            if (step == 0) first = loss;
        }
        cr_assert_lt(loss, first, "%s: loss %g -> %g", baseline_method_name(trained[t]), first, loss);
        baseline_features_free(f);
        baseline_free(b);
    }
}
