// experiment_execute: one run end to end (harness/run/experiment.h), for every method of the table (method.h):
// demo assets, every dataset the run reads (one line naming what is missing and how to get it), the backbone,
// the method's head, the training set's features and text, training (resumable; the methods that learn), every
// evaluation dataset's features and scores through the one evaluation loop, the result files, and the report
// (tables, plots) when report.* asks. The settings were checked before the run folder was made (settings.h).
#include "harness/run/experiment.h"
#include "harness/run/kb_preflight.h"
#include "harness/report/plots.h"
#include "harness/report/tables.h"
#include "harness/run/demo_assets.h"
#include "harness/run/eval_loop.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/log.h"
#include "harness/run/method.h"
#include "harness/run/train_loop.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "model/checkpoint.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int experiment_check_dataset(const char *type, const char *root) {
    DatasetType t;
    if (dataset_type_from_name(type, &t) < 0) return -1;
    if (!fs_exists(root))
        return err_set("folder %s not found; download the %s dataset into it (or point data.roots.%s at it)", root, type, type);
    Dataset *ds = dataset_open(t, root, SPLIT_TEST, NULL);
    if (!ds) return -1;
    dataset_free(ds);
    return 0;
}

static int write_text(Run *run, const char *name, const char *text) {
    return run_write_file(run, name, text, strlen(text));
}

typedef struct { char *line; } Row;
static int row_cmp(const void *a, const void *b) { return strcmp(((const Row *)a)->line, ((const Row *)b)->line); }

// per_class.csv: rows of every dataset sorted (dataset, class).
static int write_per_class(Run *run, const EvalResult *res, int n) {
    size_t cap = 0;
    for (int k = 0; k < n; k++) cap += strlen(res[k].per_class) + 1;
    char *all = malloc(cap + 1), *p = all;
    *p = 0;
    for (int k = 0; k < n; k++) p += sprintf(p, "%s", res[k].per_class);
    int nr = 0;
    Row *rows = malloc(sizeof(Row) * (cap + 1));
    char *save = NULL;
    for (char *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) rows[nr++].line = l;
    qsort(rows, nr, sizeof(Row), row_cmp);
    const char *header = "dataset,class,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,pixel_f1_max\n";
    char *out = malloc(cap + strlen(header) + 2), *o = out;
    o += sprintf(o, "%s", header);
    for (int r = 0; r < nr; r++) o += sprintf(o, "%s\n", rows[r].line);
    int rc = write_text(run, "per_class.csv", out);
    free(out);
    free(rows);
    free(all);
    return rc;
}

static int write_metrics(Run *run, const Settings *s, EvalResult *res, const ExecDataset *ev, int n,
                         const TrainSummary *ts) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", s->train.method->name);
    cJSON_AddStringToObject(o, "label", *s->report.label ? s->report.label : s->train.method->label);
    cJSON_AddStringToObject(o, "table", s->report.table);
    cJSON_AddNumberToObject(o, "order", (double)s->report.order);
    cJSON_AddStringToObject(o, "train_dataset", settings_uses_train(s) ? s->data.train.name : "");
    cJSON_AddStringToObject(o, "aupro_variant", s->eval.aupro);
    cJSON_AddNumberToObject(o, "seed", (double)s->run.seed);
    cJSON_AddStringToObject(o, "roc", "pooled");
    cJSON *t = cJSON_AddObjectToObject(o, "train");
    cJSON_AddNumberToObject(t, "epochs", (double)s->train.epochs);
    if (ts->epochs_total > 0) {
        cJSON_AddNumberToObject(t, "first_epoch_loss", ts->first_epoch_loss);
        cJSON_AddNumberToObject(t, "last_epoch_loss", ts->last_epoch_loss);
    }
    cJSON *ds = cJSON_AddObjectToObject(o, "datasets");
    for (int k = 0; k < n; k++) {
        cJSON_AddItemToObject(ds, ev[k].name, res[k].json);
        res[k].json = NULL;
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    size_t len = strlen(text);
    text = realloc(text, len + 2);
    strcpy(text + len, "\n");
    int rc = write_text(run, "metrics.json", text);
    free(text);
    return rc;
}

// report.tables / report.plots: the report of this run, in <run>/report/.
static int write_report(Run *run, const Settings *s) {
    int tables = s->report.tables, plots = s->report.plots;
    if (!tables && !plots) return 0;
    RunResult rr;
    if (run_result_load(run_dir(run), &rr) < 0) return -1;
    int rc = 0;
    if (tables) {
        char *out = run_path(run, "report/tables");
        PaperNumbers paper = {0};
        int have_paper = fs_exists("experiments/paper_numbers.csv") &&
                         paper_numbers_load("experiments/paper_numbers.csv", &paper) == 0;
        int files = 0;
        rc = fs_mkdirs(out) < 0 ? -1 : tables_write(&rr, 1, have_paper ? &paper : NULL, out, &files);
        if (rc == 0) {
            log_msg("tables: %d files in %s", files, out);
            printf("tables: %s\n", out);
        }
        if (have_paper) paper_numbers_free(&paper);
        free(out);
    }
    if (rc == 0 && plots) {
        const char *gnuplot = plots_find_gnuplot();
        if (!gnuplot) {
            log_msg("plots: gnuplot not found on PATH (apt-get install gnuplot-nox); skipped");
        } else {
            char *out = run_path(run, "report/plots");
            int figures = 0;
            rc = fs_mkdirs(out) < 0 ? -1 : plots_write(&rr, 1, out, gnuplot, &figures);
            if (rc == 0) {
                log_msg("plots: %d figures in %s", figures, out);
                printf("plots: %s\n", out);
            }
            free(out);
        }
    }
    run_result_free(&rr);
    return rc;
}

// Trains h on the prepared training set when the method learns and train.epochs > 0.
static int train_phase(Run *run, const Settings *s, const Method *m, MethodHead *h, ExecDataset *train,
                       TrainSummary *ts) {
    memset(ts, 0, sizeof *ts);
    if (!m->learns) {
        if (s->train.epochs > 0) log_msg("train.epochs: %d ignored: %s has nothing to train", s->train.epochs, m->label);
        return 0;
    }
    double t = now_s();
    if (train_run(run, s, m, h, train, ts) < 0) return -1;
    if (ts->epochs_run > 0)
        log_msg("training: %d epochs in %.1f s, mean loss %.5f (first epoch) -> %.5f (last)", ts->epochs_run,
                now_s() - t, ts->first_epoch_loss, ts->last_epoch_loss);
    return 0;
}

// Every eval dataset through the one evaluation loop, with the trained parameters.
static int eval_phase(Run *run, const Settings *s, const Method *m, MethodHead *h, ExecDataset *ev, EvalResult *res) {
    for (int k = 0; k < s->eval.n_datasets; k++) {
        double t = now_s();
        if (m->prepare(h, &ev[k], METHOD_ROLE_EVAL) < 0 ||
            eval_dataset_scored(run, s, &ev[k], m->image_size(h), m->score, h, &res[k]) < 0)
            return -1;
        log_msg("eval %s: image AUROC %.4f, pixel AUROC %.4f (class means; %.1f s)", ev[k].name, res[k].image_auroc,
                res[k].pixel_auroc, now_s() - t);
    }
    return 0;
}

static int write_results(Run *run, const Settings *s, ExecDataset *ev, EvalResult *res, const TrainSummary *ts) {
    int n = s->eval.n_datasets;
    for (int k = 0; k < n; k++) {
        char name[300];
        snprintf(name, sizeof name, "roc_%s.csv", ev[k].name);
        if (write_text(run, name, res[k].roc) < 0) return -1;
        snprintf(name, sizeof name, "bootstrap_%s.csv", ev[k].name);
        if (res[k].bootstrap && write_text(run, name, res[k].bootstrap) < 0) return -1;
    }
    if (write_per_class(run, res, n) < 0 || write_metrics(run, s, res, ev, n, ts) < 0) return -1;
    return write_report(run, s);
}

int experiment_execute(Run *run, const Settings *s) {
    double t0 = now_s();
    const Method *m = s->train.method;
    int n_eval = s->eval.n_datasets, uses_train = settings_uses_train(s), rc = 0;
    // (a) demo assets, (b) every dataset the run reads, before any compute.
    if (demo_assets_prepare(s) < 0) return -1;
    ExecDataset train = {0}, *ev = calloc((size_t)n_eval, sizeof *ev);
    EvalResult *res = calloc((size_t)n_eval, sizeof *res);
    ClipModel *model = NULL;
    Tokenizer *tok = NULL;
    MethodHead *h = NULL;
    char *feat_dir = NULL;
    TrainSummary ts = {0};
    if (uses_train) rc = exec_dataset_open(s, &s->data.train, 1, &train);
    for (int k = 0; k < n_eval && rc == 0; k++) rc = exec_dataset_open(s, &s->eval.datasets[k], 0, &ev[k]);
    if (rc < 0) goto out;
    if (uses_train)
        log_msg("data: train %s (%s, %d images, %d classes); eval %d dataset%s", train.name, train.type, train.n,
                train.n_classes, n_eval, n_eval == 1 ? "" : "s");
    else
        log_msg("data: no training set (train.method %s trains nothing here); eval %d dataset%s", m->name, n_eval,
                n_eval == 1 ? "" : "s");
    for (int k = 0; k < n_eval; k++)
        log_msg("data: eval %s (%s, %d images, %d classes, %s)", ev[k].name, ev[k].type, ev[k].n, ev[k].n_classes,
                ev[k].ds->image_level_only ? "image-level only" : "with masks");
    // KnPL's knowledge per class, stated (and with kb.require: fetched, required) before any compute
    if (uses_train && !m->is_baseline && s->kanoclip.knpl && (rc = kb_preflight(run, s, &train)) < 0) goto out;

    // (c) the backbone and the method's head.
    const char *ckpt = s->model.checkpoint;
    if (!(model = clip_model_load(ckpt, CLIP_TEXT | CLIP_VISION))) { rc = err_wrap("model.checkpoint: "); goto out; }
    if (!(tok = tokenizer_load_dir(ckpt))) { rc = err_wrap("model.checkpoint: "); goto out; }
    const char *wh = checkpoint_hash(model->ck);
    if (wh) run_set_provenance(run, "weights_sha256", wh);
    if (s->cache.features) {
        feat_dir = fs_join(s->cache.dir, "features");
    } else {
        feat_dir = strdup(run_dir(run));
        log_msg("cache.features is false: features go to the run folder (not shared with other runs)");
    }
    if (!(h = m->open(s, model, tok, feat_dir))) { rc = -1; goto out; }

    // (d) features and text of the training set, training, (e) evaluation, (f) the result files and the report.
    double t1 = now_s(), t2 = t1, t3 = t1;
    if (uses_train && (rc = m->prepare(h, &train, METHOD_ROLE_TRAIN)) < 0) goto out;
    t2 = now_s();
    if ((rc = train_phase(run, s, m, h, &train, &ts)) < 0) goto out;
    t3 = now_s();
    if ((rc = eval_phase(run, s, m, h, ev, res)) < 0) goto out;
    if ((rc = write_results(run, s, ev, res, &ts)) < 0) goto out;
    log_msg("run complete in %.1f s (features and text %.1f s, training %.1f s, evaluation %.1f s)", now_s() - t0,
            t2 - t1, t3 - t2, now_s() - t3);
out:
    if (h) m->close(h);
    free(feat_dir);
    tokenizer_free(tok);
    clip_model_free(model);
    exec_dataset_free(&train);
    for (int k = 0; k < n_eval; k++) {
        exec_dataset_free(&ev[k]);
        eval_result_free(&res[k]);
    }
    free(ev);
    free(res);
    return rc < 0 ? -1 : 0;
}
