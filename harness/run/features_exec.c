// The features a run needs, extracted ahead of it (see features_exec.h).
#include "harness/run/features_exec.h"
#include "harness/run/demo_assets.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/log.h"
#include "harness/run/method.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int features_execute(const Settings *s, int shard) {
    const Method *m = s->train.method;
    if (!s->cache.features)
        return err_set("cache.features is false: each run extracts its features into its own folder, so there is "
                       "nothing to extract ahead (set cache.features true)");
    if (shard >= s->cache.shards)
        return err_set("shard %d of %d: cache.shards is %d (shards are numbered 0..%d)", shard, s->cache.shards,
                       s->cache.shards, s->cache.shards - 1);
    if (!m->features) return err_set("train.method %s: its features cannot be extracted ahead", m->name);
    double t0 = now_s();
    if (demo_assets_prepare(s) < 0) return -1;
    // The datasets in the order a run reads them: the training set first.
    int n_eval = s->eval.n_datasets, uses_train = settings_uses_train(s), n = n_eval + uses_train, rc = 0;
    ExecDataset *ds = calloc((size_t)n, sizeof *ds);
    if (!ds) return err_set("out of memory");
    if (uses_train) rc = exec_dataset_open(s, &s->data.train, 1, &ds[0]);
    for (int k = 0; k < n_eval && rc == 0; k++) rc = exec_dataset_open(s, &s->eval.datasets[k], 0, &ds[uses_train + k]);
    ClipModel *model = NULL;
    Tokenizer *tok = NULL;
    MethodHead *h = NULL;
    char *feat_dir = fs_join(s->cache.dir, "features");
    if (rc == 0 && !(model = clip_model_load(s->model.checkpoint, CLIP_TEXT | CLIP_VISION)))
        rc = err_wrap("model.checkpoint: ");
    if (rc == 0 && !(tok = tokenizer_load_dir(s->model.checkpoint))) rc = err_wrap("model.checkpoint: ");
    if (rc == 0 && !(h = m->open(s, model, tok, feat_dir))) rc = -1;
    if (rc == 0) {
        if (shard >= 0) log_msg("features: shard %d of %d of %d dataset%s (%s)", shard, s->cache.shards, n,
                                n == 1 ? "" : "s", m->label);
        else log_msg("features: %d dataset%s (%s)", n, n == 1 ? "" : "s", m->label);
    }
    for (int k = 0; k < n && rc == 0; k++) rc = m->features(h, &ds[k], shard);
    if (rc == 0) log_msg("features: done in %.1f s", now_s() - t0);
    if (h) m->close(h);
    free(feat_dir);
    tokenizer_free(tok);
    clip_model_free(model);
    for (int k = 0; k < n; k++) exec_dataset_free(&ds[k]);
    free(ds);
    return rc < 0 ? -1 : 0;
}
