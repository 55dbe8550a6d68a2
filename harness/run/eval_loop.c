// Evaluation loop (see eval_loop.h).
#include "harness/run/eval_loop.h"
#include "harness/run/eval_bootstrap.h"
#include "harness/run/eval_maps.h"
#include "harness/run/log.h"
#include "metrics/metrics.h"
#include "harness/run/progress.h"
#include "harness/run/train_loop.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/image.h"
#include "datasets/image_write.h"

#include <cjson/cJSON.h>
#include <math.h>
#include "common/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_metric(cJSON *o, const char *name, metric_value v) {
    if (v.defined) cJSON_AddNumberToObject(o, name, v.value);
    else cJSON_AddNullToObject(o, name);
}
static void csv_metric(StrBuf *b, metric_value v) {
    if (v.defined) strbuf_printf(b, ",%.6f", v.value);
    else strbuf_printf(b, ",");
}

// A heat colour for v in [0,1] (blue -> cyan -> yellow -> red), for overlays.
static void heat(float v, uint8_t *rgb) {
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    float r = fminf(fmaxf(1.5f - fabsf(4 * v - 3), 0), 1), g = fminf(fmaxf(1.5f - fabsf(4 * v - 2), 0), 1),
          bl = fminf(fmaxf(1.5f - fabsf(4 * v - 1), 0), 1);
    rgb[0] = (uint8_t)(255 * r), rgb[1] = (uint8_t)(255 * g), rgb[2] = (uint8_t)(255 * bl);
}

// image | ground truth | map over the image, side by side (3S x S), a PNG in dir.
static int write_overlay(const char *dir, const ExecDataset *d, int i, int S, const uint8_t *mask, const float *map) {
    Image src = {0}, img = {0};
    if (image_decode_file(d->s[i]->image_path, 3, &src) < 0) return -1;
    int rc = image_resize_for_model(&src, S, d->resize, &img);
    image_free(&src);
    if (rc < 0) return -1;
    // The map panel is min-max scaled per image for display only (as AnomalyCLIP's visualisations): the
    // metrics use the raw map, whose range is small when the heads are unsure.
    float lo = map[0], hi = map[0];
    for (size_t q = 1; q < (size_t)S * S; q++) lo = fminf(lo, map[q]), hi = fmaxf(hi, map[q]);
    float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
    uint8_t *px = malloc((size_t)3 * S * 3 * S);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const uint8_t *p = img.data + ((size_t)y * S + x) * 3;
            uint8_t *row = px + (size_t)y * 3 * S * 3, h[3];
            memcpy(row + x * 3, p, 3);
            memset(row + (S + x) * 3, mask[(size_t)y * S + x] ? 255 : 0, 3);
            heat((map[(size_t)y * S + x] - lo) * scale, h);
            for (int c = 0; c < 3; c++) row[(2 * S + x) * 3 + c] = (uint8_t)(0.5f * p[c] + 0.5f * h[c]);
        }
    image_free(&img);
    // <defect folder or label>_<file name without extension>.png: unique within a class for every layout.
    const char *base = strrchr(d->s[i]->image_path, '/');
    base = base ? base + 1 : d->s[i]->image_path;
    const char *dot = strrchr(base, '.');
    int stem = dot ? (int)(dot - base) : (int)strlen(base);
    const char *kind = d->s[i]->defect && *d->s[i]->defect ? d->s[i]->defect : d->s[i]->label ? "anomalous" : "normal";
    char name[512];
    snprintf(name, sizeof name, "%s_%.*s.png", kind, stem, base);
    char *path = fs_join(dir, name);
    rc = fs_mkdirs(dir) < 0 ? -1 : png_write(path, px, 3 * S, S, 3, 6);
    free(path);
    free(px);
    return rc;
}

// Pooled image-level ROC: one point per distinct score, from (0,0) to (1,1).
typedef struct { double s; uint8_t y; } ScoreLabel;
static int by_score_desc(const void *a, const void *b) {
    double x = ((const ScoreLabel *)a)->s, y = ((const ScoreLabel *)b)->s;
    return (x < y) - (x > y);
}
static char *roc_csv(const double *score, const uint8_t *label, int n) {
    ScoreLabel *v = malloc(sizeof *v * (n + 1));
    long pos = 0, neg = 0;
    for (int i = 0; i < n; i++) { v[i] = (ScoreLabel){score[i], label[i]}; pos += label[i]; }
    neg = n - pos;
    qsort(v, n, sizeof *v, by_score_desc);
    StrBuf b = {0};
    strbuf_printf(&b, "fpr,tpr\n0,0\n");
    long tp = 0, fp = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].y) tp++; else fp++;
        if (i + 1 < n && v[i + 1].s == v[i].s) continue;
        strbuf_printf(&b, "%.6f,%.6f\n", neg ? (double)fp / neg : 1.0, pos ? (double)tp / pos : 1.0);
    }
    if (!(neg && pos)) strbuf_printf(&b, "1,1\n");
    free(v);
    return strbuf_take(&b);
}

int eval_dataset_scored(Run *run, const Settings *st, const ExecDataset *d, int S, EvalScoreFn score_fn, void *ctx,
                        EvalResult *out) {
    memset(out, 0, sizeof *out);
    out->image_auroc = out->pixel_auroc = NAN;
    long batch = st->eval.batch_size, bins_cfg = st->eval.pixel_bins, overlays = st->eval.overlays;
    int save_maps = st->eval.save_maps, ac200 = st->eval.aupro_ac200;
    int n = d->n;
    size_t SS = (size_t)S * S;
    int pixel = !d->ds->image_level_only;
    EvalBoot boot;
    if (eval_boot_init(&boot, st) < 0) return -1;
    const int bins = bins_cfg > 0 ? (int)bins_cfg : PIXEL_BINS_DEFAULT;
    pixel_acc *acc = pixel ? pixel_acc_create(0.0, 1.0, bins) : NULL;
    if (pixel && !acc) { eval_boot_free(&boot); return -1; }
    if (acc && boot.n_resamples) pixel_acc_keep_images(acc);
    double *score = malloc(sizeof(double) * n);
    uint8_t *label = malloc(n);
    int64_t *acc_image = malloc(sizeof(int64_t) * n); // (n) each image's index among its class's pixel images
    int *idx = malloc(sizeof(int) * batch), *cls = malloc(sizeof(int) * batch), rc = 0;
    float *maps = malloc(sizeof(float) * batch * SS), *sc = malloc(sizeof(float) * batch);
    uint8_t *mask = malloc(SS);
    H5Writer *h5 = NULL;
    char *overlay_root = NULL;
    if (overlays > 0) {
        char sub[300];
        snprintf(sub, sizeof sub, "overlays/%s", d->name);
        overlay_root = run_path(run, sub);
    }
    if (save_maps) {
        char sub[300];
        snprintf(sub, sizeof sub, "maps_%s.h5", d->name);
        char *p = run_path(run, sub);
        h5 = h5w_open(p);
        free(p);
        if (!h5 || maps_file_start(h5, d, S, pixel, bins) < 0) rc = -1;
    }
    cJSON *classes = cJSON_CreateObject();
    StrBuf rows = {0};
    image_metrics_mean im_mean = {0};
    pixel_metrics_mean px_mean = {0};
    progress_start(d->name, n);
    for (int c = 0; c < d->n_classes && rc == 0; c++) {
        int first = -1, count = 0, shown = 0;
        for (int i = 0; i < n; i++)
            if (d->cls[i] == c) { if (first < 0) first = i; count++; }
        if (acc) pixel_acc_reset(acc);
        int px_images = 0;
        // Simple contiguous batching over the class's samples (the reader sorts samples by class).
        for (int start = 0; start < count && rc == 0; start += (int)batch) {
            int B = 0;
            for (int i = first, seen = 0; i < n && B < batch; i++)
                if (d->cls[i] == c && seen++ >= start) { idx[B] = i; cls[B++] = c; }
            rc = score_fn(ctx, idx, cls, B, maps, sc);
            for (int j = 0; j < B && rc == 0; j++) {
                int i = idx[j];
                float *map = maps + j * SS;
                for (size_t q = 0; q < SS; q++) map[q] = map[q] < 0 ? 0 : map[q] > 1 ? 1 : map[q];
                score[i] = sc[j];
                label[i] = (uint8_t)d->s[i]->label;
                int has = exec_dataset_mask(d, i, S, mask);
                if (has < 0) { rc = -1; break; }
                acc_image[i] = acc && has ? px_images : -1;
                if (acc && has) {
                    if (pixel_acc_add(acc, d->s[i]->image_path, map, S, S, mask, S, S) < 0) { rc = -1; break; }
                    px_images++;
                }
                if (h5 && maps_file_row(h5, i, map, mask, sc[j], label[i], has, pixel) < 0) { rc = -1; break; }
                // Overlays: every anomalous image until the quota is met, normal ones when only they are left.
                if (overlay_root && shown < overlays && (d->s[i]->label || count - (start + j) <= overlays - shown)) {
                    char *dir = fs_join(overlay_root, d->classes[c]->name);
                    rc = write_overlay(dir, d, i, S, mask, map);
                    free(dir);
                    shown++;
                }
            }
            progress_step(B);
        }
        if (rc < 0) break;
        // The class's metrics.
        double *cs = malloc(sizeof(double) * count);
        uint8_t *cl = malloc(count);
        int64_t *ca = malloc(sizeof(int64_t) * count);
        for (int i = first, k = 0; i < n; i++)
            if (d->cls[i] == c) { cs[k] = score[i]; cl[k] = label[i]; ca[k++] = acc_image[i]; }
        image_metrics im;
        pixel_metrics pm;
        int has_px = acc && px_images > 0;
        rc = image_metrics_compute(&im, cs, cl, count);
        if (rc == 0 && has_px) rc = pixel_acc_compute(acc, &pm);
        if (rc < 0) { free(cs); free(cl); free(ca); break; }
        image_metrics_mean_add(&im_mean, &im);
        cJSON *co = cJSON_AddObjectToObject(classes, d->classes[c]->name), *io = cJSON_AddObjectToObject(co, "image");
        add_metric(io, "auroc", im.auroc);
        add_metric(io, "ap", im.ap);
        add_metric(io, "f1_max", im.f1_max);
        strbuf_printf(&rows, "%s,%s", d->name, d->classes[c]->name);
        csv_metric(&rows, im.auroc);
        csv_metric(&rows, im.ap);
        csv_metric(&rows, im.f1_max);
        if (has_px) {
            pixel_metrics_mean_add(&px_mean, &pm);
            metric_value pro = ac200 == 2 ? pm.aupro_ac200_f32 : ac200 ? pm.aupro_ac200 : pm.aupro;
            cJSON *po = cJSON_AddObjectToObject(co, "pixel");
            add_metric(po, "auroc", pm.auroc);
            add_metric(po, "aupro", pro);
            add_metric(po, "ap", pm.ap);
            add_metric(po, "f1_max", pm.f1_max);
            csv_metric(&rows, pm.auroc);
            csv_metric(&rows, pro);
            csv_metric(&rows, pm.ap);
            csv_metric(&rows, pm.f1_max);
        } else {
            strbuf_printf(&rows, ",,,,");
        }
        strbuf_printf(&rows, "\n");
        rc = eval_boot_class(&boot, co, c, cs, cl, count, has_px ? acc : NULL, ca);
        free(cs);
        free(cl);
        free(ca);
    }
    progress_end();
    if (h5 && h5w_close(h5, rc == 0) < 0) rc = -1;
    if (rc == 0) {
        cJSON *o = cJSON_CreateObject(), *io = cJSON_AddObjectToObject(o, "image");
        metric_value v = metric_mean_value(&im_mean.auroc);
        add_metric(io, "auroc", v);
        add_metric(io, "ap", metric_mean_value(&im_mean.ap));
        add_metric(io, "f1_max", metric_mean_value(&im_mean.f1_max));
        if (v.defined) out->image_auroc = v.value;
        if (px_mean.auroc.n_total > 0) {
            cJSON *po = cJSON_AddObjectToObject(o, "pixel");
            metric_value pa = metric_mean_value(&px_mean.auroc);
            add_metric(po, "auroc", pa);
            add_metric(po, "aupro", metric_mean_value(ac200 == 2 ? &px_mean.aupro_ac200_f32 : ac200 ? &px_mean.aupro_ac200 : &px_mean.aupro));
            add_metric(po, "ap", metric_mean_value(&px_mean.ap));
            add_metric(po, "f1_max", metric_mean_value(&px_mean.f1_max));
            if (pa.defined) out->pixel_auroc = pa.value;
        }
        if (eval_boot_finish(&boot, o, &out->bootstrap) < 0) rc = -1;
        cJSON_AddNumberToObject(o, "n_images", n);
        cJSON_AddItemToObject(o, "classes", classes);
        classes = NULL;
        out->json = o;
        out->per_class = rows.s ? rows.s : strdup("");
        rows.s = NULL;
        out->roc = roc_csv(score, label, n);
    }
    cJSON_Delete(classes);
    free(rows.s);
    pixel_acc_free(acc);
    eval_boot_free(&boot);
    free(acc_image);
    free(score); free(label); free(idx); free(cls); free(maps); free(sc); free(mask);
    free(overlay_root);
    return rc;
}

// KAnoCLIP's scoring over the feature cache.
void eval_result_free(EvalResult *r) {
    cJSON_Delete(r->json);
    free(r->per_class);
    free(r->roc);
    free(r->bootstrap);
    memset(r, 0, sizeof *r);
}
