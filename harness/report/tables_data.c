#include "harness/report/tables_data.h"
#include "harness/report/run_boot.h"
#include "harness/config/config.h"
#include "harness/kb/kb_source.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/strbuf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const metric_json_name[N_METRICS] = {"image.auroc", "image.ap", "image.f1_max", "pixel.auroc",
                                                 "pixel.aupro", "pixel.ap", "pixel.f1_max"};
const char *const metric_csv_name[N_METRICS] = {"image_auroc", "image_ap", "image_f1_max", "pixel_auroc",
                                                "pixel_aupro", "pixel_ap", "pixel_f1_max"};

static char *str_or(const cJSON *obj, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return strdup(cJSON_IsString(v) ? v->valuestring : dflt);
}

// Reads "image": {...}, "pixel": {...}, "ci": {...} of obj into m. -1 with err_set on a non-number value.
static int read_metrics(const char *file, const char *where, const cJSON *obj, MetricSet *m) {
    memset(m, 0, sizeof *m);
    for (int k = 0; k < N_METRICS; k++) {
        char part[16];
        const char *dot = strchr(metric_json_name[k], '.');
        snprintf(part, sizeof part, "%.*s", (int)(dot - metric_json_name[k]), metric_json_name[k]);
        const cJSON *group = cJSON_GetObjectItem(obj, part);
        const cJSON *v = group ? cJSON_GetObjectItem(group, dot + 1) : NULL;
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v)) return err_set("%s: %s.%s: expected a number", file, where, metric_json_name[k]);
        if (v->valuedouble < 0 || v->valuedouble > 1)
            return err_set("%s: %s.%s: %g is not a fraction in [0,1]", file, where, metric_json_name[k], v->valuedouble);
        m->v[k] = v->valuedouble;
        m->has[k] = 1;
    }
    const cJSON *ci = cJSON_GetObjectItem(obj, "ci");
    for (int k = 0; ci && k < N_METRICS; k++) {
        const cJSON *iv = cJSON_GetObjectItem(ci, metric_json_name[k]);
        if (!iv) continue;
        if (!cJSON_IsArray(iv) || cJSON_GetArraySize(iv) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(iv, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(iv, 1)))
            return err_set("%s: %s.ci.%s: expected [low, high]", file, where, metric_json_name[k]);
        m->lo[k] = cJSON_GetArrayItem(iv, 0)->valuedouble;
        m->hi[k] = cJSON_GetArrayItem(iv, 1)->valuedouble;
        m->has_ci[k] = 1;
    }
    return 0;
}

static int by_class_name(const void *a, const void *b) {
    return strcmp(((const ClassResult *)a)->name, ((const ClassResult *)b)->name);
}

// per_class.csv rows for one dataset (when metrics.json has no "classes").
static int read_per_class_csv(const char *dir, DatasetResult *d) {
    char *path = fs_join(dir, "per_class.csv");
    if (!fs_exists(path)) { free(path); return 0; }
    char *text = fs_read_file(path, NULL);
    if (!text) { free(path); return -1; }
    int rc = 0, col_of[N_METRICS], n_cols = 0, line_no = 0;
    for (int k = 0; k < N_METRICS; k++) col_of[k] = -1;
    char *save, *line = strtok_r(text, "\n", &save);
    for (; line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        line[strcspn(line, "\r")] = '\0';
        char *fields[32];
        int nf = 0;
        for (char *p = line; nf < 32;) {
            fields[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0';
            p = c + 1;
        }
        if (line_no == 1) {
            n_cols = nf;
            if (nf < 2 || strcmp(fields[0], "dataset") || strcmp(fields[1], "class"))
                rc = err_set("%s:1: expected a header starting with dataset,class", path);
            for (int i = 2; i < nf; i++)
                for (int k = 0; k < N_METRICS; k++)
                    if (!strcmp(fields[i], metric_csv_name[k])) col_of[k] = i;
            continue;
        }
        if (nf != n_cols) { rc = err_set("%s:%d: %d fields, the header has %d", path, line_no, nf, n_cols); break; }
        if (strcmp(fields[0], d->name)) continue;
        d->classes = realloc(d->classes, sizeof *d->classes * (size_t)(d->n_classes + 1));
        ClassResult *c = &d->classes[d->n_classes++];
        memset(c, 0, sizeof *c);
        c->name = strdup(fields[1]);
        for (int k = 0; k < N_METRICS; k++) {
            if (col_of[k] < 0 || !*fields[col_of[k]]) continue;
            char *end;
            double v = strtod(fields[col_of[k]], &end);
            if (*end || v < 0 || v > 1) { rc = err_set("%s:%d: %s: '%s' is not a fraction", path, line_no, metric_csv_name[k], fields[col_of[k]]); break; }
            c->m.v[k] = v;
            c->m.has[k] = 1;
        }
    }
    free(text);
    free(path);
    return rc;
}

// report.* from the run's config.yaml (the composed config), when it still loads against today's defaults.
static void report_from_config(const char *dir, RunResult *r, int need_label, int need_table, int need_order) {
    char *path = fs_join(dir, "config.yaml");
    Config *cfg = fs_exists(path) ? config_load(path, NULL, 0, NULL) : NULL;
    free(path);
    if (!cfg) return;
    const char *s;
    long v;
    if (need_label && config_get_str(cfg, "report.label", &s) == 0 && s && *s) { free(r->label); r->label = strdup(s); }
    if (need_table && config_get_str(cfg, "report.table", &s) == 0 && s && *s) { free(r->table); r->table = strdup(s); }
    if (need_order && config_get_int(cfg, "report.order", &v) == 0) r->order = (int)v;
    config_free(cfg);
}

// provenance.json's kb_source.<class> lines, summarised ("" without them or without the file).
static char *kb_summary_from_provenance(const char *dir) {
    char *path = fs_join(dir, "provenance.json"), *text = fs_exists(path) ? fs_read_file(path, NULL) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const char *lines[1024];
    int n = 0;
    for (const cJSON *it = j ? j->child : NULL; it && n < 1024; it = it->next)
        if (it->string && !strncmp(it->string, "kb_source.", 10) && cJSON_IsString(it)) lines[n++] = it->valuestring;
    char *sum = kb_source_summary(lines, n);
    cJSON_Delete(j);
    free(text);
    free(path);
    return sum ? sum : strdup("");
}

int run_result_load(const char *dir, RunResult *r) {
    memset(r, 0, sizeof *r);
    char *path = fs_join(dir, "metrics.json");
    size_t len = 0;
    char *text = fs_read_file(path, &len);
    if (!text) { free(path); return -1; }
    sha256_hex(text, len, r->metrics_sha256);
    cJSON *j = cJSON_Parse(text);
    free(text);
    int rc = 0;
    if (!j || !cJSON_IsObject(j)) { rc = err_set("%s: not a JSON object", path); goto done; }
    const cJSON *method = cJSON_GetObjectItem(j, "method");
    if (!cJSON_IsString(method)) { rc = err_set("%s: method: expected a string", path); goto done; }
    r->dir = strdup(dir);
    r->method = strdup(method->valuestring);
    r->label = str_or(j, "label", "");
    r->table = str_or(j, "table", "");
    r->aupro_variant = str_or(j, "aupro_variant", "");
    r->train_dataset = str_or(j, "train_dataset", "");
    const cJSON *order = cJSON_GetObjectItem(j, "order"), *seed = cJSON_GetObjectItem(j, "seed");
    if (cJSON_IsNumber(order)) r->order = order->valueint;
    if (cJSON_IsNumber(seed)) r->seed = (long)seed->valuedouble;
    report_from_config(dir, r, !*r->label, !*r->table, !cJSON_IsNumber(order));
    if (!*r->label) { free(r->label); r->label = strdup(r->method); }
    if (!*r->table) { free(r->table); r->table = strdup("main"); }
    r->kb_summary = kb_summary_from_provenance(dir);
    const cJSON *ds = cJSON_GetObjectItem(j, "datasets");
    if (!cJSON_IsObject(ds)) { rc = err_set("%s: datasets: expected an object", path); goto done; }
    r->n_datasets = cJSON_GetArraySize(ds);
    r->datasets = calloc((size_t)r->n_datasets + 1, sizeof *r->datasets);
    int i = 0;
    for (const cJSON *d = ds->child; d && rc == 0; d = d->next, i++) {
        DatasetResult *dr = &r->datasets[i];
        dr->name = strdup(d->string);
        char where[300];
        snprintf(where, sizeof where, "datasets.%s", d->string);
        if ((rc = read_metrics(path, where, d, &dr->m)) < 0 || (rc = run_boot_load(dir, d, dr)) < 0) break;
        const cJSON *classes = cJSON_GetObjectItem(d, "classes");
        if (classes && cJSON_IsObject(classes)) {
            dr->n_classes = cJSON_GetArraySize(classes);
            dr->classes = calloc((size_t)dr->n_classes + 1, sizeof *dr->classes);
            int c = 0;
            for (const cJSON *cl = classes->child; cl && rc == 0; cl = cl->next, c++) {
                dr->classes[c].name = strdup(cl->string);
                snprintf(where, sizeof where, "datasets.%s.classes.%s", d->string, cl->string);
                rc = read_metrics(path, where, cl, &dr->classes[c].m);
            }
        } else {
            rc = read_per_class_csv(dir, dr);
        }
        if (dr->n_classes > 1) qsort(dr->classes, (size_t)dr->n_classes, sizeof *dr->classes, by_class_name);
    }
done:
    cJSON_Delete(j);
    free(path);
    if (rc < 0) run_result_free(r);
    return rc;
}

void run_result_free(RunResult *r) {
    for (int i = 0; i < r->n_datasets; i++) {
        for (int c = 0; c < r->datasets[i].n_classes; c++) free(r->datasets[i].classes[c].name);
        free(r->datasets[i].classes);
        free(r->datasets[i].name);
        run_boot_free(&r->datasets[i]);
    }
    free(r->datasets);
    free(r->dir);
    free(r->method);
    free(r->label);
    free(r->table);
    free(r->aupro_variant);
    free(r->train_dataset);
    free(r->kb_summary);
    memset(r, 0, sizeof *r);
}

const DatasetResult *run_result_dataset(const RunResult *r, const char *name) {
    for (int i = 0; i < r->n_datasets; i++)
        if (!strcmp(r->datasets[i].name, name)) return &r->datasets[i];
    return NULL;
}

int run_results_load_finished(char *const *dirs, int n, const char *cmd, FILE *notes, RunResult **out, int *n_out) {
    RunResult *runs = calloc((size_t)n + 1, sizeof *runs);
    StrBuf skipped = {0}, reasons = {0};
    int k = 0, rc = 0, n_skipped = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *done = fs_join(dirs[i], "DONE"), *metrics = fs_join(dirs[i], "metrics.json");
        const char *why = NULL;
        if (!fs_is_dir(dirs[i])) why = "no such folder";
        else if (!fs_exists(done) && fs_exists(metrics)) why = "an unfinished run (metrics.json but no DONE)";
        else if (!fs_exists(done)) why = "not a finished run (no DONE): an unfinished run, a grid's folder or another folder";
        if (why) {
            strbuf_printf(&skipped, "%s: skipping %s: %s\n", cmd, dirs[i], why);
            if (n_skipped++ < 3) strbuf_printf(&reasons, "%s%s: %s", n_skipped > 1 ? "; " : "", dirs[i], why);
        } else if (run_result_load(dirs[i], &runs[k]) < 0) {
            rc = -1;
        } else {
            k++;
        }
        free(done);
        free(metrics);
    }
    // the notes only beside a result: when nothing is left, the one error line carries the reasons
    if (rc == 0 && k == 0)
        rc = err_set("no finished run among the %d folder%s given (%s%s); a finished run holds DONE and metrics.json",
                     n, n == 1 ? "" : "s", reasons.s ? reasons.s : "", n_skipped > 3 ? "; ..." : "");
    if (rc == 0 && notes && skipped.s) fputs(skipped.s, notes);
    free(skipped.s);
    free(reasons.s);
    if (rc < 0) {
        for (int i = 0; i < k; i++) run_result_free(&runs[i]);
        free(runs);
        *out = NULL;
        *n_out = 0;
        return -1;
    }
    *out = runs;
    *n_out = k;
    return 0;
}
