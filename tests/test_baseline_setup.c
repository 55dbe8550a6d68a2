// The baseline configs (experiments/baselines/*.yaml) load over experiments/defaults.yaml (train.baseline.* is
// the baselines' block there) and map to the BaselineConfig each file describes; bad switches fail naming the key.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/config/baseline_setup.h"

static const char *defaults = "experiments/defaults.yaml";

static BaselineConfig load(const char *file, int layers, int n_ov, char **ov) {
    char path[128];
    snprintf(path, sizeof path, "experiments/baselines/%s", file);
    Config *cfg = config_load(path, defaults, n_ov, ov);
    cr_assert_not_null(cfg, "%s: %s", path, err_msg());
    BaselineConfig c;
    cr_assert_eq(baseline_config_from(cfg, layers, &c), 1, "%s: %s", path, err_msg());
    config_free(cfg);
    return c;
}

Test(baseline_setup, every_config_maps) {
    BaselineConfig c = load("clip.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_CLIP);
    cr_assert_eq(c.image_size, 518);
    cr_assert_eq(c.n_layers, 1);
    cr_assert_eq(c.layers[0], -1);
    cr_assert_float_eq(c.sigma, 4.0f, 0);
    c = load("clip-ac.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_CLIP_AC);
    cr_assert_eq(c.templates, BL_TPL_IMAGENET80);
    c = load("winclip.yaml", 12, 0, NULL);
    cr_assert_eq(c.method, BL_WINCLIP);
    cr_assert_eq(c.image_size, 240);
    cr_assert_eq(c.n_scales, 2);
    cr_assert_eq(c.scales[1], 3);
    cr_assert_eq(c.text_pool, BL_POOL_MEAN_RAW);
    cr_assert_float_eq(c.logit_scale, 1.0f / 0.07f, 1e-4);
    c = load("april-gan.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_APRILGAN);
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(c.layers[0], 6);
    cr_assert_eq(c.softmax_first, 0);
    cr_assert_eq(c.align_corners, 1);
    cr_assert_eq(c.pos_interp, CLIP_POS_BICUBIC_AA);  // open_clip resize_pos_embed (antialias)
    cr_assert_float_eq(c.logit_scale, 100.0f, 0);
    c = load("anomalyclip.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_ANOMALYCLIP);
    cr_assert_eq(c.vv_from, 6);
    cr_assert_eq(c.aliased_layers, 0);
    cr_assert_float_eq(c.local_weight, 1.0f, 0);
    cr_assert_eq(c.global_ln_post, 0);
    cr_assert_eq(c.deep_depth, 9);
    cr_assert_eq(c.seed, 111u);
    c = load("anomalyclip-aliased.yaml", 24, 0, NULL);
    cr_assert_eq(c.aliased_layers, 1);
    cr_assert_eq(c.n_layers, 4);
    c = load("anomalyclip-head.yaml", 24, 0, NULL);
    cr_assert_eq(c.n_layers, 1);
    cr_assert_eq(c.layers[0], 24);
    cr_assert_float_eq(c.local_weight, 4.0f, 0);
    c = load("anomalyclip-on-visa.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_ANOMALYCLIP);
    c = load("april-gan-on-visa.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_APRILGAN);
    c = load("mvfa-ad.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_MVFA);
    cr_assert_eq(c.image_size, 240);
    cr_assert_eq(c.n_layers, 4);
    cr_assert_eq(c.layers[3], 24);
    cr_assert_eq(c.pixel_norm, 0);
    cr_assert_eq(c.pos_interp, CLIP_POS_BICUBIC_AA);
    cr_assert_float_eq(c.adapter_keep, 0.8f, 0);
    cr_assert_float_eq(c.adapter_mix, 0.1f, 0);
    cr_assert_float_eq(c.lr, 1e-4f, 0);
    c = load("mvfa-ad-on-visa.yaml", 24, 0, NULL);
    cr_assert_eq(c.method, BL_MVFA);
    char *ov[] = {"train.baseline.normalize=true", "train.baseline.adapter_keep=0.9"};
    c = load("mvfa-ad.yaml", 24, 2, ov);
    cr_assert_eq(c.pixel_norm, 1);
    cr_assert_float_eq(c.adapter_keep, 0.9f, 0);
}

Test(baseline_setup, overrides_and_errors) {
    char *ov[] = {"train.baseline.temperature=0.01", "train.baseline.sigma=0", "train.baseline.layers=[12,24]"};
    BaselineConfig c = load("anomalyclip.yaml", 24, 3, ov);
    cr_assert_float_eq(c.logit_scale, 100.0f, 1e-3);
    cr_assert_float_eq(c.sigma, 0.0f, 0);
    cr_assert_eq(c.n_layers, 2);
    cr_assert_eq(c.layers[1], 24);
    char *bad[] = {"train.baseline.templates=imagenet"};
    Config *cfg = config_load("experiments/baselines/clip-ac.yaml", defaults, 1, bad);
    cr_assert_not_null(cfg, "%s", err_msg());
    BaselineConfig d;
    cr_assert_eq(baseline_config_from(cfg, 24, &d), -1);
    cr_assert(strstr(err_msg(), "train.baseline.templates: unknown value 'imagenet'"), "%s", err_msg());
    cr_assert(strstr(err_msg(), "override"), "%s", err_msg());
    config_free(cfg);
    // KAnoCLIP is not a baseline: nothing filled
    cfg = config_load(NULL, defaults, 0, NULL);
    cr_assert_not_null(cfg, "%s", err_msg());
    cr_assert_eq(baseline_config_from(cfg, 24, &d), 0);
    config_free(cfg);
}
