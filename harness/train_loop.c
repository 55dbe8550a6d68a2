// The training loop (see train_loop.h).
#include "harness/train_loop.h"
#include "harness/log.h"
#include "harness/progress.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/rng.h"
#include "model/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int train_load_features(FeatureCache *fc, const int *idx, int B, int n_stages, int T, int P, float *stage, float *global) {
    for (int j = 0; j < B; j++) {
        for (int s = 0; s < n_stages; s++)
            if (feature_cache_get(fc, idx[j], s, stage + ((size_t)j * n_stages + s) * T * P) < 0) return -1;
        if (feature_cache_get(fc, idx[j], FEATURE_GLOBAL, global + (size_t)j * P) < 0) return -1;
    }
    return 0;
}

// The order of epoch e: a Fisher-Yates shuffle from a generator seeded by (seed, e) alone.
void train_epoch_order(int *order, int n, unsigned long long seed, int epoch) {
    Rng r;
    rng_seed(&r, seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch + 1);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static const char *LOG_HEADER = "step,epoch,loss_total,loss_focal,loss_dice,loss_bce,loss_kd\n";

// Keeps the rows of train_log.csv up to step `last` (a kill after a row but before the state save leaves rows
// the resumed run writes again).
int train_log_trim(const char *path, const char *header, long last) {
    if (!fs_exists(path)) return fs_write_atomic(path, header, strlen(header));
    size_t len = 0;
    char *text = fs_read_file(path, &len);
    if (!text) return -1;
    char *out = malloc(len + strlen(header) + 1), *o = out;
    o += sprintf(o, "%s", header);
    char *save = NULL;
    int first = 1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) { first = 0; continue; }  // header
        if (atol(line) <= last) o += sprintf(o, "%s\n", line);
    }
    int rc = fs_write_atomic(path, out, (size_t)(o - out));
    free(text);
    free(out);
    return rc;
}

int train_resume_epoch(const char *state, long step, int steps_per_epoch, long epochs, int *start_epoch) {
    if (step % steps_per_epoch)
        return err_set("%s: step %ld is not at an epoch boundary (%d steps per epoch)", state, step, steps_per_epoch);
    *start_epoch = (int)(step / steps_per_epoch);
    if (*start_epoch > epochs) return err_set("%s: %d epochs done, train.epochs is %ld", state, *start_epoch, epochs);
    log_msg("training: resuming from %s after epoch %d of %ld (step %ld)", state, *start_epoch, epochs, step);
    return 0;
}

typedef struct { double total, focal, dice, bce, kd, cos_ak, cos_nk, cos_an; int n; } LossSum;

static void loss_add(LossSum *s, const KanoLosses *l) {
    s->total += l->total; s->focal += l->focal; s->dice += l->dice; s->bce += l->global; s->kd += l->kd;
    s->cos_ak += l->cos_ak; s->cos_nk += l->cos_nk; s->cos_an += l->cos_an; s->n++;
}

int train_run(Run *run, const Config *cfg, Kanoclip *m, const ExecDataset *d, FeatureCache *fc, TrainSummary *sum) {
    memset(sum, 0, sizeof *sum);
    long epochs, batch, log_every, ckpt_every;
    if (config_get_int(cfg, "train.epochs", &epochs) < 0 || config_get_int(cfg, "train.batch_size", &batch) < 0 ||
        config_get_int(cfg, "train.log_every", &log_every) < 0 ||
        config_get_int(cfg, "train.checkpoint_every", &ckpt_every) < 0)
        return -1;
    if (epochs < 0) return err_set("train.epochs: %ld must be >= 0", epochs);
    if (batch < 1) return err_set("train.batch_size: %ld must be >= 1", batch);
    if (log_every < 1) log_every = 1;
    if (ckpt_every < 1) ckpt_every = 1;
    const KanoclipConfig *kc = kanoclip_config(m);
    int n = d->n, spe = (int)((n + batch - 1) / batch), S = kc->image_size, P = kc->width, ns = kc->n_stages;
    int T = kc->grid_h * kc->grid_w + 1;
    char *state = run_path(run, "state.bin"), *log_path = run_path(run, "train_log.csv");
    int rc = 0, start_epoch = 0;
    if (fs_exists(state)) {
        if (kanoclip_load(m, state) < 0) { rc = -1; goto out; }
        if ((rc = train_resume_epoch(state, kanoclip_step(m), spe, epochs, &start_epoch)) < 0) goto out;
    }
    if (start_epoch >= epochs) {
        if (epochs > 0) log_msg("training: all %ld epochs done already", epochs);
        if (!fs_exists(log_path)) rc = fs_write_atomic(log_path, LOG_HEADER, strlen(LOG_HEADER));
        goto out;
    }
    if ((rc = train_log_trim(log_path, LOG_HEADER, (long)start_epoch * spe)) < 0) goto out;
    const char *stop_env = getenv("KANOCLIP_STOP_AFTER_EPOCHS");
    int stop_after = stop_env && *stop_env ? atoi(stop_env) : 0;
    log_msg("training: %d images, %ld epochs of %d steps (batch %ld), lr %g", n, epochs, spe, batch, kc->lr);
    log_msg("training: CPU %s", gemm_describe());

    // Masks at the input size, kept in memory when they fit in 256 MiB (else read again each epoch).
    size_t SS = (size_t)S * S;
    uint8_t *masks = NULL;
    if ((size_t)n * SS <= (256u << 20)) {
        masks = malloc((size_t)n * SS);
        for (int i = 0; i < n && rc == 0; i++)
            if (exec_dataset_mask(d, i, S, masks + i * SS) < 0) rc = -1;
        if (rc < 0) { free(masks); goto out; }
    }
    int *order = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * batch), *label = malloc(sizeof(int) * batch);
    int *cls = malloc(sizeof(int) * batch);
    float *stage = malloc(sizeof(float) * batch * ns * T * P), *global = malloc(sizeof(float) * batch * P);
    float *maskf = malloc(sizeof(float) * batch * SS);
    uint8_t *m8 = malloc(SS);
    FILE *lf = fopen(log_path, "a");
    if (!lf) { rc = err_set("%s: cannot append", log_path); }
    int ran = 0;
    for (int e = start_epoch; e < epochs && rc == 0; e++) {
        train_epoch_order(order, n, kc->seed, e);
        LossSum ep = {0}, win = {0};
        char label_buf[64];
        snprintf(label_buf, sizeof label_buf, "epoch %d/%ld", e + 1, epochs);
        progress_start(label_buf, spe);
        for (int st = 0; st < spe && rc == 0; st++) {
            int B = 0;
            for (int k = st * (int)batch; k < n && B < batch; k++) idx[B++] = order[k];
            for (int j = 0; j < B && rc == 0; j++) {
                const uint8_t *mk = masks ? masks + idx[j] * SS : m8;
                if (!masks && exec_dataset_mask(d, idx[j], S, m8) < 0) rc = -1;
                for (size_t q = 0; q < SS; q++) maskf[j * SS + q] = mk[q];
                label[j] = d->s[idx[j]]->label;
                cls[j] = d->cls[idx[j]];
            }
            if (rc == 0) rc = train_load_features(fc, idx, B, ns, T, P, stage, global);
            KanoBatch kb = {.B = B, .stage = stage, .global = global, .mask = maskf, .label = label, .class_id = cls};
            KanoLosses l;
            if (rc == 0) rc = kanoclip_train_step(m, &kb, &l);
            if (rc < 0) break;
            loss_add(&ep, &l);
            loss_add(&win, &l);
            long step = kanoclip_step(m);
            if (step % log_every == 0 || st == spe - 1) {
                fprintf(lf, "%ld,%d,%.6g,%.6g,%.6g,%.6g,%.6g\n", step, e + 1, win.total / win.n, win.focal / win.n,
                        win.dice / win.n, win.bce / win.n, win.kd / win.n);
                fflush(lf);
                win = (LossSum){0};
            }
            progress_step(1);
        }
        progress_end();
        if (rc < 0) break;
        double mean = ep.total / ep.n;
        if (ran == 0) sum->first_epoch_loss = mean;
        sum->last_epoch_loss = mean;
        ran++;
        log_msg("epoch %d/%ld: loss %.5f (focal %.5f, dice %.5f, bce %.5f, kd %.5f); cos(LAP,KB) %.4f, cos(LNP,KB) %.4f, "
                "cos(LAP,LNP) %.4f", e + 1, epochs, mean, ep.focal / ep.n, ep.dice / ep.n, ep.bce / ep.n, ep.kd / ep.n,
                ep.cos_ak / ep.n, ep.cos_nk / ep.n, ep.cos_an / ep.n);
        if ((e + 1) % ckpt_every == 0 || e + 1 == epochs) rc = kanoclip_save(m, state);
        if (rc == 0 && stop_after > 0 && ran >= stop_after && e + 1 < epochs)
            rc = err_set("stopped after epoch %d (KANOCLIP_STOP_AFTER_EPOCHS=%d)", e + 1, stop_after);
    }
    sum->epochs_run = ran;
    if (lf) fclose(lf);
    free(masks); free(order); free(idx); free(label); free(cls); free(stage); free(global); free(maskf); free(m8);
out:
    free(state);
    free(log_path);
    return rc;
}
