// Synthetic dataset and tiny random checkpoint for the demo (see demo_assets.h).
#include "harness/run/demo_assets.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"
#include "datasets/synth.h"
#include "model/checkpoint_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int synthetic_enabled(const Settings *s) {
    return s->data.synthetic.enabled && *s->data.synthetic.out;
}

// Locks OUT.lock for the generation of OUT: concurrent runs of the demo (a grid's cells) generate it once, the
// others wait and then find it made. Returns 1 when OUT exists (nothing to do), 0 with the lock taken, -1.
static int lock_generation(const char *out, FileLock *lock) {
    if (fs_is_dir(out)) return 1;
    size_t n = strlen(out) + 8;
    char *lp = malloc(n);
    if (!lp) return err_set("out of memory");
    snprintf(lp, n, "%s.lock", out);
    char *slash = strrchr(lp, '/');
    if (slash) {  // the parent folder, for the lock file
        *slash = 0;
        int rc = fs_mkdirs(lp);
        *slash = '/';
        if (rc < 0) { free(lp); return -1; }
    }
    int rc = file_lock(lp, 1, lock, NULL);
    free(lp);
    if (rc < 0) return -1;
    if (fs_is_dir(out)) { file_unlock(lock); return 1; }
    return 0;
}

static int prepare_synthetic(const Settings *s) {
    const SyntheticSettings *y = &s->data.synthetic;
    if (!synthetic_enabled(s)) return 0;
    FileLock lock;
    int busy = lock_generation(y->out, &lock);
    if (busy) return busy < 0 ? -1 : 0;
    // Written into OUT.partial renamed at the end: a killed run never leaves half a dataset under the real name.
    char *tmp = malloc(strlen(y->out) + 16);
    sprintf(tmp, "%s.partial", y->out);
    SynthOptions o = {.out = tmp, .layout = y->layout, .n_classes = y->classes, .class_offset = 0,
                      .seed = (uint64_t)y->seed, .size = y->image_size, .n_test_normal = y->images_per_class / 2,
                      .n_test_anomalous = y->images_per_class - y->images_per_class / 2, .n_train_normal = 2,
                      .write_meta = 0};
    log_msg("synthetic data: writing %d classes x %d test images (%dx%d px, %s layout, seed %d) into %s", y->classes,
            y->images_per_class, y->image_size, y->image_size, y->layout, y->seed, y->out);
    int rc = synth_write(&o);
    if (rc == 0 && rename(tmp, y->out) != 0) rc = err_set("%s: cannot rename %s into place", y->out, tmp);
    free(tmp);
    file_unlock(&lock);
    return rc;
}

int demo_synthetic_class_used(const Settings *s, const char *root, int train_role, const char *class_name) {
    int k = s->data.synthetic.train_classes;
    if (!synthetic_enabled(s) || strcmp(s->data.synthetic.out, root) || k <= 0) return 1;
    int gen = -1;
    for (int c = 0; c < synth_n_classes() && gen < 0; c++)
        if (!strcmp(synth_class_name(c), class_name)) gen = c;
    if (gen < 0) return 1;  // not a generated class (someone added a folder): keep it visible
    return train_role ? gen < k : gen >= k;
}

// The words prompts use, so that the small vocabulary spells them as single tokens (others fall back to bytes).
static int write_vocab(const char *dir) {
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

static int prepare_checkpoint(const Settings *s) {
    if (!settings_checkpoint_generated(s)) return 0;
    const char *dir = s->model.checkpoint;
    FileLock lock;
    int busy = lock_generation(dir, &lock);
    if (busy) return busy < 0 ? -1 : 0;
    const RandomClipSettings *r = &s->model.random;
    ClipConfig c = settings_random_clip(s);
    log_msg("model: writing a tiny random CLIP (vision %dx%d, text %dx%d, patch %d, projection %d, seed %ld) into %s",
            r->vision_layers, r->vision_width, r->text_layers, r->text_width, r->patch_size, r->projection_dim, r->seed,
            dir);
    // Written into a temporary folder renamed at the end, so a killed run never leaves half a checkpoint.
    char *tmp = malloc(strlen(dir) + 16);
    sprintf(tmp, "%s.partial", dir);
    int rc = fs_mkdirs(tmp);
    if (rc == 0) rc = clip_write_random(tmp, &c, (uint64_t)r->seed);
    if (rc == 0) rc = write_vocab(tmp);
    if (rc == 0 && rename(tmp, dir) != 0) rc = err_set("%s: cannot rename %s into place", dir, tmp);
    free(tmp);
    file_unlock(&lock);
    return rc;
}

int demo_assets_prepare(const Settings *s) {
    if (prepare_synthetic(s) < 0 || prepare_checkpoint(s) < 0) return -1;
    return 0;
}
