// Config -> KanoclipConfig (see method_config.h).
#include "harness/method_config.h"
#include "model/baselines.h"
#include "common/error.h"

#include <string.h>

static int get_b(const Config *cfg, const char *key, int *v) { return config_get_bool(cfg, key, v); }
static int get_i(const Config *cfg, const char *key, int *v) {
    long x;
    if (config_get_int(cfg, key, &x) < 0) return -1;
    *v = (int)x;
    return 0;
}
static int get_f(const Config *cfg, const char *key, float *v) {
    double x;
    if (config_get_float(cfg, key, &x) < 0) return -1;
    *v = (float)x;
    return 0;
}

int run_uses_training_data(const Config *cfg) {
    const char *method = NULL;
    long epochs = 0;
    if (config_get_str(cfg, "train.method", &method) < 0 || config_get_int(cfg, "train.epochs", &epochs) < 0) return -1;
    if (!method || !strcmp(method, "kanoclip")) return 1;
    int m = baseline_method_from_name(method);
    if (m < 0) return -1;
    return (m == BL_APRILGAN || m == BL_ANOMALYCLIP) && epochs > 0;
}

int run_device_from(const Config *cfg, DeviceKind *device, GemmPrecision *precision) {
    const char *dev = NULL, *prec = NULL;
    if (config_get_str(cfg, "run.device", &dev) < 0 || config_get_str(cfg, "run.precision", &prec) < 0) return -1;
    // device_select checks that CUDA can be used here, so a GPU config fails now, not after the data is read.
    if (device_select(dev, device) < 0) return err_wrap("run.device: ");
    if (gemm_precision_parse(prec, precision) < 0) return err_wrap("run.precision: ");
    return 0;
}

int backbone_settings_from(const Config *cfg, BackboneSettings *b) {
    memset(b, 0, sizeof *b);
    if (run_device_from(cfg, &b->device, &b->precision) < 0) return -1;
    long size, vv;
    const char *pos = NULL;
    if (config_get_int(cfg, "model.image_size", &size) < 0 || config_get_int(cfg, "model.vv_from", &vv) < 0 ||
        get_b(cfg, "method.global_ln_post", &b->global_ln_post) < 0 ||
        config_get_str(cfg, "model.pos_interp", &pos) < 0)
        return -1;
    int n = config_list_len(cfg, "model.layers");
    if (n < 1 || n > 8) return err_set("model.layers: %d stage layers (give 1 to 8)", n);
    for (int i = 0; i < n; i++) {
        long l;
        if (config_list_int(cfg, "model.layers", i, &l) < 0) return -1;
        if (l < 1) return err_set("model.layers: layer %ld (layers are 1-based)", l);
        b->layers[i] = (int)l;
    }
    if (size < 1) return err_set("model.image_size: %ld must be positive", size);
    if (vv < 0) return err_set("model.vv_from: %ld must be 0 (off) or a layer", vv);
    if (!pos || (strcmp(pos, "bilinear") && strcmp(pos, "bicubic")))
        return err_set("model.pos_interp: '%s' (valid: bilinear bicubic)", pos ? pos : "");
    b->n_layers = n;
    b->image_size = (int)size;
    b->vv_from = (int)vv;  // 0: CLIP-VV off (Table 3), stage features from the original path
    b->pos_bicubic = !strcmp(pos, "bicubic");
    return 0;
}

int method_config_from(const Config *cfg, const ClipConfig *clip, KanoclipConfig *c) {
    *c = kanoclip_config_default();
    BackboneSettings b;
    if (backbone_settings_from(cfg, &b) < 0) return -1;
    for (int i = 0; i < b.n_layers; i++)
        if (b.layers[i] > clip->vision.layers)
            return err_set("model.layers: layer %d, but the checkpoint's vision tower has %d layers", b.layers[i],
                           clip->vision.layers);
    if (b.vv_from > clip->vision.layers)
        return err_set("model.vv_from: %d, but the checkpoint's vision tower has %d layers", b.vv_from, clip->vision.layers);
    int grid = b.image_size / clip->patch_size;
    if (grid < 1) return err_set("model.image_size: %d is smaller than a patch (%d)", b.image_size, clip->patch_size);
    c->width = clip->projection_dim;
    c->text_width = clip->text.width;
    c->grid_h = c->grid_w = grid;
    c->image_size = b.image_size;
    c->n_stages = b.n_layers;
    c->clip_vv = b.vv_from > 0;
    c->global_ln_post = b.global_ln_post;
    c->device = b.device;
    c->precision = b.precision;

    const char *kd = NULL, *deform = NULL, *class_token = NULL;
    long seed;
    double lr, b1, b2;
    if (get_i(cfg, "method.heads", &c->heads) || get_b(cfg, "method.knpl", &c->knpl) ||
        get_i(cfg, "method.n_ctx", &c->n_ctx) || get_f(cfg, "method.ctx_init_std", &c->ctx_init_std) ||
        get_b(cfg, "method.deep_prompts", &c->deep_prompts) || get_i(cfg, "method.deep_depth", &c->deep_depth) ||
        get_i(cfg, "method.deep_tokens", &c->deep_tokens) || config_get_str(cfg, "method.kd_form", &kd) ||
        get_f(cfg, "method.kd_margin", &c->kd_margin) || get_f(cfg, "method.kd_tau", &c->kd_tau) ||
        get_b(cfg, "method.bicmci", &c->bicmci) || get_b(cfg, "method.bicmci_full", &c->bicmci_full) ||
        get_b(cfg, "method.zero_init_out", &c->zero_init_out) || config_get_str(cfg, "method.deform", &deform) ||
        get_i(cfg, "method.dat_groups", &c->dat_groups) || get_i(cfg, "method.dat_kernel", &c->dat_kernel) ||
        get_f(cfg, "method.dat_offset_range", &c->dat_offset_range) || get_b(cfg, "method.dat_rpe", &c->dat_rpe) ||
        get_i(cfg, "method.msda_points", &c->msda_points) ||
        get_f(cfg, "method.init_std", &c->init_std) ||
        get_b(cfg, "method.maps_updated_text", &c->maps_updated_text) ||
        get_b(cfg, "method.adapter", &c->adapter) || get_i(cfg, "method.adapter_ratio", &c->adapter_ratio) ||
        get_b(cfg, "method.adapter_residual", &c->adapter_residual) || get_f(cfg, "method.tau", &c->tau) ||
        get_b(cfg, "method.upsample_align_corners", &c->upsample_align_corners) ||
        get_f(cfg, "method.gauss_sigma", &c->gauss_sigma) || get_f(cfg, "method.gauss_truncate", &c->gauss_truncate) ||
        get_f(cfg, "method.w_kd", &c->w_kd) || get_f(cfg, "method.w_global", &c->w_global) ||
        get_f(cfg, "method.w_local", &c->w_local) || get_f(cfg, "method.adam_eps", &c->adam_eps) ||
        config_get_str(cfg, "method.class_token", &class_token) || config_get_float(cfg, "train.lr", &lr) ||
        config_get_float(cfg, "train.beta1", &b1) || config_get_float(cfg, "train.beta2", &b2) ||
        config_get_int(cfg, "run.seed", &seed))
        return -1;
    if (!strcmp(kd, "bounded")) c->kd_form = KD_BOUNDED;
    else if (!strcmp(kd, "triplet")) c->kd_form = KD_TRIPLET;
    else if (!strcmp(kd, "infonce")) c->kd_form = KD_INFONCE;
    else return err_set("method.kd_form: '%s' (valid: bounded triplet infonce)", kd);
    if (!strcmp(deform, "dat")) c->deform = DEFORM_DAT;
    else if (!strcmp(deform, "msda")) c->deform = DEFORM_MSDA;
    else return err_set("method.deform: '%s' (valid: dat msda)", deform);
    if (strcmp(class_token, "name") && strcmp(class_token, "object"))
        return err_set("method.class_token: '%s' (valid: name object)", class_token);
    c->lr = (float)lr;
    c->beta1 = (float)b1;
    c->beta2 = (float)b2;
    c->seed = (uint64_t)seed;
    return kanoclip_config_check(c);
}
