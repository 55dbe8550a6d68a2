// The baselines' executor (see exec_baseline.h).
#include "harness/exec_baseline.h"
#include "harness/feature_extract.h"
#include "harness/log.h"
#include "harness/progress.h"
#include "common/error.h"
#include "common/rng.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "datasets/image.h"
#include "datasets/image_mosaic.h"
#include "model/checkpoint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Bump when the baselines' feature computation changes: older caches are then rebuilt (the reason is logged).
#define BASELINE_FEATURE_VERSION "baseline-1"

const char *baseline_display_label(BaselineMethod m) {
    static const char *const names[] = {"CLIP", "CLIP-AC", "WinCLIP", "April-GAN", "AnomalyCLIP"};
    return m >= BL_CLIP && m <= BL_ANOMALYCLIP ? names[m] : "baseline";
}

// Where a batch's features come from: the feature cache, or the vision tower on the pixels (WinCLIP, whose
// per-scale blocks differ in rows and are tower runs themselves, so nothing cheaper than pixels can be kept).
typedef struct {
    Baseline *b;
    const ExecDataset *d;
    FeatureCache *fc;        // NULL: extract from pixels every time
    BaselineFeatureShape shape;
    BaselineFeatures *f;     // capacity `cap` images; f->B set per batch
    int cap, S;
    float *pixels;           // (cap,3,S,S)
    const float *mean, *std;
} FeatSource;

// Fills src->f with the features of samples idx[0..B) (B <= cap).
static int source_load(FeatSource *src, const int *idx, int B) {
    src->f->B = B;
    if (!src->fc) {
        if (exec_dataset_load_pixels(src->d, idx, B, src->S, src->mean, src->std, src->pixels) < 0) return -1;
        return baseline_extract(src->b, src->pixels, src->f);
    }
    const BaselineFeatureShape *s = &src->shape;
    for (int j = 0; j < B; j++) {
        for (int k = 0; k < s->n_blocks; k++)
            if (feature_cache_get(src->fc, idx[j], k, src->f->blocks[k] + (size_t)j * s->rows[k] * s->ld) < 0) return -1;
        if (feature_cache_get(src->fc, idx[j], FEATURE_GLOBAL, src->f->global + (size_t)j * s->P) < 0) return -1;
    }
    return 0;
}

// What decides the content of a method's feature blocks: CLIP and CLIP-AC differ only in their prompts, so they
// read one cache (same layers and switches); every other method has a feature path of its own.
static const char *feature_path_name(BaselineMethod m) {
    return m == BL_CLIP_AC ? baseline_method_name(BL_CLIP) : baseline_method_name(m);
}

// The cache of d's features for this head, complete and open for reading; NULL (with *skip = 1) when the
// method's blocks cannot share one table shape (WinCLIP), NULL with err_set on errors.
static FeatureCache *cache_prepare(FeatSource *src, const char *dir, ClipModel *model, ExecDataset *d, int *skip) {
    const BaselineConfig *bc = baseline_config(src->b);
    const BaselineFeatureShape *s = &src->shape;
    *skip = 0;
    for (int k = 1; k < s->n_blocks; k++)
        if (s->rows[k] != s->rows[0]) { *skip = 1; return NULL; }
    if (s->n_blocks < 1) { *skip = 1; return NULL; }
    const char *model_hash = checkpoint_hash(model->ck);
    if (!model_hash || exec_dataset_hash(d) < 0) return NULL;
    // Everything that decides what the blocks hold, beyond the shape: the method's feature path and its switches.
    char preprocess[768], layers[128] = "", dataset[160];
    for (int k = 0; k < bc->n_layers; k++)
        snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", k ? "," : "", bc->layers[k]);
    const float *mean = model->cfg.image_mean, *std = model->cfg.image_std;
    snprintf(preprocess, sizeof preprocess,
             "resize=bicubic-square;mean=%.8g,%.8g,%.8g;std=%.8g,%.8g,%.8g;pos=%s;method=%s;layers=%s;vv_from=%d;"
             "aliased=%d;global_ln_post=%d;rows=%d;ld=%d;P=%d", mean[0], mean[1], mean[2], std[0], std[1], std[2],
             bc->pos_interp == CLIP_POS_BICUBIC ? "bicubic" : "bilinear", feature_path_name(bc->method), layers,
             bc->method == BL_ANOMALYCLIP ? bc->vv_from : 0, bc->method == BL_ANOMALYCLIP ? bc->aliased_layers : 0,
             bc->global_ln_post, s->rows[0], s->ld, s->P);
    features_key_precision(preprocess, sizeof preprocess, bc->device, bc->precision);
    snprintf(dataset, sizeof dataset, "%s:%s", d->type, d->manifest);
    // The cache's stage datasets are numbered by block (1..n): the real layers are in the preprocess string, and
    // aliased or repeated layers still get one dataset each.
    int blocks[BL_MAX_LAYERS];
    for (int k = 0; k < s->n_blocks; k++) blocks[k] = k + 1;
    const char **hashes = malloc(sizeof(char *) * d->n);
    for (int i = 0; i < d->n; i++) hashes[i] = d->hash[i];
    FeatureCacheKey key = {.model_hash = model_hash, .preprocess = preprocess, .dataset = dataset,
                           .code_version = BASELINE_FEATURE_VERSION, .input_size = src->S, .n_layers = s->n_blocks,
                           .layers = blocks, .vv_from = 0, .n_images = d->n, .tokens = s->rows[0], .width = s->ld,
                           .global_dim = s->P, .image_hashes = hashes};
    char idtext[2048], id[65], name[300];
    snprintf(idtext, sizeof idtext, "%s|%s|%d|%s", model_hash, preprocess, src->S, dataset);
    sha256_hex(idtext, strlen(idtext), id);
    snprintf(name, sizeof name, "%s-%s-%s-%.16s.h5", d->name, d->type, feature_path_name(bc->method), id);
    if (fs_mkdirs(dir) < 0) { free(hashes); return NULL; }
    char *path = fs_join(dir, name);
    FeatureCache *fc = feature_cache_open(path, &key);
    free(hashes);
    if (!fc) { free(path); return NULL; }
    if (feature_cache_complete(fc)) {
        log_msg("feature cache %s: reused (%d images of %s, %s features)", path, d->n, d->name,
                feature_path_name(bc->method));
        free(path);
        return fc;
    }
    if (feature_cache_reason(fc)[0]) log_msg("feature cache %s: rebuilt: %s", path, feature_cache_reason(fc));
    int todo = d->n - feature_cache_n_done(fc), rc = 0;
    log_msg("features of %s: %d images to extract (%s: %d blocks of %d x %d, %d px) into %s", d->name, todo,
            baseline_method_name(bc->method), s->n_blocks, s->rows[0], s->ld, src->S, path);
    int *idx = malloc(sizeof(int) * src->cap);
    size_t block_floats[BL_MAX_LAYERS];
    for (int k = 0; k < s->n_blocks; k++) block_floats[k] = (size_t)s->rows[k] * s->ld;
    progress_start("features", todo);
    for (int next = 0, B = 0; rc == 0;) {
        rc = features_load_next(d, fc, src->S, src->mean, src->std, src->cap, &next, idx, &B, src->pixels);
        if (rc < 0 || B == 0) break;
        src->f->B = B;
        rc = baseline_extract(src->b, src->pixels, src->f);
        if (rc == 0) rc = features_store_batch(fc, idx, B, s->n_blocks, src->f->blocks, block_floats, src->f->global, s->P);
        progress_step(B);
    }
    progress_end();
    free(idx);
    free(path);
    return features_conclude(fc, rc, d->name);
}

static int source_open(FeatSource *src, Baseline *b, ClipModel *model, ExecDataset *d, const char *dir, int batch) {
    memset(src, 0, sizeof *src);
    src->b = b;
    src->d = d;
    src->cap = batch < 1 ? 1 : batch;
    src->S = baseline_config(b)->image_size;
    src->mean = model->cfg.image_mean;
    src->std = model->cfg.image_std;
    baseline_feature_shape(b, &src->shape);
    if (!(src->f = baseline_features_new(b, src->cap))) return -1;
    src->pixels = malloc(sizeof(float) * src->cap * 3 * src->S * src->S);
    if (!src->pixels) return err_set("out of memory for %d images of %d px", src->cap, src->S);
    int skip = 0;
    src->fc = cache_prepare(src, dir, model, d, &skip);
    if (!src->fc && !skip) return -1;
    if (skip) log_msg("features of %s: %s scores from pixels (its window features are not cached)", d->name,
                      baseline_method_name(baseline_config(b)->method));
    return 0;
}

static void source_close(FeatSource *src) {
    if (src->fc) feature_cache_close(src->fc);
    if (src->f) { src->f->B = src->cap; baseline_features_free(src->f); }
    free(src->pixels);
    memset(src, 0, sizeof *src);
}

static const char *class_arg(const BaselineConfig *bc, const ExecDataset *d, int c) {
    return baseline_class_arg(bc, d->classes[c]->name, d->classes[c]->prompt_name);
}

// ---------------------------------------------------------------------------------------------------------------
// Training

static const char *LOG_HEADER = "step,epoch,loss_total\n";

// April-GAN's mosaic augmentation for training (MVTecDataset.combine_img): four images of a class, each drawn as
// the public code does (a defect folder of the class uniformly, then a file of it uniformly).
typedef struct {
    float rate;
    BaselineFeatures *f;    // one image's features
    float *pixels;          // (3,S,S)
    int *by_defect;         // scratch: samples of one class grouped by defect
} Mosaic;

// Replaces sample j of the batch in src->f (and its mask) by a mosaic of four random images of class c.
static int mosaic_sample(Mosaic *mo, FeatSource *src, int c, Rng *r, int j, uint8_t *mask8) {
    const ExecDataset *d = src->d;
    const char *defects[256];
    int nd = 0;
    for (int i = 0; i < d->n; i++) {  // the class's defect folders, in dataset order
        if (d->cls[i] != c) continue;
        int k = 0;
        while (k < nd && strcmp(defects[k], d->s[i]->defect)) k++;
        if (k == nd && nd < 256) defects[nd++] = d->s[i]->defect;
    }
    const char *paths[4], *masks[4];
    for (int q = 0; q < 4; q++) {
        const char *defect = defects[(int)(rng_uniform(r) * nd)];
        int m = 0;
        for (int i = 0; i < d->n; i++)
            if (d->cls[i] == c && !strcmp(d->s[i]->defect, defect)) mo->by_defect[m++] = i;
        const Sample *s = d->s[mo->by_defect[(int)(rng_uniform(r) * m)]];
        paths[q] = s->image_path;
        masks[q] = s->label ? s->mask_path : NULL;
    }
    if (image_mosaic_load(paths, masks, src->S, src->mean, src->std, mo->pixels, mask8) < 0) return -1;
    mo->f->B = 1;
    if (baseline_extract(src->b, mo->pixels, mo->f) < 0) return -1;
    const BaselineFeatureShape *s = &src->shape;
    for (int k = 0; k < s->n_blocks; k++)
        memcpy(src->f->blocks[k] + (size_t)j * s->rows[k] * s->ld, mo->f->blocks[k], sizeof(float) * s->rows[k] * s->ld);
    memcpy(src->f->global + (size_t)j * s->P, mo->f->global, sizeof(float) * s->P);
    return 0;
}

// train_log.csv up to step `last` (rows a killed run wrote after its last saved state are written again).
static int train_baseline(Run *run, const Config *cfg, Baseline *b, FeatSource *src, TrainSummary *sum) {
    long epochs, batch, log_every;
    if (config_get_int(cfg, "train.epochs", &epochs) < 0 || config_get_int(cfg, "train.batch_size", &batch) < 0 ||
        config_get_int(cfg, "train.log_every", &log_every) < 0)
        return -1;
    if (epochs < 0) return err_set("train.epochs: %ld must be >= 0", epochs);
    if (batch < 1) return err_set("train.batch_size: %ld must be >= 1", batch);
    if (batch > src->cap) return err_set("train.batch_size: %ld exceeds the feature batch %d", batch, src->cap);
    if (log_every < 1) log_every = 1;
    const BaselineConfig *bc = baseline_config(b);
    const ExecDataset *d = src->d;
    int n = d->n, spe = (int)((n + batch - 1) / batch), S = bc->image_size, rc = 0, start_epoch = 0;
    char *state = run_path(run, "state.bin"), *log_path = run_path(run, "train_log.csv");
    if (fs_exists(state)) {
        if (baseline_load(b, state) < 0 || train_resume_epoch(state, baseline_step(b), spe, epochs, &start_epoch) < 0) {
            rc = -1;
            goto out;
        }
    }
    if (start_epoch >= epochs) {
        if (epochs > 0) log_msg("training: all %ld epochs done already", epochs);
        if (!fs_exists(log_path)) rc = fs_write_atomic(log_path, LOG_HEADER, strlen(LOG_HEADER));
        goto out;
    }
    if ((rc = train_log_trim(log_path, LOG_HEADER, (long)start_epoch * spe)) < 0) goto out;
    const char *stop_env = getenv("KANOCLIP_STOP_AFTER_EPOCHS");
    int stop_after = stop_env && *stop_env ? atoi(stop_env) : 0;
    log_msg("training %s: %d images, %ld epochs of %d steps (batch %ld), lr %g, %zu parameters",
            baseline_method_name(bc->method), n, epochs, spe, batch, bc->lr, baseline_n_params(b));
    size_t SS = (size_t)S * S;
    int *order = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * batch), *label = malloc(sizeof(int) * batch);
    const char **names = malloc(sizeof(char *) * batch);
    float *masks = malloc(sizeof(float) * batch * SS);
    uint8_t *m8 = malloc(SS);
    FILE *lf = fopen(log_path, "a");
    if (!lf) rc = err_set("%s: cannot append", log_path);
    Mosaic mo = {.rate = bc->aug_rate};
    if (mo.rate > 0) {
        mo.f = baseline_features_new(b, 1);
        mo.pixels = malloc(sizeof(float) * 3 * SS);
        mo.by_defect = malloc(sizeof(int) * n);
        if (!mo.f || !mo.pixels || !mo.by_defect) rc = err_set("mosaic augmentation: out of memory");
        else log_msg("training %s: mosaic augmentation of %.0f%% of the samples", baseline_method_name(bc->method),
                     100.0 * mo.rate);
    }
    int ran = 0;
    for (int e = start_epoch; e < epochs && rc == 0; e++) {
        train_epoch_order(order, n, bc->seed, e);
        double ep_sum = 0, win_sum = 0;
        int ep_n = 0, win_n = 0;
        char lbl[64];
        snprintf(lbl, sizeof lbl, "epoch %d/%ld", e + 1, epochs);
        progress_start(lbl, spe);
        for (int st = 0; st < spe && rc == 0; st++) {
            int B = 0;
            for (int k = st * (int)batch; k < n && B < batch; k++) idx[B++] = order[k];
            for (int j = 0; j < B && rc == 0; j++) {
                if (exec_dataset_mask(d, idx[j], S, m8) < 0) { rc = -1; break; }
                for (size_t q = 0; q < SS; q++) masks[j * SS + q] = m8[q];
                label[j] = d->s[idx[j]]->label;
                names[j] = class_arg(bc, d, d->cls[idx[j]]);
            }
            float loss = 0;
            if (rc == 0) rc = source_load(src, idx, B);
            if (rc == 0 && mo.rate > 0) {
                // which samples become mosaics, and of what: a function of (seed, epoch, step), so a resumed
                // run draws what an uninterrupted one does
                Rng r;
                rng_seed(&r, bc->seed ^ (0x6d6f73616963ULL + (uint64_t)e * 1000003ULL + (uint64_t)st));
                for (int j = 0; j < B && rc == 0; j++) {
                    if (rng_uniform(&r) >= mo.rate) continue;
                    rc = mosaic_sample(&mo, src, d->cls[idx[j]], &r, j, m8);
                    if (rc < 0) break;
                    int any = 0;
                    for (size_t q = 0; q < SS; q++) {
                        masks[j * SS + q] = m8[q];
                        any |= m8[q];
                    }
                    label[j] = any;
                }
            }
            if (rc == 0) rc = baseline_train_step_features(b, src->f, masks, label, names, &loss);
            if (rc < 0) break;
            ep_sum += loss, ep_n++, win_sum += loss, win_n++;
            long step = (long)e * spe + st + 1;
            if (step % log_every == 0 || st == spe - 1) {
                fprintf(lf, "%ld,%d,%.6g\n", step, e + 1, win_sum / win_n);
                fflush(lf);
                win_sum = 0, win_n = 0;
            }
            progress_step(1);
        }
        progress_end();
        if (rc < 0) break;
        double mean = ep_sum / ep_n;
        if (ran == 0) sum->first_epoch_loss = mean;
        sum->last_epoch_loss = mean;
        ran++;
        log_msg("epoch %d/%ld: loss %.5f", e + 1, epochs, mean);
        rc = baseline_save(b, state);
        if (rc == 0 && stop_after > 0 && ran >= stop_after && e + 1 < epochs)
            rc = err_set("stopped after epoch %d (KANOCLIP_STOP_AFTER_EPOCHS=%d)", e + 1, stop_after);
    }
    sum->epochs_run = ran;
    if (lf) fclose(lf);
    free(order); free(idx); free(label); free(names); free(masks); free(m8);
    if (mo.f) { mo.f->B = 1; baseline_features_free(mo.f); }
    free(mo.pixels); free(mo.by_defect);
out:
    free(state);
    free(log_path);
    return rc;
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation: the scorer eval_dataset_scored calls per batch (one class per batch).

static int score_batch(void *ctx, const int *idx, const int *cls, int B, float *maps, float *scores) {
    FeatSource *src = ctx;
    if (source_load(src, idx, B) < 0) return -1;
    return baseline_score_features(src->b, class_arg(baseline_config(src->b), src->d, cls[0]), src->f, scores, maps);
}

int exec_baseline(Run *run, const Config *cfg, const BaselineConfig *bc, ClipModel *model, Tokenizer *tok,
                  ExecDataset *train, ExecDataset *ev, int n_eval, const char *feat_dir, EvalResult *res,
                  TrainSummary *ts) {
    memset(ts, 0, sizeof *ts);
    long batch = 8, eval_batch = 8, epochs = 0;
    if (config_get_int(cfg, "train.batch_size", &batch) < 0 || config_get_int(cfg, "eval.batch_size", &eval_batch) < 0 ||
        config_get_int(cfg, "train.epochs", &epochs) < 0)
        return -1;
    long eval_size = 0;
    if (config_get_int(cfg, "eval.image_size", &eval_size) < 0) return -1;
    if (eval_size != bc->image_size)
        return err_set("eval.image_size: %ld, but the baselines evaluate at model.image_size (%d): set both alike",
                       eval_size, bc->image_size);
    Baseline *b = baseline_new(bc, model, tok);
    if (!b) return -1;
    int trains = bc->method == BL_APRILGAN || bc->method == BL_ANOMALYCLIP, rc = 0;
    BaselineFeatureShape s;
    baseline_feature_shape(b, &s);
    log_msg("method: %s (%s), %d px, %d feature blocks of %d x %d, %zu learnable parameters",
            baseline_display_label(bc->method), baseline_method_name(bc->method), bc->image_size, s.n_blocks,
            s.rows[0], s.ld, baseline_n_params(b));
    log_msg("method: vision tower on %s (%s GEMMs); the heads on the CPU", device_describe(bc->device),
            gemm_precision_name(gemm_precision_on(bc->device, bc->precision)));
    FeatSource src;
    if (trains && epochs > 0) {
        int cap = (int)(batch > eval_batch ? batch : eval_batch);
        rc = source_open(&src, b, model, train, feat_dir, cap);
        if (rc == 0) rc = train_baseline(run, cfg, b, &src, ts);
        source_close(&src);
        if (rc == 0 && ts->epochs_run > 0)
            log_msg("training: %d epochs, mean loss %.5f (first epoch) -> %.5f (last)", ts->epochs_run,
                    ts->first_epoch_loss, ts->last_epoch_loss);
    } else if (!trains && epochs > 0) {
        log_msg("train.epochs: %ld ignored: %s has nothing to train", epochs, baseline_display_label(bc->method));
    }
    for (int k = 0; k < n_eval && rc == 0; k++) {
        rc = source_open(&src, b, model, &ev[k], feat_dir, (int)eval_batch);
        if (rc == 0) rc = eval_dataset_scored(run, cfg, &ev[k], bc->image_size, score_batch, &src, &res[k]);
        source_close(&src);
        if (rc == 0)
            log_msg("eval %s: image AUROC %.4f, pixel AUROC %.4f (class means)", ev[k].name, res[k].image_auroc,
                    res[k].pixel_auroc);
    }
    baseline_free(b);
    return rc;
}
