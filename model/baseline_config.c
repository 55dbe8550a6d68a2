// The baselines' configuration: the methods' names, their published defaults, and the switches by name (the keys of
// experiments/defaults.yaml, train.baseline.*).
#include "model/baselines.h"
#include "common/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *baseline_method_name(BaselineMethod m) {
    static const char *names[] = {"clip", "clip-ac", "winclip", "april-gan", "anomalyclip", "mvfa-ad"};
    return m >= 0 && m < BL_N_METHODS ? names[m] : "?";
}

int baseline_method_from_name(const char *name) {
    for (int m = 0; m < BL_N_METHODS; m++)
        if (!strcmp(name, baseline_method_name(m))) return m;
    return -1;
}

void baseline_config_defaults(BaselineConfig *c, BaselineMethod method, int L) {
    memset(c, 0, sizeof *c);
    c->method = method;
    c->image_size = 518;
    c->pos_interp = CLIP_POS_BILINEAR;
    c->logit_scale = 100.0f;
    c->softmax_first = 1;
    c->align_corners = 0;
    c->n_layers = 1;
    c->layers[0] = -1;
    c->global_ln_post = 1;
    c->templates = BL_TPL_NONE;
    c->text_pool = BL_POOL_MEAN_UNIT;
    c->class_name = BL_CLASS_SPACES;
    c->n_scales = 2, c->scales[0] = 2, c->scales[1] = 3;
    c->vv_from = L / 4 > 0 ? L / 4 : 1;
    c->n_ctx = 12, c->deep_depth = 9, c->deep_len = 4;
    strcpy(c->state_normal, "");
    strcpy(c->state_abnormal, "damaged");
    strcpy(c->object_word, "object");
    c->local_weight = 1.0f;
    c->init_std = 0.02f;
    c->adapter_keep = 0.8f, c->adapter_mix = 0.1f;
    c->pixel_norm = 1;
    c->lr = 1e-3f, c->beta1 = 0.5f, c->beta2 = 0.999f, c->eps = 1e-8f;
    c->seed = 111;
    int q = L / 4 > 0 ? L / 4 : 1;
    switch (method) {
    case BL_CLIP: c->sigma = 4.0f; break;  // maps as AnomalyCLIP's pipeline without DPAM (zsad-anchors §1.7)
    case BL_CLIP_AC: c->sigma = 4.0f, c->templates = BL_TPL_IMAGENET80; break;
    case BL_WINCLIP:
        c->image_size = 240;
        c->logit_scale = 1.0f / 0.07f;
        c->templates = BL_TPL_WINCLIP21;
        c->text_pool = BL_POOL_MEAN_RAW;
        c->class_name = BL_CLASS_RAW;  // anomalib's WinclipModel.setup(class_name) gets the category as is
        break;
    case BL_APRILGAN:
        c->templates = BL_TPL_APRILGAN35;
        c->class_name = BL_CLASS_RAW;
        c->softmax_first = 0, c->align_corners = 1;
        c->n_layers = 4;
        for (int i = 0; i < 4; i++) c->layers[i] = q * (i + 1);
        break;
    case BL_ANOMALYCLIP:
        c->logit_scale = 1.0f / 0.07f;
        c->sigma = 4.0f;
        c->global_ln_post = 0;
        c->class_name = BL_CLASS_OBJECT;
        c->n_layers = 4;
        for (int i = 0; i < 4; i++) c->layers[i] = q * (i + 1);
        break;
    case BL_MVFA:  // train_zero.py: --img_size 240, features_list 6 12 18 24, lr 1e-4; open_clip's resize_pos_embed
        c->image_size = 240;
        c->pos_interp = CLIP_POS_BICUBIC_AA;
        c->pixel_norm = 0;  // medical_zero.py: Resize + ToTensor, no Normalize
        c->templates = BL_TPL_APRILGAN35;
        c->class_name = BL_CLASS_SPACES;  // prompt.py REAL_NAME: the dataset's prompt name ("retinal OCT")
        c->softmax_first = 0, c->align_corners = 1;
        c->n_layers = 4;
        for (int i = 0; i < 4; i++) c->layers[i] = q * (i + 1);
        c->lr = 1e-4f;
        break;
    case BL_N_METHODS: break;
    }
}

static int is_default(const char *v) { return !v || !*v || !strcmp(v, "null") || !strcmp(v, "~"); }

static int parse_float(const char *key, const char *v, float *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || end == v) return err_set("train.baseline.%s: '%s' is not a number", key, v);
    *out = (float)d;
    return 0;
}

static int parse_int(const char *key, const char *v, int *out) {
    char *end;
    errno = 0;
    long d = strtol(v, &end, 10);
    if (errno || *end || end == v) return err_set("train.baseline.%s: '%s' is not an integer", key, v);
    *out = (int)d;
    return 0;
}

static int parse_bool(const char *key, const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "1")) { *out = 1; return 0; }
    if (!strcmp(v, "false") || !strcmp(v, "0")) { *out = 0; return 0; }
    return err_set("train.baseline.%s: '%s' is not true or false", key, v);
}

static int parse_enum(const char *key, const char *v, const char *const *names, int n, int *out) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) { *out = i; return 0; }
    char list[256] = "";
    for (int i = 0; i < n; i++) { strcat(list, i ? " | " : ""); strcat(list, names[i]); }
    return err_set("train.baseline.%s: unknown value '%s' (one of: %s)", key, v, list);
}

static int copy_word(const char *key, const char *v, char *dst, size_t cap) {
    if (strlen(v) >= cap) return err_set("train.baseline.%s: longer than %zu characters", key, cap - 1);
    strcpy(dst, v);
    return 0;
}

int baseline_config_set(BaselineConfig *c, const char *key, const char *v) {
    static const char *const tpl[] = {"none", "imagenet80", "winclip21", "winclip22", "aprilgan35"};
    static const char *const pool[] = {"unit", "raw"};
    static const char *const cls[] = {"spaces", "raw", "object"};
    static const char *const pos[] = {"bilinear", "bicubic", "bicubic-aa"};  // ClipPosResize order
    // state words may be empty on purpose: "" is a value there, only null/~ keep the default
    if (!strcmp(key, "state_normal") || !strcmp(key, "state_abnormal") || !strcmp(key, "object_word")) {
        if (!v || !strcmp(v, "null") || !strcmp(v, "~")) return 0;
        char *dst = key[6] == 'n' ? c->state_normal : key[6] == 'a' ? c->state_abnormal : c->object_word;
        return copy_word(key, v, dst, sizeof c->state_normal);
    }
    if (is_default(v)) return 0;
    int i;
    if (!strcmp(key, "logit_scale")) return parse_float(key, v, &c->logit_scale);
    if (!strcmp(key, "temperature")) {  // the same switch as 1/temperature
        float t = 0;
        if (parse_float(key, v, &t) < 0) return -1;
        if (t <= 0) return err_set("train.baseline.temperature: %s is not positive", v);
        c->logit_scale = 1.0f / t;
        return 0;
    }
    if (!strcmp(key, "softmax_first")) return parse_bool(key, v, &c->softmax_first);
    if (!strcmp(key, "align_corners")) return parse_bool(key, v, &c->align_corners);
    if (!strcmp(key, "sigma")) return parse_float(key, v, &c->sigma);
    if (!strcmp(key, "global_ln_post")) return parse_bool(key, v, &c->global_ln_post);
    if (!strcmp(key, "aliased_layers")) return parse_bool(key, v, &c->aliased_layers);
    if (!strcmp(key, "deep_fp16")) return parse_bool(key, v, &c->deep_fp16);
    if (!strcmp(key, "vv_from")) return parse_int(key, v, &c->vv_from);
    if (!strcmp(key, "n_ctx")) return parse_int(key, v, &c->n_ctx);
    if (!strcmp(key, "deep_depth")) return parse_int(key, v, &c->deep_depth);
    if (!strcmp(key, "deep_len")) return parse_int(key, v, &c->deep_len);
    if (!strcmp(key, "local_weight")) return parse_float(key, v, &c->local_weight);
    if (!strcmp(key, "init_std")) return parse_float(key, v, &c->init_std);
    if (!strcmp(key, "adapter_keep")) return parse_float(key, v, &c->adapter_keep);
    if (!strcmp(key, "adapter_mix")) return parse_float(key, v, &c->adapter_mix);
    if (!strcmp(key, "normalize")) return parse_bool(key, v, &c->pixel_norm);
    if (!strcmp(key, "aug_rate")) {
        if (parse_float(key, v, &c->aug_rate) < 0) return -1;
        if (!(c->aug_rate >= 0.0f && c->aug_rate <= 1.0f)) return err_set("aug_rate: %s is not in [0, 1]", v);
        return 0;
    }
    if (!strcmp(key, "templates")) {
        if (parse_enum(key, v, tpl, 5, &i) < 0) return -1;
        c->templates = (BaselineTemplates)i;
        return 0;
    }
    if (!strcmp(key, "text_pool")) {
        if (parse_enum(key, v, pool, 2, &i) < 0) return -1;
        c->text_pool = (BaselineTextPool)i;
        return 0;
    }
    if (!strcmp(key, "class_name")) {
        if (parse_enum(key, v, cls, 3, &i) < 0) return -1;
        c->class_name = (BaselineClassName)i;
        return 0;
    }
    if (!strcmp(key, "pos_interp")) {
        if (parse_enum(key, v, pos, 3, &i) < 0) return -1;
        c->pos_interp = (ClipPosResize)i;
        return 0;
    }
    return err_set("train.baseline.%s: unknown key", key);
}

int baseline_config_set_list(BaselineConfig *c, const char *key, const int *values, int n) {
    if (n == 0 || (n == 1 && values[0] == 0)) return 0;
    int *dst, *count, cap;
    if (!strcmp(key, "layers")) dst = c->layers, count = &c->n_layers, cap = BL_MAX_LAYERS;
    else if (!strcmp(key, "scales")) dst = c->scales, count = &c->n_scales, cap = BL_MAX_SCALES;
    else return err_set("train.baseline.%s: unknown list key", key);
    if (n > cap) return err_set("train.baseline.%s: %d values, at most %d", key, n, cap);
    for (int i = 0; i < n; i++) {
        if (values[i] == 0) return err_set("train.baseline.%s: 0 in a list of %d values", key, n);
        dst[i] = values[i];
    }
    *count = n;
    return 0;
}
