// Config -> Settings: the run, model, data, train, eval, cache and report sections (see settings.h). The method
// sections are read by settings_method.c, the inputs checked by settings_inputs.c.
#include "harness/config/settings.h"
#include "harness/config/settings_read.h"
#include "harness/run/method.h"
#include "common/error.h"
#include "datasets/dataset.h"

#include <stdlib.h>
#include <string.h>

static int read_dataset(const Config *cfg, const char *key, const ConfigDataset *cd, DatasetSettings *out) {
    DatasetType t;
    if (dataset_type_from_name(cd->type, &t) < 0) return settings_bad(cfg, key, "%s", err_msg());
    if (!cd->root || !*cd->root) return settings_bad(cfg, key, "dataset %s: no root folder", cd->name);
    *out = (DatasetSettings){.key = key, .name = cd->name, .type = cd->type, .root = cd->root};
    return 0;
}

static int read_run(const Config *cfg, Settings *s) {
    long seed;
    const char *dev, *prec;
    if (settings_str(cfg, "run.name", &s->run.name) || settings_str(cfg, "run.out_dir", &s->run.out_dir) ||
        settings_long(cfg, "run.seed", 0, -1, &seed) || settings_int(cfg, "run.threads", 0, 4096, &s->run.threads) ||
        settings_str(cfg, "run.device", &dev) || settings_str(cfg, "run.precision", &prec))
        return -1;
    if (!*s->run.name || strchr(s->run.name, '/'))
        return settings_bad(cfg, "run.name", "'%s': expected a non-empty name without '/'", s->run.name);
    if (!*s->run.out_dir) return settings_bad(cfg, "run.out_dir", "empty");
    s->run.seed = (unsigned long long)seed;
    // device_select checks that CUDA can be used here, so a GPU config fails now, not after the data is read.
    if (device_select(dev, &s->run.device) < 0) return settings_bad(cfg, "run.device", "%s", err_msg());
    if (gemm_precision_parse(prec, &s->run.precision) < 0) return settings_bad(cfg, "run.precision", "%s", err_msg());
    return 0;
}

static int read_model(const Config *cfg, Settings *s) {
    const char *pos, *resize;
    if (settings_str(cfg, "model.checkpoint", &s->model.checkpoint) ||
        settings_choice(cfg, "model.resize", "square short-crop", &s->model.resize, &resize) ||
        settings_int(cfg, "model.image_size", 1, 8192, &s->model.image_size) ||
        settings_int(cfg, "model.vv_from", 0, 1024, &s->model.vv_from) ||
        settings_choice(cfg, "model.pos_interp", "bilinear bicubic bicubic-aa", &s->model.pos_interp, &pos))
        return -1;
    if (!*s->model.checkpoint)
        return settings_bad(cfg, "model.checkpoint", "not set; download openai/clip-vit-large-patch14-336 from Hugging "
                            "Face into models/clip-vit-large-patch14-336 and set model.checkpoint to that folder");
    int n = 0;
    if (settings_int_list(cfg, "model.layers", 1, SETTINGS_MAX_LAYERS, 1, 1024, s->model.layers, &n) < 0) return -1;
    s->model.n_layers = n;
    RandomClipSettings *r = &s->model.random;
    if (settings_bool(cfg, "model.random.enabled", &r->enabled) ||
        settings_long(cfg, "model.random.seed", 0, -1, &r->seed) ||
        settings_int(cfg, "model.random.vision_width", 1, 65536, &r->vision_width) ||
        settings_int(cfg, "model.random.vision_layers", 1, 1024, &r->vision_layers) ||
        settings_int(cfg, "model.random.vision_heads", 1, 1024, &r->vision_heads) ||
        settings_int(cfg, "model.random.patch_size", 1, 1024, &r->patch_size) ||
        settings_int(cfg, "model.random.text_width", 1, 65536, &r->text_width) ||
        settings_int(cfg, "model.random.text_layers", 1, 1024, &r->text_layers) ||
        settings_int(cfg, "model.random.text_heads", 1, 1024, &r->text_heads) ||
        settings_int(cfg, "model.random.projection_dim", 1, 65536, &r->projection_dim))
        return -1;
    if (r->vision_width % r->vision_heads)
        return settings_bad(cfg, "model.random.vision_heads", "%d does not divide vision_width %d", r->vision_heads,
                            r->vision_width);
    if (r->text_width % r->text_heads)
        return settings_bad(cfg, "model.random.text_heads", "%d does not divide text_width %d", r->text_heads,
                            r->text_width);
    return 0;
}

static int read_data(const Config *cfg, Settings *s) {
    SyntheticSettings *y = &s->data.synthetic;
    if (settings_bool(cfg, "data.synthetic.enabled", &y->enabled) ||
        settings_str(cfg, "data.synthetic.out", &y->out) || settings_str(cfg, "data.synthetic.layout", &y->layout) ||
        settings_int(cfg, "data.synthetic.classes", 1, 1000, &y->classes) ||
        settings_int(cfg, "data.synthetic.images_per_class", 2, 1000000, &y->images_per_class) ||
        settings_int(cfg, "data.synthetic.image_size", 8, 8192, &y->image_size) ||
        settings_int(cfg, "data.synthetic.seed", 0, 0x7fffffff, &y->seed) ||
        settings_int(cfg, "data.synthetic.train_classes", 0, 1000, &y->train_classes) ||
        settings_bool(cfg, "data.resize_masks", &s->data.resize_masks))
        return -1;
    if (y->enabled && y->train_classes >= y->classes)
        return settings_bad(cfg, "data.synthetic.train_classes", "%d leaves no class of %d to evaluate on",
                            y->train_classes, y->classes);
    if (!settings_uses_train(s)) return 0;
    ConfigDataset cd;
    if (config_train_dataset(cfg, &cd) < 0) return -1;
    return read_dataset(cfg, "data.train", &cd, &s->data.train);
}

static int read_train(const Config *cfg, Settings *s) {
    const char *method;
    if (settings_str(cfg, "train.method", &method) < 0) return -1;
    if (!(s->train.method = method_find(method)))
        return settings_bad(cfg, "train.method", "'%s' (valid: %s)", method, method_names());
    if (settings_int(cfg, "train.epochs", 0, 1000000, &s->train.epochs) ||
        settings_int(cfg, "train.batch_size", 1, 65536, &s->train.batch_size) ||
        settings_float(cfg, "train.lr", 0, 1, 10, &s->train.lr) ||
        settings_float(cfg, "train.beta1", 0, 0, 0.999999, &s->train.beta1) ||
        settings_float(cfg, "train.beta2", 0, 0, 0.9999999, &s->train.beta2) ||
        settings_float(cfg, "train.weight_decay", 0, 0, 10, &s->train.weight_decay) ||
        settings_int(cfg, "train.log_every", 1, 1 << 30, &s->train.log_every) ||
        settings_int(cfg, "train.checkpoint_every", 1, 1 << 30, &s->train.checkpoint_every))
        return -1;
    if (s->train.weight_decay != 0)
        return settings_bad(cfg, "train.weight_decay", "%g: the heads train with plain Adam (set 0)", s->train.weight_decay);
    return 0;
}

static int read_eval(const Config *cfg, Settings *s) {
    int n = config_list_len(cfg, "eval.datasets");
    if (n < 0) return -1;
    if (n == 0) return settings_bad(cfg, "eval.datasets", "empty (name at least one dataset to evaluate on)");
    s->eval.datasets = calloc((size_t)n, sizeof *s->eval.datasets);
    s->eval.n_datasets = n;
    for (int i = 0; i < n; i++) {
        ConfigDataset cd;
        if (config_dataset(cfg, "eval.datasets", i, &cd) < 0 ||
            read_dataset(cfg, "eval.datasets", &cd, &s->eval.datasets[i]) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(s->eval.datasets[j].name, cd.name))
                return settings_bad(cfg, "eval.datasets", "'%s' twice (give each dataset its own name)", cd.name);
    }
    if (settings_int(cfg, "eval.image_size", 1, 8192, &s->eval.image_size) ||
        settings_choice(cfg, "eval.aupro", "mvtec anomalyclip anomalyclip-f32", &s->eval.aupro_ac200, &s->eval.aupro) ||
        settings_int(cfg, "eval.pixel_bins", 0, 1 << 28, &s->eval.pixel_bins) ||
        settings_bool(cfg, "eval.save_maps", &s->eval.save_maps) ||
        settings_int(cfg, "eval.overlays", 0, 1 << 20, &s->eval.overlays) ||
        settings_int(cfg, "eval.batch_size", 1, 65536, &s->eval.batch_size) ||
        settings_int(cfg, "eval.bootstrap", 0, 1000000, &s->eval.bootstrap))
        return -1;
    long boot_seed = 0;
    if (settings_long(cfg, "eval.bootstrap_seed", 0, -1, &boot_seed)) return -1;
    s->eval.bootstrap_seed = (unsigned long long)boot_seed;
    if (s->eval.pixel_bins == 1) return settings_bad(cfg, "eval.pixel_bins", "1: give 0 (exact) or at least 2 bins");
    // Maps are made at the method's input size; the key states it, so the two may not disagree.
    if (s->eval.image_size != s->model.image_size)
        return settings_bad(cfg, "eval.image_size", "%d, but maps are made at model.image_size (%d): set both alike",
                            s->eval.image_size, s->model.image_size);
    return 0;
}

static int read_cache_report(const Config *cfg, Settings *s) {
    int table = 0;
    if (settings_str(cfg, "cache.dir", &s->cache.dir) || settings_bool(cfg, "cache.features", &s->cache.features) ||
        settings_int(cfg, "cache.shards", 1, CACHE_MAX_SHARDS, &s->cache.shards) ||
        settings_str(cfg, "report.label", &s->report.label) ||
        settings_choice(cfg, "report.table", "main ablation table3", &table, &s->report.table) ||
        settings_int(cfg, "report.order", -1000000, 1000000, &s->report.order) ||
        settings_bool(cfg, "report.tables", &s->report.tables) || settings_bool(cfg, "report.plots", &s->report.plots))
        return -1;
    if (!*s->cache.dir) return settings_bad(cfg, "cache.dir", "empty");
    // Shards are merged into the shared cache; a run keeping its features in its own folder has none to share.
    if (s->cache.shards > 1 && !s->cache.features)
        return settings_bad(cfg, "cache.shards", "%d, but cache.features is false (shards are merged into the shared "
                            "feature cache: set cache.features true, or cache.shards 1)", s->cache.shards);
    return 0;
}

int settings_uses_train(const Settings *s) {
    const Method *m = s->train.method;
    return m->train_set_always || (m->learns && s->train.epochs > 0);
}

Settings *settings_load(const Config *cfg) {
    Settings *s = calloc(1, sizeof *s);
    s->cfg = cfg;
    kb_settings_defaults(&s->kb);
    // train first: which method decides what else is read (data.train for the methods that train).
    if (read_train(cfg, s) < 0 || read_run(cfg, s) < 0 || read_model(cfg, s) < 0 || read_data(cfg, s) < 0 ||
        read_eval(cfg, s) < 0 || read_cache_report(cfg, s) < 0 || settings_read_method(cfg, s) < 0) {
        settings_free(s);
        return NULL;
    }
    return s;
}

void settings_free(Settings *s) {
    if (!s) return;
    kb_settings_free(&s->kb);
    free(s->eval.datasets);
    free(s);
}
