// The dry run's plan and time estimate (see experiment_plan.h).
#include "harness/run/experiment_plan.h"
#include "harness/run/exec_dataset.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "model/checkpoint.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// SGEMM rate of this machine in FLOP/s (a 384^3 product, best of a few).
static double sgemm_rate(void) {
    int n = 384;
    float *a = malloc(sizeof(float) * n * n * 3), *b = a + n * n, *c = b + n * n;
    for (int i = 0; i < 2 * n * n; i++) a[i] = (float)(i % 1000) * 1e-3f;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = now_s() - t;
        if (t < best) best = t;
    }
    free(a);
    return 2.0 * n * n * n / best;
}

// Images of a dataset entry: the reader's count, the synthetic generator's, or -1 when not readable now.
static int count_images(const Settings *s, const DatasetSettings *d, int train_role) {
    const SyntheticSettings *y = &s->data.synthetic;
    if (!fs_exists(d->root) && y->enabled && !strcmp(y->out, d->root)) {
        int k = y->train_classes;
        int used = k > 0 ? (train_role ? k : y->classes - k) : y->classes;
        return used * y->images_per_class;
    }
    ExecDataset ed;
    if (exec_dataset_open(s, d, train_role, &ed) < 0) { err_clear(); return -1; }
    int n = ed.n;
    exec_dataset_free(&ed);
    return n;
}

void experiment_plan(const Settings *s, FILE *out) {
    long epochs = s->train.epochs, batch = s->train.batch_size, S = s->model.image_size, ctx = s->kanoclip.n_ctx;
    int knpl = s->kanoclip.knpl, n_train = -1, n_eval = 0, unknown = 0;
    const DatasetSettings *tr = &s->data.train;
    if (!settings_uses_train(s)) {
        fprintf(out, "plan: no training\n");
        n_train = 0, epochs = 0;
    } else if ((n_train = count_images(s, tr, 1)) >= 0) {
        fprintf(out, "plan: train on %s: %d images, %ld epochs of %ld steps (batch %ld)\n", tr->name, n_train, epochs,
                (n_train + batch - 1) / batch, batch);
    } else {
        fprintf(out, "plan: train: the training data is not readable now\n");
    }
    for (int i = 0; i < s->eval.n_datasets; i++) {
        const DatasetSettings *d = &s->eval.datasets[i];
        int n = count_images(s, d, 0);
        if (n < 0) unknown++;
        else n_eval += n;
        if (n >= 0) fprintf(out, "plan: evaluate on %s: %d images\n", d->name, n);
        else fprintf(out, "plan: evaluate on %s: not readable now\n", d->name);
    }
    const char *ckpt = s->model.checkpoint;
    ClipConfig cc;
    if (settings_checkpoint_generated(s)) cc = settings_random_clip(s);
    else if (!fs_is_dir(ckpt) || clip_config_load(ckpt, &cc) < 0) n_train = -1;
    if (n_train < 0) {
        err_clear();
        fprintf(out, "plan: no time estimate (the checkpoint's config.json or the training data is not there yet)\n");
        return;
    }
    // Vision tower per image: L blocks of 2T(4W^2 + 2WI) + 4T^2 W multiply-adds x2, plus the V-V path's
    // value/out projections and attention in the layers from vv_from on.
    double T = (double)(S / cc.patch_size) * (S / cc.patch_size) + 1, W = cc.vision.width, Im = cc.vision.mlp;
    double L = cc.vision.layers, vis = L * (2 * T * (4 * W * W + 2 * W * Im) + 4 * T * T * W) + L * (4 * T * W * W + 4 * T * T * W);
    // Heads per training image: Bi-CMCI per stage ~ 12 projections of N x P^2 plus DAT sampling, forward and
    // backward (x3); the text tower over 2 prompts per class (n_ctx + 5 tokens), forward and backward.
    double N = T - 1, P = cc.projection_dim, Wt = cc.text.width, It = cc.text.mlp, Lt = cc.text.layers;
    int ns = s->model.n_layers;
    double heads = 3.0 * ns * 2 * N * P * P * 12;
    double text_tok = ctx + 5, text = knpl ? 3.0 * 2 * Lt * 2 * text_tok * (4 * Wt * Wt + 2 * Wt * It) : 0;
    double steps = epochs * ((n_train + batch - 1) / batch);
    double flops = vis * (n_train + n_eval) + steps * (batch * heads + batch * text) + n_eval * heads / 3;
    double rate = sgemm_rate();
    double secs = flops / rate;
    fprintf(out, "plan: about %.3g TFLOP (features %.3g, training %.3g, evaluation %.3g); at this machine's SGEMM rate "
            "(%.0f GFLOP/s) at least %.0f s%s (features already cached are skipped)\n", flops * 1e-12,
            vis * (n_train + n_eval) * 1e-12, steps * batch * (heads + text) * 1e-12, n_eval * heads / 3 * 1e-12,
            rate * 1e-9, secs, unknown ? " for the readable datasets" : "");
}
