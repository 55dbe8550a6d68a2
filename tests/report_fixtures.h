// Fixture run folders for the report tests (tables, plots, grid): metrics.json, per_class.csv, roc and loss CSVs
// in the formats harness/run/experiment.h defines, with made-up but plausible values.
#ifndef TESTS_REPORT_FIXTURES_H
#define TESTS_REPORT_FIXTURES_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

static void fixture_write(const char *dir, const char *name, const char *text) {
    fs_mkdirs(dir);
    char *p = fs_join(dir, name);
    fs_write_atomic(p, text, strlen(text));
    free(p);
}

static cJSON *fixture_metrics(double i_auroc, double p_auroc, double aupro) {
    cJSON *d = cJSON_CreateObject();
    cJSON *im = cJSON_AddObjectToObject(d, "image");
    cJSON_AddNumberToObject(im, "auroc", i_auroc);
    cJSON_AddNumberToObject(im, "ap", i_auroc * 0.97);
    cJSON_AddNumberToObject(im, "f1_max", i_auroc * 0.9);
    if (p_auroc >= 0) {
        cJSON *px = cJSON_AddObjectToObject(d, "pixel");
        cJSON_AddNumberToObject(px, "auroc", p_auroc);
        cJSON_AddNumberToObject(px, "aupro", aupro);
        cJSON_AddNumberToObject(px, "ap", p_auroc * 0.3);
        cJSON_AddNumberToObject(px, "f1_max", p_auroc * 0.35);
    }
    return d;
}

// One run folder: datasets[i] gets image AUROC base+0.01*i, pixel AUROC pbase+0.01*i; classes a,b,c.
// table: "main" or "ablation"; with_classes 0 writes per_class.csv instead of "classes".
static void fixture_run(const char *dir, const char *method, const char *label, const char *table, int order,
                        long seed, int n_ds, const char *const *datasets, double base, double pbase, int with_classes,
                        int with_ci) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", method);
    if (label) cJSON_AddStringToObject(j, "label", label);
    cJSON_AddStringToObject(j, "table", table);
    cJSON_AddNumberToObject(j, "order", order);
    cJSON_AddStringToObject(j, "train_dataset", "mvtec");
    cJSON_AddStringToObject(j, "aupro_variant", "mvtec");
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON *ds = cJSON_AddObjectToObject(j, "datasets");
    char csv[8192] = "dataset,class,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,pixel_f1_max\n";
    for (int i = 0; i < n_ds; i++) {
        double ia = base + 0.01 * i, pa = pbase + 0.01 * i;
        cJSON *d = fixture_metrics(ia, pa, pa - 0.1);
        if (with_ci) {
            cJSON *ci = cJSON_AddObjectToObject(d, "ci");
            cJSON *iv = cJSON_AddArrayToObject(ci, "image.auroc");
            cJSON_AddItemToArray(iv, cJSON_CreateNumber(ia - 0.02));
            cJSON_AddItemToArray(iv, cJSON_CreateNumber(ia + 0.015));
        }
        cJSON *cls = with_classes ? cJSON_AddObjectToObject(d, "classes") : NULL;
        const char *names[3] = {"candle", "bottle", "pcb1"};
        for (int c = 0; c < 3; c++) {
            double ci_ = ia + 0.02 * (c - 1), cp = pa + 0.01 * (c - 1);
            if (cls) cJSON_AddItemToObject(cls, names[c], fixture_metrics(ci_, cp, cp - 0.1));
            else
                snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%s,%s,%.4f,%.4f,%.4f,%.4f,%.4f,,\n", datasets[i],
                         names[c], ci_, ci_ * 0.97, ci_ * 0.9, cp, cp - 0.1);
        }
        cJSON_AddItemToObject(ds, datasets[i], d);
    }
    char *text = cJSON_Print(j);
    fixture_write(dir, "metrics.json", text);
    free(text);
    cJSON_Delete(j);
    if (!with_classes) fixture_write(dir, "per_class.csv", csv);
    // roc_<dataset>.csv and train_log.csv for plots
    for (int i = 0; i < n_ds; i++) {
        char name[128], roc[4096] = "fpr,tpr\n";
        for (int k = 0; k <= 20; k++) {
            double f = k / 20.0;
            double t = 1 - (1 - f) * (1 - f) * (1.2 - base);
            if (t > 1) t = 1;
            snprintf(roc + strlen(roc), sizeof roc - strlen(roc), "%.4f,%.4f\n", f, k == 20 ? 1.0 : t);
        }
        snprintf(name, sizeof name, "roc_%s.csv", datasets[i]);
        fixture_write(dir, name, roc);
    }
    char log[8192] = "step,epoch,loss_total,loss_focal,loss_dice,loss_bce,loss_kd\n";
    for (int s = 0; s < 30; s++) {
        double f = 1.0 / (1 + 0.2 * s);
        snprintf(log + strlen(log), sizeof log - strlen(log), "%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f\n", s * 10, s / 10,
                 2.5 * f, 0.8 * f, 0.9 * f, 0.6 * f, 0.2 * f);
    }
    fixture_write(dir, "train_log.csv", log);
    fixture_write(dir, "DONE", "fixture");
}

#endif
