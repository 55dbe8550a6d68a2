// The inputs a run reads and writes, checked before anything is created or computed (see settings.h): the output
// folder, the checkpoint folder and its weights, and the method's sizes against the checkpoint's towers.
#include "harness/config/baseline_setup.h"
#include "harness/config/settings_read.h"
#include "harness/run/method.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int settings_checkpoint_generated(const Settings *s) {
    return s->model.random.enabled && !fs_is_dir(s->model.checkpoint);
}

ClipConfig settings_random_clip(const Settings *s) {
    const RandomClipSettings *r = &s->model.random;
    ClipConfig c = {0};
    c.vision = (TowerShape){.width = r->vision_width, .layers = r->vision_layers, .heads = r->vision_heads,
                            .mlp = 4 * r->vision_width, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.text = (TowerShape){.width = r->text_width, .layers = r->text_layers, .heads = r->text_heads,
                          .mlp = 4 * r->text_width, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.vocab_size = 49408;
    c.context_length = 77;
    c.eos_token_id = 49407;
    c.image_size = s->model.image_size;
    c.patch_size = r->patch_size;
    c.channels = 3;
    c.projection_dim = r->projection_dim;
    c.logit_scale_init = 2.6592f;
    return c;
}

// run.out_dir: the nearest existing folder on its path takes a new file (a probe, removed at once), so a run on a
// read-only or mistyped path stops here and not after hours of compute.
static int check_out_dir(const Settings *s) {
    const Config *cfg = s->cfg;
    char *p = strdup(s->run.out_dir);
    while (!fs_exists(p)) {
        char *slash = strrchr(p, '/');
        if (!slash) { strcpy(p, "."); break; }
        if (slash == p) { p[1] = 0; break; }
        *slash = 0;
    }
    int rc = 0;
    if (!fs_is_dir(p)) {
        rc = settings_bad(cfg, "run.out_dir", "%s: %s is not a folder", s->run.out_dir, p);
    } else {
        char *probe = fs_join(p, ".kanoclip-write-probe-XXXXXX");
        int fd = mkstemp(probe);
        if (fd < 0) rc = settings_bad(cfg, "run.out_dir", "%s: cannot write in %s (%s)", s->run.out_dir, p, strerror(errno));
        else { close(fd); unlink(probe); }
        free(probe);
    }
    free(p);
    return rc;
}

static int missing_checkpoint(const Settings *s) {
    const char *dir = s->model.checkpoint, *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    if (!strncmp(base, "clip-", 5))
        return settings_bad(s->cfg, "model.checkpoint", "folder %s not found; download openai/%s from Hugging Face into it",
                            dir, base);
    if (strstr(base, "plus-240"))  // WinCLIP's open_clip backbone
        return settings_bad(s->cfg, "model.checkpoint", "folder %s not found; convert open_clip's ViT-B-16-plus-240 "
                            "(laion400m) into it with kanoclip convert-openclip --in FILE.pt --out %s --vocab "
                            "bpe_simple_vocab_16e6.txt.gz", dir, dir);
    return settings_bad(s->cfg, "model.checkpoint", "folder %s not found; put a Hugging Face CLIP checkpoint there "
                        "(e.g. openai/clip-vit-large-patch14-336)", dir);
}

int settings_check_inputs(Settings *s) {
    if (check_out_dir(s) < 0) return -1;
    ClipConfig clip;
    if (settings_checkpoint_generated(s)) {
        clip = settings_random_clip(s);
    } else {
        if (!fs_is_dir(s->model.checkpoint)) return missing_checkpoint(s);
        if (clip_config_load(s->model.checkpoint, &clip) < 0) return settings_bad(s->cfg, "model.checkpoint", "%s", err_msg());
        // Opening the weights validates every tensor's offsets against the file (memory-mapped: nothing is read).
        Checkpoint *ck = checkpoint_open(s->model.checkpoint);
        if (!ck) return settings_bad(s->cfg, "model.checkpoint", "%s", err_msg());
        checkpoint_close(ck);
    }
    return settings_bind_model(s, &clip);
}

int settings_bind_model(Settings *s, const ClipConfig *clip) {
    const Config *cfg = s->cfg;
    int depth = clip->vision.layers, S = s->model.image_size;
    if (S % clip->patch_size)
        return settings_bad(cfg, "model.image_size", "%d is not a multiple of the checkpoint's patch size %d (e.g. %d)",
                            S, clip->patch_size, (S / clip->patch_size + 1) * clip->patch_size);
    if (s->train.method->is_baseline) {
        // The published defaults at the real depth, then the switches again.
        if (baseline_config_from(cfg, depth, &s->baseline) < 0) return -1;
        return 0;
    }
    for (int i = 0; i < s->model.n_layers; i++)
        if (s->model.layers[i] > depth)
            return settings_bad(cfg, "model.layers", "layer %d, but the checkpoint's vision tower has %d layers",
                                s->model.layers[i], depth);
    if (s->model.vv_from > depth)
        return settings_bad(cfg, "model.vv_from", "%d, but the checkpoint's vision tower has %d layers", s->model.vv_from,
                            depth);
    KanoclipConfig *c = &s->kanoclip;
    if (c->global_vv && s->model.layers[s->model.n_layers - 1] != depth)
        return settings_bad(cfg, "method.global_source", "vv takes S_L[0] from the last stage, but model.layers ends "
                            "at %d and the vision tower has %d layers", s->model.layers[s->model.n_layers - 1], depth);
    c->width = clip->projection_dim;
    c->text_width = clip->text.width;
    c->grid_h = c->grid_w = S / clip->patch_size;
    if (c->knpl && c->deep_prompts && c->deep_depth > clip->text.layers)
        return settings_bad(cfg, "method.deep_depth", "%d, but the checkpoint's text tower has %d layers", c->deep_depth,
                            clip->text.layers);
    if (kanoclip_config_check(c) < 0) return settings_bad(cfg, "model.checkpoint", "%s", err_msg());
    return 0;
}
