// config.json (+ preprocessor_config.json) of a Hugging Face CLIP folder into a ClipConfig. Keys missing there take
// the transformers defaults (CLIPTextConfig / CLIPVisionConfig / CLIPConfig), so both the minimal configs newer
// transformers save and the full legacy dumps read the same.
#include "model/checkpoint.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

typedef struct {
    const char *file;    // for messages
    const char *section; // "text_config.", "vision_config." or ""
} Where;

static int get_int(const cJSON *obj, const char *key, int *out, int min, Where w) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d == floor(d) && d >= min && d <= 1 << 30))
        return err_set("%s: %s%s: expected an integer >= %d", w.file, w.section, key, min);
    *out = (int)d;
    return 0;
}

static int get_float(const cJSON *obj, const char *key, float *out, Where w) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return err_set("%s: %s%s: expected a number", w.file, w.section, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int get_act(const cJSON *obj, Activation *out, Where w) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "quick_gelu") == 0) *out = ACT_QUICK_GELU;
    else if (cJSON_IsString(v) && strcmp(v->valuestring, "gelu") == 0) *out = ACT_GELU;
    else
        return err_set("%s: %shidden_act: \"%s\" is not supported (quick_gelu or gelu)", w.file, w.section,
                       cJSON_IsString(v) ? v->valuestring : "(not a string)");
    return 0;
}

static int read_tower(const cJSON *obj, TowerShape *t, Where w) {
    if (!obj || cJSON_IsNull(obj)) return 0;   // absent or null: the defaults stand
    if (!cJSON_IsObject(obj)) return err_set("%s: %.*s: expected an object", w.file, (int)strlen(w.section) - 1, w.section);
    if (get_int(obj, "hidden_size", &t->width, 1, w) || get_int(obj, "num_hidden_layers", &t->layers, 0, w) ||
        get_int(obj, "num_attention_heads", &t->heads, 1, w) || get_int(obj, "intermediate_size", &t->mlp, 1, w) ||
        get_float(obj, "layer_norm_eps", &t->ln_eps, w) || get_act(obj, &t->act, w))
        return -1;
    return 0;
}

static int read_text(const cJSON *obj, ClipConfig *c, Where w) {
    if (!obj || !cJSON_IsObject(obj)) return read_tower(obj, &c->text, w);
    if (read_tower(obj, &c->text, w) || get_int(obj, "vocab_size", &c->vocab_size, 1, w) ||
        get_int(obj, "max_position_embeddings", &c->context_length, 2, w) ||
        get_int(obj, "eos_token_id", &c->eos_token_id, 0, w))
        return -1;
    return 0;
}

static int read_vision(const cJSON *obj, ClipConfig *c, Where w) {
    if (!obj || !cJSON_IsObject(obj)) return read_tower(obj, &c->vision, w);
    if (read_tower(obj, &c->vision, w) || get_int(obj, "image_size", &c->image_size, 1, w) ||
        get_int(obj, "patch_size", &c->patch_size, 1, w) || get_int(obj, "num_channels", &c->channels, 1, w))
        return -1;
    return 0;
}

static void set_defaults(ClipConfig *c) {
    memset(c, 0, sizeof *c);
    c->text = (TowerShape){.width = 512, .layers = 12, .heads = 8, .mlp = 2048, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c->vision = (TowerShape){.width = 768, .layers = 12, .heads = 12, .mlp = 3072, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c->vocab_size = 49408;
    c->context_length = 77;
    c->eos_token_id = 49407;
    c->image_size = 224;
    c->patch_size = 32;
    c->channels = 3;
    c->projection_dim = 512;
    c->logit_scale_init = 2.6592f;
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(c->image_mean, mean, sizeof mean);
    memcpy(c->image_std, std, sizeof std);
}

static int read_triple(const cJSON *root, const char *key, float out[3], const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {   // a single number applies to every channel
        out[0] = out[1] = out[2] = (float)v->valuedouble;
    } else {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) return err_set("%s: %s: expected 3 numbers", file, key);
        for (int i = 0; i < 3; i++) {
            const cJSON *x = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(x)) return err_set("%s: %s: expected 3 numbers", file, key);
            out[i] = (float)x->valuedouble;
        }
    }
    if (strcmp(key, "image_std") == 0)
        for (int i = 0; i < 3; i++)
            if (!(out[i] > 0)) return err_set("%s: %s: must be positive", file, key);
    return 0;
}

static int check_heads(const TowerShape *t, const char *file, const char *section) {
    if (t->width % t->heads != 0)
        return err_set("%s: %snum_attention_heads: %d does not divide hidden_size %d", file, section, t->heads, t->width);
    return 0;
}

int clip_config_load(const char *dir, ClipConfig *cfg) {
    set_defaults(cfg);
    char *path = fs_join(dir, "config.json");
    if (!path) return err_set("%s: out of memory", dir);
    cJSON *root = json_read_object(path);
    int rc = root ? 0 : -1;
    if (root) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
        const char *mt = cJSON_IsString(type) ? type->valuestring : "clip";
        Where top = {path, ""}, tw = {path, "text_config."}, vw = {path, "vision_config."};
        if (strcmp(mt, "clip_text_model") == 0) {
            // A single-tower config (CLIPTextModel[WithProjection]) keeps its keys at the top level.
            rc = read_text(root, cfg, top) || get_int(root, "projection_dim", &cfg->projection_dim, 1, top);
        } else if (strcmp(mt, "clip_vision_model") == 0) {
            rc = read_vision(root, cfg, top) || get_int(root, "projection_dim", &cfg->projection_dim, 1, top);
        } else {
            // Old transformers dumps carry text_config_dict / vision_config_dict too; CLIPConfig lets them win.
            Where tdw = {path, "text_config_dict."}, vdw = {path, "vision_config_dict."};
            rc = read_text(cJSON_GetObjectItemCaseSensitive(root, "text_config"), cfg, tw) ||
                 read_text(cJSON_GetObjectItemCaseSensitive(root, "text_config_dict"), cfg, tdw) ||
                 read_vision(cJSON_GetObjectItemCaseSensitive(root, "vision_config"), cfg, vw) ||
                 read_vision(cJSON_GetObjectItemCaseSensitive(root, "vision_config_dict"), cfg, vdw) ||
                 get_int(root, "projection_dim", &cfg->projection_dim, 1, top) ||
                 get_float(root, "logit_scale_init_value", &cfg->logit_scale_init, top);
        }
        if (rc == 0)
            rc = check_heads(&cfg->text, path, "text_config.") || check_heads(&cfg->vision, path, "vision_config.");
        rc = rc ? -1 : 0;
        cJSON_Delete(root);
    }
    free(path);
    if (rc) return -1;

    char *pre = fs_join(dir, "preprocessor_config.json");
    if (!pre) return err_set("%s: out of memory", dir);
    if (fs_exists(pre)) {
        cJSON *p = json_read_object(pre);
        rc = p ? (read_triple(p, "image_mean", cfg->image_mean, pre) || read_triple(p, "image_std", cfg->image_std, pre))
               : -1;
        rc = rc ? -1 : 0;
        cJSON_Delete(p);
    }
    free(pre);
    return rc;
}
