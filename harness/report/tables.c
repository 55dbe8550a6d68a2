// Building the paper-shaped tables from run results (tables.h).
#include "harness/report/table3.h"
#include "harness/report/cell_value.h"
#include "harness/report/tables.h"
#include "harness/report/run_groups.h"
#include "harness/report/tables_render.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const PaperRow *paper_find(const PaperNumbers *p, const char *table, const char *dataset, const char *method) {
    for (int i = 0; p && i < p->n; i++)
        if (!strcmp(p->rows[i].table, table) && !strcmp(p->rows[i].dataset, dataset) && !strcmp(p->rows[i].method, method))
            return &p->rows[i];
    return NULL;
}

// ---- methods (labels) and aggregation ----

typedef struct {
    RunResult *runs;
    int n_runs;
    const PaperNumbers *paper;
    const char *out_dir;
    char header[400];
    int n_files;
} Ctx;

typedef struct { const char *label; int order; } Method;

static int by_order_label(const void *a, const void *b) {
    const Method *x = a, *y = b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    return strcmp(x->label, y->label);
}

// Labels of runs in table `which` (NULL: all) that have `dataset` (NULL: any), sorted by (order, label).
static int collect_methods(const Ctx *cx, const char *which, const char *dataset, Method *out) {
    int n = 0;
    for (int i = 0; i < cx->n_runs; i++) {
        const RunResult *r = &cx->runs[i];
        if (which && strcmp(r->table, which)) continue;
        if (dataset && !run_result_dataset(r, dataset)) continue;
        int found = -1;
        for (int k = 0; k < n; k++)
            if (!strcmp(out[k].label, r->label)) found = k;
        if (found < 0) out[n++] = (Method){r->label, r->order};
        else if (r->order < out[found].order) out[found].order = r->order;
    }
    qsort(out, (size_t)n, sizeof *out, by_order_label);
    return n;
}

// Value j of a cell: metric k of (label, dataset[, class]) over matching runs (cell_value.h).
static void aggregate(const Ctx *cx, const char *which, const char *label, const char *dataset, const char *cls,
                      int k, Cell *c, int j) {
    const MetricSet **ms = malloc(sizeof *ms * (size_t)(cx->n_runs + 1));
    const DatasetResult **ds = malloc(sizeof *ds * (size_t)(cx->n_runs + 1));
    int n = 0;
    for (int i = 0; i < cx->n_runs; i++) {
        const RunResult *r = &cx->runs[i];
        if ((which && strcmp(r->table, which)) || strcmp(r->label, label)) continue;
        const DatasetResult *d = run_result_dataset(r, dataset);
        if (!d) continue;
        const MetricSet *m = &d->m;
        if (cls) {
            m = NULL;
            for (int q = 0; q < d->n_classes; q++)
                if (!strcmp(d->classes[q].name, cls)) m = &d->classes[q].m;
            if (!m) continue;
        }
        ms[n] = m;
        ds[n++] = d;
    }
    CellValue v;
    cell_value(ms, cls ? NULL : ds, n, k, &v);
    free(ms);
    free(ds);
    if (!v.n) return;
    c->has[j] = 1;
    c->v[j] = v.v;
    c->n_runs[j] = v.n;
    c->sd[j] = v.sd;
    c->has_ci[j] = v.has_ci;
    c->lo[j] = v.lo;
    c->hi[j] = v.hi;
}

// ---- writing ----

// Tables with intervals say what they are (tables without keep their caption as it was).
static void caption_intervals(Table *t) {
    int any = 0;
    for (int i = 0; i < t->n_rows * t->n_cols && !any; i++)
        for (int j = 0; j < t->cells[i].n; j++) any |= t->cells[i].has_ci[j];
    if (!any) return;
    const char *more = " [low, high]: 95% bootstrap interval (eval.bootstrap; images resampled within each class, "
                       "stratified by label, the pixels of an image together; for several seeds, of their mean, "
                       "paired by resample).";
    size_t len = strlen(t->caption) + strlen(more) + 1;
    t->caption = realloc(t->caption, len);
    strcat(t->caption, more);
}

static int write_table(Ctx *cx, Table *t) {
    caption_intervals(t);
    char *md = table_markdown(t, cx->header), *tex = table_latex(t, cx->header), *csv = table_csv(t);
    const char *ext[3] = {"md", "tex", "csv"};
    char *text[3] = {md, tex, csv};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s.%s", t->name, ext[i]);
        char *path = fs_join(cx->out_dir, name);
        rc = fs_write_atomic(path, text[i], strlen(text[i]));
        free(path);
        if (rc == 0) cx->n_files++;
    }
    free(md);
    free(tex);
    free(csv);
    return rc;
}

static int by_dataset_order(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int px, py;
    dataset_family(x, &px);
    dataset_family(y, &py);
    if (px != py) return px < py ? -1 : 1;
    return strcmp(x, y);
}

// Dataset names in runs of `which` (NULL: all) of family `family` (0 industrial, 1 medical, -1 none of the paper's
// datasets, -2 any), and, when paper_table is given and the runs have one of the family's datasets, the paper's
// rows of that table; sorted in the paper's order.
static int collect_datasets(const Ctx *cx, const char *which, int family, const char *paper_table, const char **out) {
    int n = 0;
    for (int i = 0; i < cx->n_runs; i++) {
        if (which && strcmp(cx->runs[i].table, which)) continue;
        for (int d = 0; d < cx->runs[i].n_datasets; d++) {
            const char *name = cx->runs[i].datasets[d].name;
            if (family != -2 && dataset_family(name, NULL) != family) continue;
            int seen = 0;
            for (int k = 0; k < n; k++) seen |= !strcmp(out[k], name);
            if (!seen) out[n++] = name;
        }
    }
    // published numbers stand beside ours: a table none of our runs reaches is not written from them alone
    for (int i = 0; n > 0 && paper_table && cx->paper && i < cx->paper->n; i++) {
        if (strcmp(cx->paper->rows[i].table, paper_table)) continue;
        int seen = 0;
        for (int k = 0; k < n; k++) seen |= !strcmp(out[k], cx->paper->rows[i].dataset);
        if (!seen) out[n++] = cx->paper->rows[i].dataset;
    }
    qsort(out, (size_t)n, sizeof *out, by_dataset_order);
    return n;
}

static char *trained_on(const Ctx *cx, const char *which) {
    const char *seen[64];
    int n = 0;
    char buf[512] = "";
    for (int i = 0; i < cx->n_runs; i++) {
        const char *t = cx->runs[i].train_dataset;
        if ((which && strcmp(cx->runs[i].table, which)) || !*t) continue;
        int dup = 0;
        for (int k = 0; k < n; k++) dup |= !strcmp(seen[k], t);
        if (dup || n >= 64) continue;
        seen[n++] = t;
    }
    for (int a = 1; a < n; a++)  // sorted: the same set gives the same text
        for (int b = a; b > 0 && strcmp(seen[b - 1], seen[b]) > 0; b--) {
            const char *x = seen[b];
            seen[b] = seen[b - 1];
            seen[b - 1] = x;
        }
    for (int k = 0; k < n; k++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", k ? ", " : "", dataset_display_name(seen[k]));
    return strdup(buf);
}

static void mean_row(Table *t, int row, int from, int to) {
    for (int c = 0; c < t->n_cols; c++)
        for (int j = 0; j < table_cell(t, row, c)->n; j++) {
            double s = 0;
            int all = to > from;
            for (int r = from; r < to; r++) {
                Cell *x = table_cell(t, r, c);
                if (!x->has[j]) all = 0;
                else s += x->v[j];
            }
            if (all) {
                table_cell(t, row, c)->has[j] = 1;
                table_cell(t, row, c)->v[j] = s / (to - from);
            }
        }
}

// Where the paper columns of a table come from: each source with the methods taken from it.
static void paper_sources_note(const Ctx *cx, const char *paper_table, StrBuf *b) {
    strbuf_printf(b, "Columns marked (paper) are published numbers, not ours. Sources: ");
    const char *srcs[64];
    int ns = 0;
    for (int i = 0; i < cx->paper->n && ns < 64; i++) {
        const PaperRow *r = &cx->paper->rows[i];
        int seen = 0;
        for (int k = 0; k < ns; k++) seen |= !strcmp(srcs[k], r->source);
        if (!seen && !strcmp(r->table, paper_table)) srcs[ns++] = r->source;
    }
    for (int k = 0; k < ns; k++) {
        strbuf_printf(b, "%s%s (", k ? "; " : "", srcs[k]);
        const char *ms_seen[64];
        int nms = 0;
        for (int i = 0; i < cx->paper->n; i++) {
            const PaperRow *r = &cx->paper->rows[i];
            if (strcmp(r->table, paper_table) || strcmp(r->source, srcs[k])) continue;
            int seen = 0;
            for (int q = 0; q < nms; q++) seen |= !strcmp(ms_seen[q], r->method);
            if (seen || nms >= 64) continue;
            ms_seen[nms++] = r->method;
            strbuf_printf(b, "%s%s", nms > 1 ? ", " : "", r->method);
        }
        strbuf_printf(b, ")");
    }
    strbuf_printf(b, ". Empty cells: the source gives no number.");
}

static int run_in_table(const RunResult *r, const char *label, const char **ds, int nd) {
    if (strcmp(r->table, "main") || strcmp(r->label, label)) return 0;
    for (int d = 0; d < nd; d++)
        if (run_result_dataset(r, ds[d])) return 1;
    return 0;
}

// Where each column's knowledge base came from (provenance.json, per training class): a line per method, training
// set and summary, with the seeds of the runs that share it, in column order.
static void kb_note(const Ctx *cx, const Method *ms, int nm, const char **ds, int nd, StrBuf *b) {
    for (int m = 0; m < nm; m++)
        for (int i = 0; i < cx->n_runs; i++) {
            const RunResult *r = &cx->runs[i];
            if (!*r->kb_summary || !run_in_table(r, ms[m].label, ds, nd)) continue;
            int first = 1;
            for (int k = 0; k < i && first; k++)
                first = !(run_in_table(&cx->runs[k], ms[m].label, ds, nd) && !strcmp(cx->runs[k].kb_summary, r->kb_summary) &&
                          !strcmp(cx->runs[k].train_dataset, r->train_dataset));
            if (!first) continue;
            long seeds[64];
            int n = 0;
            for (int k = i; k < cx->n_runs && n < 64; k++) {
                const RunResult *o = &cx->runs[k];
                if (!run_in_table(o, ms[m].label, ds, nd) || strcmp(o->kb_summary, r->kb_summary) ||
                    strcmp(o->train_dataset, r->train_dataset))
                    continue;
                int j = n++;
                for (; j > 0 && seeds[j - 1] > o->seed; j--) seeds[j] = seeds[j - 1];  // ascending
                seeds[j] = o->seed;
            }
            strbuf_printf(b, "%sKnowledge base of %s [seed%s ", b->s ? "\n\n" : "", ms[m].label, n > 1 ? "s" : "");
            for (int k = 0; k < n; k++) strbuf_printf(b, "%s%ld", k ? ", " : "", seeds[k]);
            if (*r->train_dataset) strbuf_printf(b, "; training set %s", dataset_display_name(r->train_dataset));
            strbuf_printf(b, "]: %s.", r->kb_summary);
        }
}

// Table 1 (family 0), Table 2 (family 1), and the datasets outside the paper (family -1: the demo's synthetic
// data, a custom dataset), which have no published numbers and so never sit among the paper's rows.
static int family_table(Ctx *cx, int family) {
    const char *paper_table = family == 0 ? "industrial" : family == 1 ? "medical" : NULL;
    const char *ds[256];
    int nd = collect_datasets(cx, "main", family, cx->paper ? paper_table : NULL, ds);
    if (nd == 0) return 0;
    Method all[256], ms[256];
    int na = collect_methods(cx, "main", NULL, all), nm = 0;
    for (int m = 0; m < na; m++) {  // only methods with at least one of these datasets
        int any = 0;
        for (int i = 0; i < cx->n_runs; i++)
            for (int d = 0; d < nd && !any; d++)
                any = !strcmp(cx->runs[i].label, all[m].label) && !strcmp(cx->runs[i].table, "main") &&
                      run_result_dataset(&cx->runs[i], ds[d]);
        if (any) ms[nm++] = all[m];
    }
    const char *pm[64];
    int np = 0;
    for (int i = 0; cx->paper && paper_table && i < cx->paper->n; i++) {
        if (strcmp(cx->paper->rows[i].table, paper_table)) continue;
        int seen = 0;
        for (int k = 0; k < np; k++) seen |= !strcmp(pm[k], cx->paper->rows[i].method);
        if (!seen && np < 64) pm[np++] = cx->paper->rows[i].method;
    }
    if (nd == 0 || nm + np == 0) return 0;
    static const char *const names[3] = {"table_other", "table1_industrial", "table2_medical"},
                             *const labels[3] = {"tab:other", "tab:industrial", "tab:medical"},
                             *const kinds[3] = {"datasets outside the paper's tables", "industrial datasets",
                                                "medical datasets"},
                             *const titles[3] = {"Other datasets", "Table 1", "Table 2"};
    Table *t = table_new(names[family + 1], nd + 1, nm + np, 2);
    t->label = strdup(labels[family + 1]);
    t->corner = strdup("Dataset");
    t->value_names[0] = "image_auroc";
    t->value_names[1] = "pixel_auroc";
    for (int m = 0; m < nm; m++) t->col_names[m] = strdup(ms[m].label);
    for (int p = 0; p < np; p++) {
        char name[300];
        snprintf(name, sizeof name, "%s (paper)", pm[p]);
        t->col_names[nm + p] = strdup(name);
    }
    for (int d = 0; d < nd; d++) {
        t->row_names[d] = strdup(dataset_display_name(ds[d]));
        for (int m = 0; m < nm; m++) {
            aggregate(cx, "main", ms[m].label, ds[d], NULL, M_IMAGE_AUROC, table_cell(t, d, m), 0);
            aggregate(cx, "main", ms[m].label, ds[d], NULL, M_PIXEL_AUROC, table_cell(t, d, m), 1);
        }
        for (int p = 0; p < np; p++) {
            const PaperRow *row = paper_find(cx->paper, paper_table, ds[d], pm[p]);
            Cell *c = table_cell(t, d, nm + p);
            for (int j = 0; row && j < 2; j++)
                if (row->has[j * 2]) { c->has[j] = 1; c->v[j] = row->v[j * 2]; }
        }
    }
    t->row_names[nd] = strdup("Mean");
    t->row_group[nd] = 1;
    mean_row(t, nd, 0, nd);
    table_bold_rows(t);
    char *train = trained_on(cx, "main");
    char cap[2048];
    snprintf(cap, sizeof cap,
             "Zero-shot anomaly detection on %s: image-level AUROC / pixel-level AUROC (%%), "
             "each the unweighted mean over the dataset's classes%s%s. Best per row in bold; Mean only where a "
             "column has every dataset; mean±sd over seeds where several runs share a method.",
             kinds[family + 1], *train ? "; auxiliary training on " : "", train);
    free(train);
    t->caption = strdup(cap);
    t->title = strdup(titles[family + 1]);
    StrBuf note = {0};
    if (np) paper_sources_note(cx, paper_table, &note);
    kb_note(cx, ms, nm, ds, nd, &note);
    t->note = note.s;
    int rc = write_table(cx, t);
    table_free(t);
    return rc;
}

// Table 3: ablation runs x datasets.
static int ablation_table(Ctx *cx) {
    Method ms[256];
    int nm = collect_methods(cx, "ablation", NULL, ms);
    const char *ds[256];
    int nd = collect_datasets(cx, "ablation", -2, NULL, ds);
    if (nm == 0 || nd == 0) return 0;
    Table *t = table_new("table3_ablation", nm, nd + 1, 2);
    t->label = strdup("tab:ablation");
    t->corner = strdup("Variant");
    t->value_names[0] = "image_auroc";
    t->value_names[1] = "pixel_auroc";
    for (int d = 0; d < nd; d++) t->col_names[d] = strdup(dataset_display_name(ds[d]));
    t->col_names[nd] = strdup("Mean");
    for (int m = 0; m < nm; m++) {
        t->row_names[m] = strdup(ms[m].label);
        for (int d = 0; d < nd; d++) {
            aggregate(cx, "ablation", ms[m].label, ds[d], NULL, M_IMAGE_AUROC, table_cell(t, m, d), 0);
            aggregate(cx, "ablation", ms[m].label, ds[d], NULL, M_PIXEL_AUROC, table_cell(t, m, d), 1);
        }
        for (int j = 0; j < 2; j++) {
            double s = 0;
            int all = 1;
            for (int d = 0; d < nd; d++) {
                Cell *x = table_cell(t, m, d);
                if (!x->has[j]) all = 0;
                else s += x->v[j];
            }
            if (all) { table_cell(t, m, nd)->has[j] = 1; table_cell(t, m, nd)->v[j] = s / nd; }
        }
    }
    table_bold_columns(t);
    t->title = strdup("Table 3");
    t->caption = strdup("Ablation: image-level AUROC / pixel-level AUROC (%) per dataset, the mean over "
                        "datasets last. Best per column in bold.");
    int rc = write_table(cx, t);
    table_free(t);
    return rc;
}

static const char *aupro_description(const char *variant) {
    if (!strcmp(variant, "mvtec")) return "the MVTec definition (exact thresholds, mean PRO integrated to FPR 0.3, divided by 0.3)";
    if (!strcmp(variant, "anomalyclip")) return "AnomalyCLIP's (200 thresholds, FPR below 0.3 rescaled to [0,1])";
    if (!strcmp(variant, "anomalyclip-f32"))
        return "AnomalyCLIP's (200 thresholds compared in float32, FPR below 0.3 rescaled to [0,1])";
    return variant;
}

// Table 4: every metric, per dataset and method.
static int metrics_table(Ctx *cx) {
    const char *ds[256];
    int nd = collect_datasets(cx, NULL, -2, NULL, ds);
    Method ms[256];
    int rows = 0;
    for (int d = 0; d < nd; d++) rows += collect_methods(cx, NULL, ds[d], ms);
    if (rows == 0) return 0;
    Table *t = table_new("table4_metrics", rows, N_METRICS, 1);
    t->label = strdup("tab:metrics");
    t->corner = strdup("Dataset / method");
    t->value_names[0] = "value";
    static const char *heads[N_METRICS] = {"I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AUPRO", "P-AP", "P-F1max"};
    for (int k = 0; k < N_METRICS; k++) t->col_names[k] = strdup(heads[k]);
    char variants[512] = "";
    int r = 0;
    for (int d = 0; d < nd; d++) {
        int nm = collect_methods(cx, NULL, ds[d], ms);
        for (int m = 0; m < nm; m++, r++) {
            char name[600];
            snprintf(name, sizeof name, "%s / %s", dataset_display_name(ds[d]), ms[m].label);
            t->row_names[r] = strdup(name);
            t->row_group[r] = d;
            for (int k = 0; k < N_METRICS; k++) aggregate(cx, NULL, ms[m].label, ds[d], NULL, k, table_cell(t, r, k), 0);
        }
    }
    for (int i = 0; i < cx->n_runs; i++) {
        const char *v = cx->runs[i].aupro_variant;
        if (*v && !strstr(variants, aupro_description(v)))
            snprintf(variants + strlen(variants), sizeof variants - strlen(variants), "%s%s", *variants ? "; " : "",
                     aupro_description(v));
    }
    table_bold_columns(t);
    char cap[2048];
    snprintf(cap, sizeof cap,
             "All metrics (%%): image-level (I-) AUROC, AP, F1-max and pixel-level (P-) AUROC, AUPRO, AP, "
             "F1-max; F1-max is the maximum F1 over thresholds (no threshold tuned on test data). AUPRO: %s. "
             "Best per dataset and column in bold.",
             *variants ? variants : "variant not recorded");
    t->caption = strdup(cap);
    t->title = strdup("Table 4");
    int rc = write_table(cx, t);
    table_free(t);
    return rc;
}

// per_class_<dataset>: classes x methods.
static int per_class_tables(Ctx *cx) {
    const char *ds[256];
    int nd = collect_datasets(cx, NULL, -2, NULL, ds);
    char *all_tex = strdup("");  // every per-class LaTeX table in one file, for paper/main.tex
    for (int d = 0; d < nd; d++) {
        Method ms[256];
        int nm = collect_methods(cx, NULL, ds[d], ms);
        const char **classes = NULL;
        int nc = 0;
        for (int i = 0; i < cx->n_runs; i++) {
            const DatasetResult *dr = run_result_dataset(&cx->runs[i], ds[d]);
            for (int q = 0; dr && q < dr->n_classes; q++) {
                int seen = 0;
                for (int k = 0; k < nc; k++) seen |= !strcmp(classes[k], dr->classes[q].name);
                if (seen) continue;
                classes = realloc(classes, sizeof *classes * (size_t)(nc + 1));
                classes[nc++] = dr->classes[q].name;
            }
        }
        if (nc == 0) { free(classes); continue; }
        for (int a = 1; a < nc; a++)  // insertion sort by name
            for (int b = a; b > 0 && strcmp(classes[b - 1], classes[b]) > 0; b--) {
                const char *tmp = classes[b];
                classes[b] = classes[b - 1];
                classes[b - 1] = tmp;
            }
        char name[300];
        snprintf(name, sizeof name, "per_class_%s", ds[d]);
        Table *t = table_new(name, nc + 1, nm, 2);
        snprintf(name, sizeof name, "tab:per-class-%s", ds[d]);
        t->label = strdup(name);
        t->corner = strdup("Class");
        t->value_names[0] = "image_auroc";
        t->value_names[1] = "pixel_auroc";
        for (int m = 0; m < nm; m++) t->col_names[m] = strdup(ms[m].label);
        for (int c = 0; c < nc; c++) {
            t->row_names[c] = strdup(classes[c]);
            for (int m = 0; m < nm; m++) {
                aggregate(cx, NULL, ms[m].label, ds[d], classes[c], M_IMAGE_AUROC, table_cell(t, c, m), 0);
                aggregate(cx, NULL, ms[m].label, ds[d], classes[c], M_PIXEL_AUROC, table_cell(t, c, m), 1);
            }
        }
        t->row_names[nc] = strdup("Mean");
        t->row_group[nc] = 1;
        for (int m = 0; m < nm; m++) {
            aggregate(cx, NULL, ms[m].label, ds[d], NULL, M_IMAGE_AUROC, table_cell(t, nc, m), 0);
            aggregate(cx, NULL, ms[m].label, ds[d], NULL, M_PIXEL_AUROC, table_cell(t, nc, m), 1);
        }
        table_bold_rows(t);
        char cap[512];
        snprintf(cap, sizeof cap, "Per-class results on %s: image-level AUROC / pixel-level AUROC (%%). Best per row in bold.",
                 dataset_display_name(ds[d]));
        t->caption = strdup(cap);
        int rc = write_table(cx, t);
        char *tex = table_latex(t, NULL);
        all_tex = realloc(all_tex, strlen(all_tex) + strlen(tex) + 2);
        strcat(strcat(all_tex, tex), "\n");
        free(tex);
        table_free(t);
        free(classes);
        if (rc < 0) { free(all_tex); return rc; }
    }
    int rc = 0;
    if (*all_tex) {
        char *path = fs_join(cx->out_dir, "per_class_all.tex");
        size_t len = strlen(cx->header) + strlen(all_tex) + 8;
        char *text = malloc(len);
        snprintf(text, len, "%% %s\n%s", cx->header, all_tex);
        rc = fs_write_atomic(path, text, strlen(text));
        if (rc == 0) cx->n_files++;
        free(text);
        free(path);
    }
    free(all_tex);
    return rc;
}

static int by_label_then_hash(const void *a, const void *b) {
    const RunResult *x = a, *y = b;
    int c = strcmp(x->label, y->label);
    return c ? c : strcmp(x->metrics_sha256, y->metrics_sha256);
}

int tables_write(RunResult *runs, int n_runs, const PaperNumbers *paper, const char *out_dir, int *n_files) {
    // Runs that share a label but not a config (beyond the seed) are told apart, never averaged together.
    if (runs_split_by_config(runs, n_runs) < 0) return -1;
    // Sorted by content, not by path: the same runs give the same bytes wherever they are.
    qsort(runs, (size_t)n_runs, sizeof *runs, by_label_then_hash);
    Ctx cx = {.runs = runs, .n_runs = n_runs, .paper = paper, .out_dir = out_dir};
    Sha256 h;
    sha256_init(&h);
    for (int i = 0; i < n_runs; i++) sha256_update(&h, runs[i].metrics_sha256, 64);
    char hex[65];
    sha256_final_hex(&h, hex);
    snprintf(cx.header, sizeof cx.header, "generated by kanoclip tables from %d run%s (metrics sha256 %.16s%s%.16s); do not edit",
             n_runs, n_runs == 1 ? "" : "s", hex, paper ? ", paper numbers sha256 " : "", paper ? paper->sha256 : "");
    if (fs_mkdirs(out_dir) < 0) return -1;
    int rc = family_table(&cx, 0);
    if (rc == 0) rc = family_table(&cx, 1);
    if (rc == 0) rc = family_table(&cx, -1);
    if (rc == 0) rc = ablation_table(&cx);
    if (rc == 0) rc = table3_paper_write(runs, n_runs, paper, out_dir, cx.header, &cx.n_files);
    if (rc == 0) rc = metrics_table(&cx);
    if (rc == 0) rc = per_class_tables(&cx);
    if (n_files) *n_files = cx.n_files;
    return rc;
}
