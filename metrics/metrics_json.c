// Metrics as JSON objects (cJSON): an undefined metric is null, and "null_reasons" says why.
#include "metrics/metrics.h"
#include "metrics/metrics_boot.h"

#include <cjson/cJSON.h>

static void add_value(cJSON *obj, const char *name, metric_value v) {
    if (v.defined) {
        cJSON_AddNumberToObject(obj, name, v.value);
        return;
    }
    cJSON_AddNullToObject(obj, name);
    cJSON *why = cJSON_GetObjectItemCaseSensitive(obj, "null_reasons");
    if (!why) why = cJSON_AddObjectToObject(obj, "null_reasons");
    cJSON_AddStringToObject(why, name, v.why_null ? v.why_null : "undefined");
}

// The null reasons go last, after the numbers a reader looks for first.
static void move_reasons_last(cJSON *obj) {
    cJSON *why = cJSON_DetachItemFromObjectCaseSensitive(obj, "null_reasons");
    if (why) cJSON_AddItemToObject(obj, "null_reasons", why);
}

cJSON *image_metrics_json(const image_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    add_value(o, "auroc", m->auroc);
    add_value(o, "ap", m->ap);
    add_value(o, "f1_max", m->f1_max);
    cJSON_AddNumberToObject(o, "n_pos", (double)m->n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)m->n_neg);
    move_reasons_last(o);
    return o;
}

void auroc_interval_json(cJSON *obj, const auroc_interval *ci) {
    if (ci->lo.defined && ci->hi.defined) {
        cJSON *pair = cJSON_AddArrayToObject(obj, "auroc_ci95");
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(ci->lo.value));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(ci->hi.value));
    } else {
        add_value(obj, "auroc_ci95", ci->lo.defined ? ci->hi : ci->lo);
    }
    cJSON *b = cJSON_AddObjectToObject(obj, "bootstrap");
    cJSON_AddNumberToObject(b, "resamples", ci->n_resamples);
    cJSON_AddNumberToObject(b, "skipped_one_class", ci->n_skipped);
    cJSON_AddNumberToObject(b, "seed", (double)ci->seed);
    cJSON_AddBoolToObject(b, "stratified", ci->stratified);
    cJSON_AddStringToObject(b, "method", "percentile 2.5/97.5, linear interpolation");
    move_reasons_last(obj);
}

cJSON *pixel_metrics_json(const pixel_metrics *m) {
    cJSON *o = cJSON_CreateObject();
    add_value(o, "auroc", m->auroc);
    add_value(o, "ap", m->ap);
    add_value(o, "f1_max", m->f1_max);
    add_value(o, "aupro", m->aupro);
    add_value(o, "aupro_ac200", m->aupro_ac200);
    cJSON_AddNumberToObject(o, "n_pos", (double)m->n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)m->n_neg);
    cJSON_AddNumberToObject(o, "n_regions", (double)m->n_regions);
    cJSON_AddNumberToObject(o, "n_images", (double)m->n_images);
    cJSON *bin = cJSON_AddObjectToObject(o, "binning");
    cJSON_AddNumberToObject(bin, "bins", m->bins);
    cJSON *range = cJSON_AddArrayToObject(bin, "range");
    cJSON_AddItemToArray(range, cJSON_CreateNumber(m->lo));
    cJSON_AddItemToArray(range, cJSON_CreateNumber(m->hi));
    cJSON *err = cJSON_AddObjectToObject(bin, "max_abs_error");
    cJSON_AddNumberToObject(err, "auroc", m->auroc_err_bound);
    cJSON_AddNumberToObject(err, "ap", m->ap_err_bound);
    cJSON_AddNumberToObject(err, "f1_max", m->f1_max_err_bound);
    cJSON_AddNumberToObject(err, "aupro", m->aupro_err_bound);
    move_reasons_last(o);
    return o;
}

static void add_counts(cJSON *o, const char *name, const metric_mean *m) {
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "classes_defined");
    if (!c) c = cJSON_AddObjectToObject(o, "classes_defined");
    cJSON_AddNumberToObject(c, name, m->n_defined);
}

cJSON *image_metrics_mean_json(const image_metrics_mean *m) {
    cJSON *o = cJSON_CreateObject();
    add_value(o, "auroc", metric_mean_value(&m->auroc));
    add_value(o, "ap", metric_mean_value(&m->ap));
    add_value(o, "f1_max", metric_mean_value(&m->f1_max));
    cJSON_AddNumberToObject(o, "n_pos", (double)m->n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)m->n_neg);
    cJSON_AddNumberToObject(o, "n_classes", m->auroc.n_total);
    add_counts(o, "auroc", &m->auroc);
    add_counts(o, "ap", &m->ap);
    add_counts(o, "f1_max", &m->f1_max);
    move_reasons_last(o);
    return o;
}

cJSON *pixel_metrics_mean_json(const pixel_metrics_mean *m) {
    cJSON *o = cJSON_CreateObject();
    add_value(o, "auroc", metric_mean_value(&m->auroc));
    add_value(o, "ap", metric_mean_value(&m->ap));
    add_value(o, "f1_max", metric_mean_value(&m->f1_max));
    add_value(o, "aupro", metric_mean_value(&m->aupro));
    add_value(o, "aupro_ac200", metric_mean_value(&m->aupro_ac200));
    cJSON_AddNumberToObject(o, "n_pos", (double)m->n_pos);
    cJSON_AddNumberToObject(o, "n_neg", (double)m->n_neg);
    cJSON_AddNumberToObject(o, "n_regions", (double)m->n_regions);
    cJSON_AddNumberToObject(o, "n_images", (double)m->n_images);
    cJSON_AddNumberToObject(o, "n_classes", m->auroc.n_total);
    add_counts(o, "auroc", &m->auroc);
    add_counts(o, "ap", &m->ap);
    add_counts(o, "f1_max", &m->f1_max);
    add_counts(o, "aupro", &m->aupro);
    add_counts(o, "aupro_ac200", &m->aupro_ac200);
    move_reasons_last(o);
    return o;
}

// ---- bootstrap ------------------------------------------------------------------------------------------------

// The metrics a "ci" object holds: the chosen AUPRO as "pixel.aupro", or every variant under its own name.
static const char *boot_json_name(int k, int aupro_as) {
    int is_pro = k == BOOT_PIXEL_AUPRO || k == BOOT_PIXEL_AUPRO_AC200 || k == BOOT_PIXEL_AUPRO_AC200_F32;
    if (!is_pro || aupro_as < 0) return boot_metric_name[k];
    return k == aupro_as ? "pixel.aupro" : NULL;
}

cJSON *boot_ci_json(const boot_samples *s, int aupro_as) {
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < BOOT_N_METRICS; k++) {
        const char *name = boot_json_name(k, aupro_as);
        if (!name) continue;
        boot_interval ci = boot_interval_of(s, k);
        if (!ci.lo.defined) continue;
        cJSON *pair = cJSON_AddArrayToObject(o, name);
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(ci.lo.value));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(ci.hi.value));
    }
    return o;
}

cJSON *boot_info_json(const boot_samples *s, int aupro_as) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "resamples", s->n_resamples);
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    cJSON_AddStringToObject(o, "resampled", "images within each class, stratified by image label (pixels of an image "
                                            "together); a dataset's value is the mean over its classes");
    cJSON_AddStringToObject(o, "interval", "percentile 2.5/97.5, linear interpolation");
    cJSON *undef = NULL;
    for (int k = 0; k < BOOT_N_METRICS; k++) {
        const char *name = boot_json_name(k, aupro_as);
        boot_interval ci = boot_interval_of(s, k);
        if (!name || ci.n_used == 0 || ci.n_used == s->n_resamples) continue;
        if (!undef) undef = cJSON_AddObjectToObject(o, "undefined_resamples");
        cJSON_AddNumberToObject(undef, name, s->n_resamples - ci.n_used);
    }
    return o;
}
