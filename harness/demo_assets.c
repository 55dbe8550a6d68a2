// Synthetic dataset and tiny random checkpoint for the demo (see demo_assets.h).
#include "harness/demo_assets.h"
#include "harness/log.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/synth.h"
#include "model/checkpoint_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int synthetic_enabled(const Config *cfg, const char **out) {
    int on = 0;
    if (config_get_bool(cfg, "data.synthetic.enabled", &on) < 0 || config_get_str(cfg, "data.synthetic.out", out) < 0)
        return -1;
    return on && *out && **out;
}

static int prepare_synthetic(const Config *cfg) {
    const char *out = NULL, *layout = NULL;
    int on = synthetic_enabled(cfg, &out);
    if (on <= 0) return on;
    if (fs_is_dir(out)) return 0;
    long classes, per_class, size, seed, train_classes;
    if (config_get_str(cfg, "data.synthetic.layout", &layout) < 0 ||
        config_get_int(cfg, "data.synthetic.classes", &classes) < 0 ||
        config_get_int(cfg, "data.synthetic.images_per_class", &per_class) < 0 ||
        config_get_int(cfg, "data.synthetic.image_size", &size) < 0 ||
        config_get_int(cfg, "data.synthetic.seed", &seed) < 0 ||
        config_get_int(cfg, "data.synthetic.train_classes", &train_classes) < 0)
        return -1;
    if (train_classes < 0 || train_classes >= classes)
        return err_set("data.synthetic.train_classes: %ld must be 0 (no split) or below data.synthetic.classes (%ld)",
                       train_classes, classes);
    if (per_class < 2) return err_set("data.synthetic.images_per_class: %ld (need at least 2: normal and anomalous)", per_class);
    // Written into OUT.partial renamed at the end: a killed run never leaves half a dataset under the real name.
    char *tmp = malloc(strlen(out) + 16);
    sprintf(tmp, "%s.partial", out);
    SynthOptions o = {.out = tmp, .layout = layout, .n_classes = (int)classes, .class_offset = 0,
                      .seed = (uint64_t)seed, .size = (int)size, .n_test_normal = (int)(per_class / 2),
                      .n_test_anomalous = (int)(per_class - per_class / 2), .n_train_normal = 2, .write_meta = 0};
    log_msg("synthetic data: writing %ld classes x %ld test images (%ldx%ld px, %s layout, seed %ld) into %s", classes,
            per_class, size, size, layout, seed, out);
    int rc = synth_write(&o);
    if (rc == 0 && rename(tmp, out) != 0) rc = err_set("%s: cannot rename %s into place", out, tmp);
    free(tmp);
    return rc;
}

int demo_synthetic_class_used(const Config *cfg, const char *root, int train_role, const char *class_name) {
    const char *out = NULL;
    long k = 0;
    if (synthetic_enabled(cfg, &out) <= 0 || strcmp(out, root)) return 1;
    if (config_get_int(cfg, "data.synthetic.train_classes", &k) < 0 || k <= 0) return 1;
    int gen = -1;
    for (int c = 0; c < synth_n_classes() && gen < 0; c++)
        if (!strcmp(synth_class_name(c), class_name)) gen = c;
    if (gen < 0) return 1;  // not a generated class (someone added a folder): keep it visible
    return train_role ? gen < k : gen >= k;
}

// The words prompts use, so that the small vocabulary spells them as single tokens (others fall back to bytes).
static int write_vocab(const Config *cfg, const char *dir) {
    const char *words[128];
    int n = 0;
    static const char *fixed[] = {"a", "photo", "of", "normal", "damaged", "object", "."};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) words[n++] = fixed[i];
    char *names = NULL;  // class names split at '_' into words
    size_t len = 0;
    for (int c = 0; c < synth_n_classes(); c++) len += strlen(synth_class_name(c)) + 1;
    names = malloc(len + 1);
    char *p = names;
    for (int c = 0; c < synth_n_classes(); c++) {
        strcpy(p, synth_class_name(c));
        for (char *tok = strtok(p, "_"); tok && n < 128; tok = strtok(NULL, "_")) words[n++] = tok;
        p += strlen(synth_class_name(c)) + 1;
    }
    int rc = clip_write_small_vocab(dir, words, n);
    free(names);
    return rc;
}

static int prepare_checkpoint(const Config *cfg) {
    int on = 0;
    const char *dir = NULL;
    if (config_get_bool(cfg, "model.random.enabled", &on) < 0 || config_get_str(cfg, "model.checkpoint", &dir) < 0)
        return -1;
    if (!on) return 0;
    if (!dir || !*dir) return err_set("model.checkpoint: empty (model.random needs the folder to write into)");
    if (fs_is_dir(dir)) return 0;
    long v[9], size;
    static const char *keys[9] = {"seed", "vision_width", "vision_layers", "vision_heads", "patch_size",
                                  "text_width", "text_layers", "text_heads", "projection_dim"};
    char key[64];
    for (int i = 0; i < 9; i++) {
        snprintf(key, sizeof key, "model.random.%s", keys[i]);
        if (config_get_int(cfg, key, &v[i]) < 0) return -1;
        if (i > 0 && v[i] < 1) return err_set("%s: %ld must be positive", key, v[i]);
    }
    if (config_get_int(cfg, "model.image_size", &size) < 0) return -1;
    if (v[1] % v[3] || v[5] % v[7]) return err_set("model.random: widths must be multiples of the head counts");
    ClipConfig c = {0};
    c.vision = (TowerShape){.width = (int)v[1], .layers = (int)v[2], .heads = (int)v[3], .mlp = (int)(4 * v[1]),
                            .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.text = (TowerShape){.width = (int)v[5], .layers = (int)v[6], .heads = (int)v[7], .mlp = (int)(4 * v[5]),
                          .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.vocab_size = 49408;
    c.context_length = 77;
    c.eos_token_id = 49407;
    c.image_size = (int)size;
    c.patch_size = (int)v[4];
    c.channels = 3;
    c.projection_dim = (int)v[8];
    c.logit_scale_init = 2.6592f;
    log_msg("model: writing a tiny random CLIP (vision %ldx%ld, text %ldx%ld, patch %ld, projection %ld, seed %ld) "
            "into %s", v[2], v[1], v[6], v[5], v[4], v[8], v[0], dir);
    // Written into a temporary folder renamed at the end, so a killed run never leaves half a checkpoint.
    char *tmp = malloc(strlen(dir) + 16);
    sprintf(tmp, "%s.partial", dir);
    if (fs_mkdirs(tmp) < 0) { free(tmp); return -1; }
    int rc = clip_write_random(tmp, &c, (uint64_t)v[0]);
    if (rc == 0) rc = write_vocab(cfg, tmp);
    if (rc == 0 && rename(tmp, dir) != 0) rc = err_set("%s: cannot rename %s into place", dir, tmp);
    free(tmp);
    return rc;
}

int demo_assets_prepare(const Config *cfg) {
    if (prepare_synthetic(cfg) < 0 || prepare_checkpoint(cfg) < 0) return -1;
    return 0;
}
