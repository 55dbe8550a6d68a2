// Table 3 of the KAnoCLIP paper in its layout (see table3.h).
#include "harness/report/table3.h"
#include "harness/report/cell_value.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The paper's rows: modules switched on cumulatively (kanoclip-components.md; docs/table3.md says what each
// config switches).
static const char *const ROW_LABEL[5] = {"none", "KnPL", "+CLIP-VV", "+Bi-CMCI", "+Conv-Adapter"};
static const char *const MODULE[4] = {"KnPL", "CLIP-VV", "Bi-CMCI", "Conv-Adapter"};
static const char *const PAPER_DATASET[2] = {"mvtec", "visa"};
enum { MAX_DATASETS = 8 };

// Metric k of row `row` (report.order row + 1) on dataset ds over its runs (cell_value.h): the mean in percent,
// with a 95% interval where the runs have one.
static void ours(const RunResult *runs, int n_runs, int row, const char *ds, int k, CellValue *v) {
    const MetricSet **ms = malloc(sizeof *ms * (size_t)(n_runs + 1));
    const DatasetResult **dr = malloc(sizeof *dr * (size_t)(n_runs + 1));
    int n = 0;
    for (int i = 0; i < n_runs; i++) {
        if (strcmp(runs[i].table, "table3") || runs[i].order != row + 1) continue;
        const DatasetResult *d = run_result_dataset(&runs[i], ds);
        if (d) ms[n] = &d->m, dr[n++] = d;
    }
    cell_value(ms, dr, n, k, v);
    free(ms);
    free(dr);
}

// The paper's number: column 0 image AUROC, 2 pixel AUROC of PaperRow.v.
static int paper_value(const PaperNumbers *p, int row, const char *ds, int col, double *v) {
    for (int i = 0; p && i < p->n; i++) {
        const PaperRow *r = &p->rows[i];
        if (!strcmp(r->table, "ablation") && !strcmp(r->dataset, ds) && !strcmp(r->method, ROW_LABEL[row]) &&
            r->has[col]) {
            *v = r->v[col];
            return 1;
        }
    }
    return 0;
}

static void number(StrBuf *b, int has, double v, const char *none) {
    if (has) strbuf_printf(b, "%.1f", v);
    else strbuf_printf(b, "%s", none);
}

int table3_paper_write(const RunResult *runs, int n_runs, const PaperNumbers *paper, const char *out_dir,
                       const char *header, int *n_files) {
    // columns: the paper's MVTec AD and VisA, then any other dataset the table3 runs have (the demo's synthetic)
    const char *DATASET[MAX_DATASETS] = {PAPER_DATASET[0], PAPER_DATASET[1]};
    int nd = 2, any = 0;
    for (int i = 0; i < n_runs; i++) {
        if (strcmp(runs[i].table, "table3")) continue;
        any = 1;
        for (int d = 0; d < runs[i].n_datasets && nd < MAX_DATASETS; d++) {
            int seen = 0;
            for (int k = 0; k < nd; k++) seen |= !strcmp(DATASET[k], runs[i].datasets[d].name);
            if (!seen) DATASET[nd++] = runs[i].datasets[d].name;
        }
    }
    if (!any) return 0;
    // intervals: shown when any of our cells has one (the layout without them stays as it was)
    int with_ci = 0;
    for (int r = 0; r < 5; r++)
        for (int d = 0; d < nd; d++)
            for (int k = 0; k < 2; k++) {
                CellValue v;
                ours(runs, n_runs, r, DATASET[d], k ? M_PIXEL_AUROC : M_IMAGE_AUROC, &v);
                with_ci |= v.has_ci;
            }
    StrBuf md = {0}, csv = {0};
    strbuf_printf(&md, "<!-- %s -->\n\n### Table 3 (as the paper runs it)\n\n|", header);
    strbuf_printf(&csv, "row,knpl,clip_vv,bicmci,conv_adapter");
    for (int m = 0; m < 4; m++) strbuf_printf(&md, " %s |", MODULE[m]);
    for (int d = 0; d < nd; d++) {
        const char *name = dataset_display_name(DATASET[d]);
        strbuf_printf(&md, " %s image | (paper) | %s pixel | (paper) |", name, name);
        for (int k = 0; k < 2; k++) {
            const char *lvl = k ? "pixel" : "image";
            strbuf_printf(&csv, ",%s_%s_auroc", DATASET[d], lvl);
            if (with_ci) strbuf_printf(&csv, ",%s_%s_auroc_ci_low,%s_%s_auroc_ci_high", DATASET[d], lvl, DATASET[d], lvl);
            strbuf_printf(&csv, ",%s_%s_auroc_paper", DATASET[d], lvl);
        }
    }
    strbuf_printf(&md, "\n|");
    strbuf_printf(&csv, "\n");
    for (int c = 0; c < 4 + 4 * nd; c++) strbuf_printf(&md, c < 4 ? ":-:|" : "--:|");
    strbuf_printf(&md, "\n");
    for (int r = 0; r < 5; r++) {
        strbuf_printf(&md, "|");
        strbuf_printf(&csv, "%s", ROW_LABEL[r]);
        for (int m = 0; m < 4; m++) {
            strbuf_printf(&md, " %s |", m < r ? "✓" : "");
            strbuf_printf(&csv, ",%d", m < r);
        }
        for (int d = 0; d < nd; d++)
            for (int k = 0; k < 2; k++) {
                double p = 0;
                CellValue v;
                ours(runs, n_runs, r, DATASET[d], k ? M_PIXEL_AUROC : M_IMAGE_AUROC, &v);
                int hp = paper_value(paper, r, DATASET[d], k ? 2 : 0, &p);
                strbuf_printf(&md, " ");
                number(&md, v.n > 0, v.v, "–");
                if (v.has_ci) strbuf_printf(&md, " [%.1f, %.1f]", v.lo, v.hi);
                strbuf_printf(&md, " | ");
                number(&md, hp, p, "–");
                strbuf_printf(&md, " |");
                strbuf_printf(&csv, ",");
                if (v.n) strbuf_printf(&csv, "%.2f", v.v);
                if (with_ci && v.has_ci) strbuf_printf(&csv, ",%.2f,%.2f", v.lo, v.hi);
                else if (with_ci) strbuf_printf(&csv, ",,");
                strbuf_printf(&csv, ",");
                if (hp) strbuf_printf(&csv, "%.1f", p);
            }
        strbuf_printf(&md, "\n");
        strbuf_printf(&csv, "\n");
    }
    strbuf_printf(&md, "\nImage-level / pixel-level AUROC (%%); MVTec AD trained on VisA's test split, VisA on MVTec "
                       "AD's (the paper's protocol). Modules added cumulatively: row 1 is CLIP with the fixed prompts "
                       "\"a photo of a normal [class].\" / \"a photo of an abnormal [class].\". (paper): KAnoCLIP "
                       "paper, Table 3.\n");
    if (with_ci)
        strbuf_printf(&md, "\n[low, high]: 95%% bootstrap interval (eval.bootstrap; images resampled within each class, "
                           "stratified by label, the pixels of an image together; for several seeds, of their mean, "
                           "paired by resample).\n");
    int rc = 0;
    const char *ext[2] = {"md", "csv"};
    StrBuf *text[2] = {&md, &csv};
    for (int i = 0; i < 2 && rc == 0; i++) {
        char name[64];
        snprintf(name, sizeof name, "table3_paper.%s", ext[i]);
        char *path = fs_join(out_dir, name);
        rc = fs_write_atomic(path, text[i]->s ? text[i]->s : "", text[i]->len);
        free(path);
        if (rc == 0 && n_files) (*n_files)++;
    }
    free(strbuf_take(&md));
    free(strbuf_take(&csv));
    return rc;
}
