// Config -> Settings, the method sections: KAnoCLIP's `method:` switches (model/kanoclip_config.h; the numbers in
// experiments/defaults.yaml's comments are the FLAGs of docs/reference/kanoclip-components.md §10), the harness side of its
// prompts, the baselines' train.baseline.* (harness/config/baseline_setup.h) and the knowledge base's kb.*.
#include "harness/config/baseline_setup.h"
#include "harness/config/settings_read.h"
#include "harness/run/method.h"
#include "common/error.h"

#include <stddef.h>
#include <string.h>

typedef enum { F_INT, F_FLOAT, F_BOOL } FieldType;

// One `method.*` key: its field of KanoclipConfig and its range (floats: lo < v when lo_open).
typedef struct {
    const char *key;
    FieldType type;
    size_t offset;
    double lo, hi;
    int lo_open;
} KanoField;

#define I(k, f, lo, hi) {"method." k, F_INT, offsetof(KanoclipConfig, f), lo, hi, 0}
#define B(k, f) {"method." k, F_BOOL, offsetof(KanoclipConfig, f), 0, 1, 0}
#define F(k, f, lo, open, hi) {"method." k, F_FLOAT, offsetof(KanoclipConfig, f), lo, hi, open}
static const KanoField KANO_FIELDS[] = {
    B("global_ln_post", global_ln_post), B("global_max_map", global_max_map),
    B("knpl", knpl), I("n_ctx", n_ctx, 1, 64), F("ctx_init_std", ctx_init_std, 0, 0, 10),
    B("deep_prompts", deep_prompts), I("deep_depth", deep_depth, 1, 1024), I("deep_tokens", deep_tokens, 1, 64),
    F("kd_margin", kd_margin, 0, 0, 100), F("kd_tau", kd_tau, 0, 1, 100),
    I("heads", heads, 1, 1024), B("bicmci", bicmci), B("bicmci_full", bicmci_full), B("zero_init_out", zero_init_out),
    I("dat_groups", dat_groups, 1, 1024), I("dat_kernel", dat_kernel, 1, 63),
    F("dat_offset_range", dat_offset_range, 0, 0, 1000), B("dat_rpe", dat_rpe), I("msda_points", msda_points, 1, 64),
    F("init_std", init_std, 0, 0, 10), B("maps_updated_text", maps_updated_text),
    B("adapter", adapter), I("adapter_ratio", adapter_ratio, 1, 4096), B("adapter_residual", adapter_residual),
    F("tau", tau, 0, 1, 100), B("upsample_align_corners", upsample_align_corners),
    F("gauss_sigma", gauss_sigma, 0, 0, 1000), F("gauss_truncate", gauss_truncate, 0, 1, 100),
    F("w_kd", w_kd, 0, 0, 1e6), F("w_global", w_global, 0, 0, 1e6), F("w_local", w_local, 0, 0, 1e6),
    F("adam_eps", adam_eps, 0, 1, 1),
};
#undef I
#undef B
#undef F

// method.normal_words, method.abnormal_words: the adjectives of [Normal] and [Abnormal], one prompt each, the
// same count in both (1..SETTINGS_MAX_ADJ).
static int read_state_words(const Config *cfg, Settings *s) {
    const char *keys[2] = {"method.normal_words", "method.abnormal_words"};
    int n[2];
    for (int k = 0; k < 2; k++) {
        if ((n[k] = config_list_len(cfg, keys[k])) < 0) return -1;
        if (n[k] < 1 || n[k] > SETTINGS_MAX_ADJ)
            return settings_bad(cfg, keys[k], "%d adjectives (give 1..%d)", n[k], SETTINGS_MAX_ADJ);
        for (int i = 0; i < n[k]; i++)
            if (!(s->prompts.state_words[k][i] = config_list_str(cfg, keys[k], i))) return -1;
    }
    if (n[0] != n[1])
        return settings_bad(cfg, keys[1], "%d adjectives, but method.normal_words has %d: give both the same count",
                            n[1], n[0]);
    s->prompts.n_adj = n[0];
    return 0;
}

static int read_kanoclip(const Config *cfg, Settings *s) {
    KanoclipConfig *c = &s->kanoclip;
    *c = kanoclip_config_default();
    for (size_t i = 0; i < sizeof KANO_FIELDS / sizeof *KANO_FIELDS; i++) {
        const KanoField *f = &KANO_FIELDS[i];
        void *p = (char *)c + f->offset;
        int rc = f->type == F_INT     ? settings_int(cfg, f->key, (long)f->lo, (long)f->hi, p)
                 : f->type == F_FLOAT ? settings_float(cfg, f->key, f->lo, f->lo_open, f->hi, p)
                                      : settings_bool(cfg, f->key, p);
        if (rc < 0) return -1;
    }
    int kd, deform;
    if (settings_choice(cfg, "method.kd_form", "bounded triplet infonce", &kd, NULL) ||
        settings_choice(cfg, "method.global_source", "original vv", &c->global_vv, NULL) ||
        settings_choice(cfg, "method.local_loss", "stages fused", &c->local_fused, NULL) ||
        settings_choice(cfg, "method.map_norm", "mean minmax", &c->map_minmax, NULL) ||
        settings_choice(cfg, "method.deform", "dat msda", &deform, NULL) ||
        settings_choice(cfg, "method.class_token", "name object", &s->prompts.class_object, NULL) ||
        settings_str_list(cfg, "method.fixed_prompts", 2, s->prompts.fixed) ||
        read_state_words(cfg, s))
        return -1;
    c->kd_form = kd == 0 ? KD_BOUNDED : kd == 1 ? KD_TRIPLET : KD_INFONCE;
    c->deform = deform == 0 ? DEFORM_DAT : DEFORM_MSDA;
    if (c->global_vv && !c->global_ln_post)
        return settings_bad(cfg, "method.global_source", "vv reads the V-V class token through ln_post (row 0 of the "
                            "last stage): set method.global_ln_post true");
    if (c->global_vv && s->model.vv_from == 0)
        return settings_bad(cfg, "method.global_source", "vv needs the V-V path (model.vv_from > 0)");
    if (c->deep_tokens > c->n_ctx)
        return settings_bad(cfg, "method.deep_tokens", "%d exceeds method.n_ctx (%d)", c->deep_tokens, c->n_ctx);
    if (!c->knpl)
        for (int i = 0; i < 2; i++)
            if (!strstr(s->prompts.fixed[i], "{}"))
                return settings_bad(cfg, "method.fixed_prompts", "item %d: '%s' has no {} for the class", i,
                                    s->prompts.fixed[i]);
    // Sizes and the feature side come from the backbone and model.* (settings_bind_model); the optimiser from
    // train.*, the seed from run.seed, the device from run.*.
    c->image_size = s->model.image_size;
    c->n_stages = s->model.n_layers;
    c->clip_vv = s->model.vv_from > 0;
    c->lr = s->train.lr;
    c->beta1 = s->train.beta1;
    c->beta2 = s->train.beta2;
    c->seed = s->run.seed;
    c->device = s->run.device;
    c->precision = s->run.precision;
    return 0;
}

int settings_read_method(const Config *cfg, Settings *s) {
    if (read_kanoclip(cfg, s) < 0) return -1;
    // The baselines' switches, checked now over a 24-layer tower's defaults and bound to the real depth later.
    if (s->train.method->is_baseline && baseline_config_from(cfg, 24, &s->baseline) < 0) return -1;
    if (kb_settings_from_config(cfg, &s->kb) < 0) return -1;
    return 0;
}
