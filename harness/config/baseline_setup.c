// train.method + train.baseline.* -> BaselineConfig (see baseline_setup.h).
#include "harness/config/baseline_setup.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>

// The scalar switches of train.baseline (lists: layers, scales).
static const char *const SCALAR_KEYS[] = {
    "logit_scale", "temperature", "softmax_first", "align_corners", "sigma", "global_ln_post", "pos_interp",
    "templates", "text_pool", "class_name", "vv_from", "aliased_layers", "deep_fp16", "n_ctx", "deep_depth", "deep_len",
    "state_normal", "state_abnormal", "object_word", "local_weight", "init_std", "aug_rate", "adapter_keep",
    "adapter_mix", "normalize",
};

// A scalar's text whatever its YAML type (NULL for null).
static int scalar_text(const Config *cfg, const char *key, char *buf, size_t cap, const char **out) {
    double f;
    long i;
    int b;
    if (config_get_str(cfg, key, out) == 0) return 0;
    if (config_get_int(cfg, key, &i) == 0) { snprintf(buf, cap, "%ld", i); *out = buf; return 0; }
    if (config_get_float(cfg, key, &f) == 0) { snprintf(buf, cap, "%.9g", f); *out = buf; return 0; }
    if (config_get_bool(cfg, key, &b) == 0) { snprintf(buf, cap, "%s", b ? "true" : "false"); *out = buf; return 0; }
    return err_set("%s: %s: expected a scalar", config_origin(cfg, key), key);
}

static int with_origin(const Config *cfg, const char *key) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", err_msg());  // err_set formats into the buffer err_msg points at
    const char *o = config_origin(cfg, key);
    return err_set("%s (%s)", msg, o ? o : "defaults");
}

int baseline_config_from(const Config *cfg, int vision_layers, BaselineConfig *out) {
    const char *method, *s;
    if (config_get_str(cfg, "train.method", &method) < 0) return -1;
    int m = method ? baseline_method_from_name(method) : -1;
    if (m < 0) return 0;
    BaselineConfig c;
    baseline_config_defaults(&c, (BaselineMethod)m, vision_layers);
    long v;
    double f;
    if (config_get_int(cfg, "model.image_size", &v) < 0) return -1;
    c.image_size = (int)v;
    if (config_get_str(cfg, "model.pos_interp", &s) < 0) return -1;
    if (s && baseline_config_set(&c, "pos_interp", s) < 0) return with_origin(cfg, "model.pos_interp");
    if (m == BL_ANOMALYCLIP && config_has(cfg, "model.vv_from")) {
        if (config_get_int(cfg, "model.vv_from", &v) < 0) return -1;
        if (v > 0) c.vv_from = (int)v;
    }
    if (config_get_float(cfg, "train.lr", &f) < 0) return -1;
    c.lr = (float)f;
    if (config_get_float(cfg, "train.beta1", &f) < 0) return -1;
    c.beta1 = (float)f;
    if (config_get_float(cfg, "train.beta2", &f) < 0) return -1;
    c.beta2 = (float)f;
    if (config_get_int(cfg, "run.seed", &v) < 0) return -1;
    c.seed = (unsigned long long)v;
    const char *dev, *prec;
    if (config_get_str(cfg, "run.device", &dev) < 0 || config_get_str(cfg, "run.precision", &prec) < 0) return -1;
    if (device_select(dev ? dev : "", &c.device) < 0) return err_wrap("run.device: ");
    if (gemm_precision_parse(prec ? prec : "", &c.precision) < 0) return err_wrap("run.precision: ");
    char key[96], buf[64];
    for (size_t i = 0; i < sizeof SCALAR_KEYS / sizeof SCALAR_KEYS[0]; i++) {
        snprintf(key, sizeof key, "train.baseline.%s", SCALAR_KEYS[i]);
        if (!config_has(cfg, key)) continue;  // a defaults file without this switch: the method default
        if (scalar_text(cfg, key, buf, sizeof buf, &s) < 0) return -1;
        if (s && baseline_config_set(&c, SCALAR_KEYS[i], s) < 0) return with_origin(cfg, key);
    }
    const char *lists[] = {"layers", "scales"};
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "train.baseline.%s", lists[i]);
        if (!config_has(cfg, key)) continue;
        int n = config_list_len(cfg, key), vals[BL_MAX_LAYERS + 1];
        if (n < 0) return -1;
        if (n > BL_MAX_LAYERS) return err_set("%s: %s: %d values, at most %d", config_origin(cfg, key), key, n, BL_MAX_LAYERS);
        for (int j = 0; j < n; j++) {
            if (config_list_int(cfg, key, j, &v) < 0) return -1;
            vals[j] = (int)v;
        }
        if (baseline_config_set_list(&c, lists[i], vals, n) < 0) return with_origin(cfg, key);
    }
    if (c.aug_rate > 0 && m != BL_APRILGAN) {
        err_set("train.baseline.aug_rate: only April-GAN trains with mosaic augmentation");
        return with_origin(cfg, "train.baseline.aug_rate");
    }
    *out = c;
    return 1;
}
