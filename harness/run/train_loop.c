// The training loop (see train_loop.h).
#include "harness/run/train_loop.h"
#include "harness/run/log.h"
#include "harness/run/progress.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "model/gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// "step,epoch,loss_total,loss_focal,...\n"
static char *log_header(const Method *m) {
    StrBuf b = {0};
    strbuf_printf(&b, "step,epoch");
    for (int i = 0; i < m->n_losses; i++) strbuf_printf(&b, ",loss_%s", m->loss_names[i]);
    strbuf_printf(&b, "\n");
    return strbuf_take(&b);
}

// Keeps the rows of train_log.csv up to step `last` (a kill after a row but before the state save leaves rows
// the resumed run writes again).
static int log_trim(const char *path, const char *header, long last) {
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

// The epoch after a saved state's step, which must lie on an epoch boundary and not past train.epochs.
static int resume_epoch(const char *state, long step, int steps_per_epoch, int epochs, int *start_epoch) {
    if (step % steps_per_epoch)
        return err_set("%s: step %ld is not at an epoch boundary (%d steps per epoch)", state, step, steps_per_epoch);
    *start_epoch = (int)(step / steps_per_epoch);
    if (*start_epoch > epochs) return err_set("%s: %d epochs done, train.epochs is %d", state, *start_epoch, epochs);
    log_msg("training: resuming from %s after epoch %d of %d (step %ld)", state, *start_epoch, epochs, step);
    return 0;
}

typedef struct { double loss[METHOD_MAX_LOSSES], monitor[METHOD_MAX_LOSSES]; int n; } LossSum;

static void loss_add(LossSum *s, const MethodLosses *l) {
    for (int i = 0; i < METHOD_MAX_LOSSES; i++) s->loss[i] += l->loss[i], s->monitor[i] += l->monitor[i];
    s->n++;
}

static void log_epoch(const Method *m, int e, int epochs, const LossSum *ep) {
    StrBuf b = {0};
    strbuf_printf(&b, "epoch %d/%d: loss %.5f", e + 1, epochs, ep->loss[0] / ep->n);
    for (int i = 1; i < m->n_losses; i++)
        strbuf_printf(&b, "%s%s %.5f", i == 1 ? " (" : ", ", m->loss_names[i], ep->loss[i] / ep->n);
    if (m->n_losses > 1) strbuf_printf(&b, ")");
    for (int i = 0; i < m->n_monitors; i++)
        strbuf_printf(&b, "%s%s %.4f", i == 0 ? "; " : ", ", m->monitor_names[i], ep->monitor[i] / ep->n);
    char *line = strbuf_take(&b);
    log_msg("%s", line);
    free(line);
}

typedef struct {
    int n, S, cap;
    size_t SS;
    uint8_t *masks;    // (n,S,S) when they fit in memory, else NULL (read per batch)
    uint8_t *has_gt;   // (n) with masks: whether the sample has pixel ground truth
    uint8_t *m8;       // (S,S)
    int *order, *idx, *label, *cls;
    float *maskf;      // (cap,S,S)
} Buffers;

static void buffers_free(Buffers *b) {
    free(b->masks); free(b->has_gt); free(b->m8); free(b->order); free(b->idx); free(b->label); free(b->cls); free(b->maskf);
}

// Masks at the input size, kept in memory when they fit in 256 MiB (else read again each epoch).
static int buffers_init(Buffers *b, const ExecDataset *d, int S, int batch) {
    memset(b, 0, sizeof *b);
    b->n = d->n, b->S = S, b->cap = batch, b->SS = (size_t)S * S;
    b->m8 = malloc(b->SS);
    b->order = malloc(sizeof(int) * d->n);
    b->idx = malloc(sizeof(int) * batch);
    b->label = malloc(sizeof(int) * batch);
    b->cls = malloc(sizeof(int) * batch);
    b->maskf = malloc(sizeof(float) * batch * b->SS);
    if (!b->m8 || !b->order || !b->idx || !b->label || !b->cls || !b->maskf)
        return err_set("training: out of memory for a batch of %d at %d px", batch, S);
    if ((size_t)d->n * b->SS <= (256u << 20)) {
        b->masks = malloc((size_t)d->n * b->SS);
        b->has_gt = malloc((size_t)d->n);
        if (!b->masks || !b->has_gt) return err_set("training: out of memory for %d masks at %d px", d->n, S);
        for (int i = 0; i < d->n; i++) {
            int gt = exec_dataset_mask(d, i, S, b->masks + i * b->SS);
            if (gt < 0) return -1;
            b->has_gt[i] = (uint8_t)gt;
        }
    }
    return 0;
}

// Samples order[st*batch ..] of the epoch as a batch: indices, labels, classes, masks.
static int batch_fill(Buffers *bf, const ExecDataset *d, int st, int batch, MethodBatch *mb) {
    int B = 0, all_gt = 1;
    for (int k = st * batch; k < bf->n && B < batch; k++) bf->idx[B++] = bf->order[k];
    for (int j = 0; j < B; j++) {
        const uint8_t *mk = bf->masks ? bf->masks + bf->idx[j] * bf->SS : bf->m8;
        int gt = bf->masks ? bf->has_gt[bf->idx[j]] : exec_dataset_mask(d, bf->idx[j], bf->S, bf->m8);
        if (gt < 0) return -1;
        all_gt &= gt > 0;
        for (size_t q = 0; q < bf->SS; q++) bf->maskf[j * bf->SS + q] = mk[q];
        bf->label[j] = d->s[bf->idx[j]]->label;
        bf->cls[j] = d->cls[bf->idx[j]];
    }
    *mb = (MethodBatch){.B = B, .idx = bf->idx, .label = bf->label, .cls = bf->cls, .mask = bf->maskf, .pixel_gt = all_gt};
    return 0;
}

// epoch_loss.csv: one row per finished epoch (epoch, mean total loss), so the summary of a resumed run is the
// uninterrupted run's (its first epoch may have been trained by an earlier attempt).
static const char *EPOCH_HEADER = "epoch,loss_total\n";

static int append_line(const char *path, const char *line) {
    FILE *f = fopen(path, "a");
    if (!f) return err_set("%s: cannot append", path);
    int ok = fputs(line, f) >= 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : err_set("%s: cannot write", path);
}

// The first and last rows of epoch_loss.csv into the summary.
static int summary_from_file(const char *path, TrainSummary *sum) {
    char *text = fs_read_file(path, NULL);
    if (!text) return -1;
    int row = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), row++) {
        if (row == 0) continue;  // header
        const char *comma = strchr(line, ',');
        double v = comma ? strtod(comma + 1, NULL) : 0;
        if (row == 1) sum->first_epoch_loss = v;
        sum->last_epoch_loss = v;
    }
    free(text);
    sum->epochs_total = row > 0 ? row - 1 : 0;
    return 0;
}

static int train_epochs(Run *run, const Settings *s, const Method *m, MethodHead *h, const ExecDataset *d,
                        int start_epoch, const char *state, const char *log_path, const char *epoch_path,
                        TrainSummary *sum) {
    int n = d->n, batch = s->train.batch_size, epochs = s->train.epochs, spe = (n + batch - 1) / batch;
    const char *stop_env = getenv("KANOCLIP_STOP_AFTER_EPOCHS");
    int stop_after = stop_env && *stop_env ? atoi(stop_env) : 0;
    log_msg("training %s: %d images, %d epochs of %d steps (batch %d), lr %g", m->name, n, epochs, spe, batch,
            s->train.lr);
    log_msg("training: CPU %s", gemm_describe());
    Buffers bf;
    int rc = buffers_init(&bf, d, m->image_size(h), batch);
    FILE *lf = rc == 0 ? fopen(log_path, "a") : NULL;
    if (rc == 0 && !lf) rc = err_set("%s: cannot append", log_path);
    for (int e = start_epoch, ran = 0; e < epochs && rc == 0; e++) {
        train_epoch_order(bf.order, n, s->run.seed, e);
        LossSum ep = {0}, win = {0};
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, epochs);
        progress_start(label, spe);
        for (int st = 0; st < spe && rc == 0; st++) {
            MethodBatch mb;
            MethodLosses l;
            if ((rc = batch_fill(&bf, d, st, batch, &mb)) < 0) break;
            mb.epoch = e, mb.step_in_epoch = st;
            if ((rc = m->train_step(h, &mb, &l)) < 0) break;
            loss_add(&ep, &l);
            loss_add(&win, &l);
            long step = (long)e * spe + st + 1;
            if (step % s->train.log_every == 0 || st == spe - 1) {
                fprintf(lf, "%ld,%d", step, e + 1);
                for (int i = 0; i < m->n_losses; i++) fprintf(lf, ",%.6g", win.loss[i] / win.n);
                fprintf(lf, "\n");
                fflush(lf);
                win = (LossSum){0};
            }
            progress_step(1);
        }
        progress_end();
        if (rc < 0) break;
        char row[64];
        snprintf(row, sizeof row, "%d,%.17g\n", e + 1, ep.loss[0] / ep.n);  // exact: metrics.json prints it again
        sum->epochs_run = ++ran;
        log_epoch(m, e, epochs, &ep);
        rc = append_line(epoch_path, row);
        if (rc == 0 && ((e + 1) % s->train.checkpoint_every == 0 || e + 1 == epochs)) rc = m->save(h, state);
        if (rc < 0) err_mark_retryable();  // a write that failed (a full disk): the epochs saved are kept
        if (rc == 0 && stop_after > 0 && ran >= stop_after && e + 1 < epochs)
            rc = err_set("stopped after epoch %d (KANOCLIP_STOP_AFTER_EPOCHS=%d)", e + 1, stop_after), err_mark_retryable();
    }
    if (lf && fclose(lf) != 0 && rc == 0) rc = err_set("%s: cannot write", log_path);
    buffers_free(&bf);
    return rc;
}

int train_run(Run *run, const Settings *s, const Method *m, MethodHead *h, const ExecDataset *d, TrainSummary *sum) {
    memset(sum, 0, sizeof *sum);
    int epochs = s->train.epochs, spe = (d->n + s->train.batch_size - 1) / s->train.batch_size;
    char *state = run_path(run, "state.bin"), *log_path = run_path(run, "train_log.csv"), *header = log_header(m);
    char *epoch_path = run_path(run, "epoch_loss.csv");
    int rc = 0, start_epoch = 0;
    if (fs_exists(state) && ((rc = m->load(h, state)) < 0 || (rc = resume_epoch(state, m->step(h), spe, epochs, &start_epoch)) < 0))
        goto out;
    // Rows a killed run wrote after its last saved state are dropped: the resumed run writes them again.
    if ((rc = log_trim(log_path, header, (long)start_epoch * spe)) < 0 ||
        (rc = log_trim(epoch_path, EPOCH_HEADER, start_epoch)) < 0)
        goto out;
    if (start_epoch >= epochs) {
        if (epochs > 0) log_msg("training: all %d epochs done already", epochs);
    } else {
        rc = train_epochs(run, s, m, h, d, start_epoch, state, log_path, epoch_path, sum);
    }
    if (rc == 0) rc = summary_from_file(epoch_path, sum);
out:
    free(epoch_path);
    free(header);
    free(state);
    free(log_path);
    return rc;
}
