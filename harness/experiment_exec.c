// experiment_execute: one run end to end (harness/experiment.h), KAnoCLIP or a baseline (train.method; the
// baselines' head, training and scoring are in exec_baseline.c). The order is fixed so that every user error is
// found before any compute: demo assets, then the checkpoint folder and every dataset (one line naming what is
// missing and how to get it), then the model, features (cached), text inputs, training (resumable), evaluation,
// the result files, and the report (tables, plots) when report.* asks.
#include "harness/experiment.h"
#include "harness/baseline_setup.h"
#include "harness/demo_assets.h"
#include "harness/eval_loop.h"
#include "harness/exec_baseline.h"
#include "harness/exec_dataset.h"
#include "harness/feature_extract.h"
#include "harness/log.h"
#include "harness/method_config.h"
#include "harness/plots.h"
#include "harness/progress.h"
#include "harness/tables.h"
#include "harness/text_inputs.h"
#include "harness/train_loop.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "model/kanoclip.h"
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

// The checkpoint folder, checked before anything is computed.
static int check_checkpoint(const Config *cfg, const char **dir) {
    if (config_get_str(cfg, "model.checkpoint", dir) < 0) return -1;
    if (!*dir || !**dir)
        return err_set("model.checkpoint: not set; download openai/clip-vit-large-patch14-336 from Hugging Face into "
                       "models/clip-vit-large-patch14-336 and set model.checkpoint to that folder");
    if (!fs_is_dir(*dir)) {
        const char *base = strrchr(*dir, '/');
        base = base ? base + 1 : *dir;
        if (!strncmp(base, "clip-", 5))
            return err_set("model.checkpoint: folder %s not found; download openai/%s from Hugging Face into it", *dir, base);
        if (strstr(base, "plus-240"))  // WinCLIP's open_clip backbone
            return err_set("model.checkpoint: folder %s not found; convert open_clip's ViT-B-16-plus-240 (laion400m) "
                           "into it with kanoclip convert-openclip --in FILE.pt --out %s --vocab "
                           "bpe_simple_vocab_16e6.txt.gz", *dir, *dir);
        return err_set("model.checkpoint: folder %s not found; put a Hugging Face CLIP checkpoint there "
                       "(e.g. openai/clip-vit-large-patch14-336)", *dir);
    }
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

static int write_metrics(Run *run, const Config *cfg, const ConfigDataset *train, EvalResult *res, const ExecDataset *ev,
                         int n, const TrainSummary *ts) {
    const char *method = NULL, *label = NULL, *table = NULL, *aupro = NULL;
    long order = 0, seed = 0;
    if (config_get_str(cfg, "train.method", &method) < 0 || config_get_str(cfg, "report.label", &label) < 0 ||
        config_get_str(cfg, "report.table", &table) < 0 || config_get_int(cfg, "report.order", &order) < 0 ||
        config_get_str(cfg, "eval.aupro", &aupro) < 0 || config_get_int(cfg, "run.seed", &seed) < 0)
        return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", method);
    int bm = baseline_method_from_name(method);
    cJSON_AddStringToObject(o, "label", label && *label ? label : bm >= 0 ? baseline_display_label((BaselineMethod)bm) : "KAnoCLIP");
    cJSON_AddStringToObject(o, "table", table);
    cJSON_AddNumberToObject(o, "order", (double)order);
    cJSON_AddStringToObject(o, "train_dataset", train->name ? train->name : "");
    cJSON_AddStringToObject(o, "aupro_variant", aupro);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddStringToObject(o, "roc", "pooled");
    cJSON *t = cJSON_AddObjectToObject(o, "train");
    long epochs = 0;
    config_get_int(cfg, "train.epochs", &epochs);
    cJSON_AddNumberToObject(t, "epochs", (double)epochs);
    if (ts->epochs_run > 0) {
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
static int write_report(Run *run, const Config *cfg) {
    int tables = 0, plots = 0;
    if (config_get_bool(cfg, "report.tables", &tables) < 0 || config_get_bool(cfg, "report.plots", &plots) < 0) return -1;
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

// Text inputs of a model made for d's classes: KnPL prompts, or the fixed prompts' features.
static int set_text(Kanoclip *m, const Config *cfg, const KanoclipConfig *kc, ClipModel *model, Tokenizer *tok,
                    const ExecDataset *d) {
    if (kc->knpl) {
        KanoPrompts pr;
        if (text_prompts_build(cfg, tok, &model->text, kc->n_ctx, d, &pr) < 0) return -1;
        int rc = kanoclip_set_prompts(m, &pr);
        text_prompts_free(&pr);
        return rc;
    }
    float *fixed = malloc(sizeof(float) * d->n_classes * 2 * kc->width);
    int rc = text_fixed_features(cfg, tok, &model->text, d, fixed);
    if (rc == 0) rc = kanoclip_set_fixed_text(m, fixed);
    free(fixed);
    return rc;
}

int experiment_execute(Run *run, const Config *cfg) {
    double t0 = now_s();
    const char *method = NULL, *ckpt = NULL, *cache_dir = NULL;
    double wd = 0;
    int cache_on = 1;
    if (config_get_str(cfg, "train.method", &method) < 0 || config_get_float(cfg, "train.weight_decay", &wd) < 0 ||
        config_get_str(cfg, "cache.dir", &cache_dir) < 0 || config_get_bool(cfg, "cache.features", &cache_on) < 0)
        return -1;
    int is_baseline = baseline_method_from_name(method) >= 0;
    if (strcmp(method, "kanoclip") && !is_baseline)
        return err_set("train.method: '%s' (valid: kanoclip clip clip-ac winclip april-gan anomalyclip)", method);
    // run.device (checked by the command before the run folder exists) moves the frozen towers: KAnoCLIP's
    // feature extraction and text tower, the baselines' vision features; the trainable heads stay on the CPU.
    if (wd != 0) return err_set("train.weight_decay: %g: KAnoCLIP trains with plain Adam (set 0)", wd);

    // (a) demo assets, (b) everything the run reads, before any compute.
    if (demo_assets_prepare(cfg) < 0) return -1;
    if (check_checkpoint(cfg, &ckpt) < 0) return -1;
    ConfigDataset train_cd = {0};
    int uses_train = run_uses_training_data(cfg);
    if (uses_train < 0 || (uses_train && config_train_dataset(cfg, &train_cd) < 0)) return -1;
    int n_eval = config_list_len(cfg, "eval.datasets");
    if (n_eval < 1) return err_set("eval.datasets: empty (name at least one dataset to evaluate on)");
    ExecDataset train = {0}, *ev = calloc((size_t)n_eval, sizeof *ev);
    EvalResult *res = calloc((size_t)n_eval, sizeof *res);
    ClipModel *model = NULL;
    Tokenizer *tok = NULL;
    Kanoclip *m = NULL;
    FeatureCache *fc = NULL;
    float *kb = NULL;
    char *feat_dir = NULL;
    int rc = uses_train ? exec_dataset_open(cfg, "data.train", &train_cd, 1, &train) : 0;
    for (int k = 0; k < n_eval && rc == 0; k++) {
        ConfigDataset cd;
        rc = config_dataset(cfg, "eval.datasets", k, &cd);
        if (rc == 0) rc = exec_dataset_open(cfg, "eval.datasets", &cd, 0, &ev[k]);
    }
    if (rc < 0) goto out;
    if (uses_train)
        log_msg("data: train %s (%s, %d images, %d classes); eval %d dataset%s", train.name, train.type, train.n,
                train.n_classes, n_eval, n_eval == 1 ? "" : "s");
    else
        log_msg("data: no training set (train.method %s trains nothing here); eval %d dataset%s", method, n_eval,
                n_eval == 1 ? "" : "s");
    for (int k = 0; k < n_eval; k++)
        log_msg("data: eval %s (%s, %d images, %d classes, %s)", ev[k].name, ev[k].type, ev[k].n, ev[k].n_classes,
                ev[k].ds->image_level_only ? "image-level only" : "with masks");

    // The model, the method's configuration, the feature side.
    if (!(model = clip_model_load(ckpt, CLIP_TEXT | CLIP_VISION))) { rc = err_wrap("model.checkpoint: "); goto out; }
    if (!(tok = tokenizer_load_dir(ckpt))) { rc = err_wrap("model.checkpoint: "); goto out; }
    {
        const char *h = checkpoint_hash(model->ck);
        if (h) run_set_provenance(run, "weights_sha256", h);
    }
    long eval_batch = 8, epochs = 0;
    if ((rc = config_get_int(cfg, "eval.batch_size", &eval_batch)) < 0 || (rc = config_get_int(cfg, "train.epochs", &epochs)) < 0)
        goto out;
    if (cache_on) {
        feat_dir = fs_join(cache_dir, "features");
    } else {
        feat_dir = strdup(run_dir(run));
        log_msg("cache.features is false: features go to the run folder (not shared with other runs)");
    }
    TrainSummary ts;
    double t1 = now_s(), t2 = t1, t3 = t1;
    if (is_baseline) {  // the baselines' own head, training and scoring (exec_baseline.c), then the same result files
        BaselineConfig bc;
        if ((rc = baseline_config_from(cfg, model->cfg.vision.layers, &bc)) < 0) goto out;
        if ((rc = exec_baseline(run, cfg, &bc, model, tok, &train, ev, n_eval, feat_dir, res, &ts)) < 0) goto out;
        t3 = now_s();
        goto results;
    }
    KanoclipConfig kc;
    BackboneSettings bb;
    if ((rc = method_config_from(cfg, &model->cfg, &kc)) < 0 || (rc = backbone_settings_from(cfg, &bb)) < 0) goto out;
    log_msg("method: KnPL %s, CLIP-VV %s (vv_from %d), Bi-CMCI %s, Conv-Adapter %s; %d stages at layers %d..%d, "
            "%dx%d grid, %d px", kc.knpl ? "on" : "off", kc.clip_vv ? "on" : "off", bb.vv_from, kc.bicmci ? "on" : "off",
            kc.adapter ? "on" : "off", kc.n_stages, bb.layers[0], bb.layers[bb.n_layers - 1], kc.grid_h, kc.grid_w,
            kc.image_size);

    // (c) training features, (d) knowledge base, (e) training.
    int reused = 0;
    if (!(fc = features_prepare(feat_dir, model, &bb, &train, (int)eval_batch, &reused))) { rc = -1; goto out; }
    if (kc.knpl) {
        kb = malloc(sizeof(float) * train.n_classes * kc.width);
        int got = text_kb_means(cfg, model, tok, &train, kb);
        if (got < 0) { rc = -1; goto out; }
        if (got == 0) { kc.w_kd = 0; free(kb); kb = NULL; }
    }
    if (!(m = kanoclip_new(&kc, train.n_classes, kc.knpl ? &model->text : NULL))) { rc = -1; goto out; }
    if ((rc = set_text(m, cfg, &kc, model, tok, &train)) < 0) goto out;
    if (kb && (rc = kanoclip_set_kb(m, kb)) < 0) goto out;
    t2 = now_s();
    if ((rc = train_run(run, cfg, m, &train, fc, &ts)) < 0) goto out;
    feature_cache_close(fc);
    fc = NULL;
    t3 = now_s();
    if (ts.epochs_run > 0)
        log_msg("training: %d epochs in %.1f s, mean loss %.5f (first epoch) -> %.5f (last)", ts.epochs_run, t3 - t2,
                ts.first_epoch_loss, ts.last_epoch_loss);

    // (f) evaluation: a model for each dataset's classes with the trained parameters.
    for (int k = 0; k < n_eval && rc == 0; k++) {
        int ereused = 0;
        if (!(fc = features_prepare(feat_dir, model, &bb, &ev[k], (int)eval_batch, &ereused))) { rc = -1; break; }
        Kanoclip *me = kanoclip_new(&kc, ev[k].n_classes, kc.knpl ? &model->text : NULL);
        if (!me) { rc = -1; break; }
        memcpy(kanoclip_params(me), kanoclip_params(m), sizeof(float) * kanoclip_layout_of(m)->total);
        rc = set_text(me, cfg, &kc, model, tok, &ev[k]);
        double te = now_s();
        if (rc == 0) rc = eval_dataset(run, cfg, me, &ev[k], fc, &res[k]);
        kanoclip_free(me);
        feature_cache_close(fc);
        fc = NULL;
        if (rc == 0)
            log_msg("eval %s: image AUROC %.4f, pixel AUROC %.4f (class means; %.1f s)", ev[k].name, res[k].image_auroc,
                    res[k].pixel_auroc, now_s() - te);
    }
    if (rc < 0) goto out;

    // Result files, then the report.
results:
    for (int k = 0; k < n_eval && rc == 0; k++) {
        char name[300];
        snprintf(name, sizeof name, "roc_%s.csv", ev[k].name);
        rc = write_text(run, name, res[k].roc);
    }
    if (rc == 0) rc = write_per_class(run, res, n_eval);
    if (rc == 0) rc = write_metrics(run, cfg, &train_cd, res, ev, n_eval, &ts);
    if (rc == 0) rc = write_report(run, cfg);
    if (rc == 0 && is_baseline) log_msg("run complete in %.1f s", now_s() - t0);
    else if (rc == 0)
        log_msg("run complete in %.1f s (features and text %.1f s, training %.1f s, evaluation %.1f s)", now_s() - t0,
                t2 - t1, t3 - t2, now_s() - t3);
out:
    if (fc) feature_cache_close(fc);
    kanoclip_free(m);
    free(kb);
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
