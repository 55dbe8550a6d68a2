// Figures with gnuplot (plots.h): data files written here, rendering by the committed scripts.
#define _GNU_SOURCE
#include "harness/report/plots.h"
#include "harness/report/tables.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *plots_find_gnuplot(void) {
    static char found[4096];
    const char *path = getenv("PATH");
    if (!path) return NULL;
    char *copy = strdup(path), *save;
    const char *hit = NULL;
    for (char *d = strtok_r(copy, ":", &save); d && !hit; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/gnuplot", *d ? d : ".");
        if (access(found, X_OK) == 0) hit = found;
    }
    free(copy);
    return hit;
}

const char *plots_scripts_dir(void) {
    static char dir[4096];
    const char *env = getenv("KANOCLIP_PLOTS");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s/", env);
        return dir;
    }
    if (fs_find_repo_file("plots/roc.gp", dir, sizeof dir) == 0) {
        strrchr(dir, '/')[1] = '\0'; // the folder, with its '/'
        return dir;
    }
    err_set("plots/roc.gp not found (run from the repository root or set KANOCLIP_PLOTS)");
    return NULL;
}

typedef struct {
    const char *out, *gnuplot, *scripts;
    char *figures_tex;  // accumulated
    size_t tex_len;
    FILE *tex;
    int n_figures;
} Ctx;

// gnuplot string literal: single quotes, '' for a quote.
static void gp_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

// Runs gnuplot on script with `vars` (already "a=1; b='x'; ") for png and pdf.
static int render(Ctx *cx, const char *script, const char *name, const char *vars, const char *caption) {
    static const char *terms[2] = {"pngcairo", "pdfcairo"}, *exts[2] = {"png", "pdf"};
    for (int t = 0; t < 2; t++) {
        char *e = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&e, &len);
        char leaf[512];
        snprintf(leaf, sizeof leaf, "%s.%s", name, exts[t]);
        char *final = fs_join(cx->out, leaf), outfile[4300];
        snprintf(outfile, sizeof outfile, "%s.partial", final);  // renamed once gnuplot has succeeded
        fprintf(f, "%s term=", vars);
        gp_quote(f, terms[t]);
        fprintf(f, "; outfile=");
        gp_quote(f, outfile);
        fprintf(f, "; dir=");
        gp_quote(f, cx->scripts);
        fclose(f);
        char script_path[4200];
        snprintf(script_path, sizeof script_path, "%s%s", cx->scripts, script);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            execl(cx->gnuplot, "gnuplot", "-e", e, script_path, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        free(e);
        int ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs_exists(outfile) &&
                 rename(outfile, final) == 0;
        if (!ok) unlink(outfile);
        free(final);
        if (!ok) return err_set("gnuplot %s failed for %s.%s (its message is above)", script, name, exts[t]);
    }
    fprintf(cx->tex, "\\begin{figure}[H]\n\\centering\n\\includegraphics[width=0.75\\linewidth]{\\figdir/%s.pdf}\n"
                     "\\caption{%s}\n\\end{figure}\n\n", name, caption);
    cx->n_figures++;
    printf("%s/%s.png, .pdf\n", cx->out, name);
    return 0;
}

// Data files are built in memory and written atomically (temporary file + rename): a failed or killed run never
// leaves a half-written file where the last good one was.
typedef struct { FILE *f; char *buf; size_t len; } DataFile;
static FILE *data_open(DataFile *d) {
    d->buf = NULL;
    d->len = 0;
    return d->f = open_memstream(&d->buf, &d->len);
}
static void data_discard(DataFile *d) { fclose(d->f); free(d->buf); }
static int data_commit(DataFile *d, const char *path) {
    fclose(d->f);
    int rc = fs_write_atomic(path, d->buf, d->len);
    free(d->buf);
    return rc;
}

static char *data_path(Ctx *cx, const char *name) {
    char leaf[512];
    snprintf(leaf, sizeof leaf, "data/%s", name);
    return fs_join(cx->out, leaf);
}

// A label safe inside a gnuplot data file header ("..."): no double quotes.
static void header_label(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) fputc(*s == '"' ? '\'' : *s, f);
    fputc('"', f);
}

// A run's display name: its label, with the seed when several runs share the label.
static void run_name(const RunResult *runs, int n, int i, char *buf, size_t size) {
    int shared = 0;
    for (int k = 0; k < n; k++) shared += !strcmp(runs[k].label, runs[i].label);
    if (shared > 1) snprintf(buf, size, "%s (seed %ld)", runs[i].label, runs[i].seed);
    else snprintf(buf, size, "%s", runs[i].label);
}

static int datasets_of(RunResult *runs, int n, const char **out) {
    int nd = 0;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < runs[i].n_datasets; d++) {
            int seen = 0;
            for (int k = 0; k < nd; k++) seen |= !strcmp(out[k], runs[i].datasets[d].name);
            if (!seen && nd < 256) out[nd++] = runs[i].datasets[d].name;
        }
    for (int a = 1; a < nd; a++)
        for (int b = a; b > 0 && strcmp(out[b - 1], out[b]) > 0; b--) {
            const char *x = out[b];
            out[b] = out[b - 1];
            out[b - 1] = x;
        }
    return nd;
}

static int roc_figures(Ctx *cx, RunResult *runs, int n, const char **ds, int nd) {
    for (int d = 0; d < nd; d++) {
        char name[300], csv_name[300];
        snprintf(name, sizeof name, "roc_%s", ds[d]);
        snprintf(csv_name, sizeof csv_name, "roc_%s.csv", ds[d]);
        char leaf[320];
        snprintf(leaf, sizeof leaf, "%s.dat", name);
        char *dat = data_path(cx, leaf);
        DataFile df;
        FILE *f = data_open(&df);
        if (!f) { err_set("%s: out of memory", dat); free(dat); return -1; }
        int blocks = 0;
        for (int i = 0; i < n; i++) {
            char *csv = fs_join(runs[i].dir, csv_name);
            char *text = fs_exists(csv) ? fs_read_file(csv, NULL) : NULL;
            if (text) {
                char label[300];
                run_name(runs, n, i, label, sizeof label);
                if (blocks) fprintf(f, "\n\n");
                fprintf(f, "\"fpr\" ");
                header_label(f, label);
                fputc('\n', f);
                char *save, *line = strtok_r(text, "\n", &save);
                if (!line || strncmp(line, "fpr,tpr", 7)) {
                    free(text); free(csv); data_discard(&df); free(dat);
                    return err_set("%s/%s: expected the header fpr,tpr", runs[i].dir, csv_name);
                }
                for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                    double fpr, tpr;
                    if (sscanf(line, "%lf,%lf", &fpr, &tpr) == 2) fprintf(f, "%.6f %.6f\n", fpr, tpr);
                }
                blocks++;
                free(text);
            }
            free(csv);
        }
        if (data_commit(&df, dat) < 0) { free(dat); return -1; }
        if (blocks) {
            char *vars = NULL;
            size_t len;
            FILE *v = open_memstream(&vars, &len);
            fprintf(v, "datafile=");
            gp_quote(v, dat);
            fprintf(v, "; nblocks=%d; title_text=", blocks);
            gp_quote(v, dataset_display_name(ds[d]));
            fprintf(v, ";");
            fclose(v);
            char caption[400];
            snprintf(caption, sizeof caption, "Image-level ROC curves on %s.", dataset_display_name(ds[d]));
            int rc = render(cx, "roc.gp", name, vars, caption);
            free(vars);
            if (rc < 0) { free(dat); return rc; }
        } else {
            unlink(dat);
        }
        free(dat);
    }
    return 0;
}

static int per_class_figures(Ctx *cx, RunResult *runs, int n, const char **ds, int nd) {
    for (int d = 0; d < nd; d++) {
        // methods (labels) with per-class rows for this dataset, and the union of classes
        const char *labels[256], *classes[1024];
        int nl = 0, nc = 0;
        for (int i = 0; i < n; i++) {
            const DatasetResult *dr = run_result_dataset(&runs[i], ds[d]);
            if (!dr || !dr->n_classes) continue;
            int seen = 0;
            for (int k = 0; k < nl; k++) seen |= !strcmp(labels[k], runs[i].label);
            if (!seen && nl < 256) labels[nl++] = runs[i].label;
            for (int c = 0; c < dr->n_classes; c++) {
                int s2 = 0;
                for (int k = 0; k < nc; k++) s2 |= !strcmp(classes[k], dr->classes[c].name);
                if (!s2 && nc < 1024) classes[nc++] = dr->classes[c].name;
            }
        }
        if (!nl) continue;
        for (int a = 1; a < nc; a++)
            for (int b = a; b > 0 && strcmp(classes[b - 1], classes[b]) > 0; b--) {
                const char *x = classes[b];
                classes[b] = classes[b - 1];
                classes[b - 1] = x;
            }
        for (int a = 1; a < nl; a++)
            for (int b = a; b > 0 && strcmp(labels[b - 1], labels[b]) > 0; b--) {
                const char *x = labels[b];
                labels[b] = labels[b - 1];
                labels[b - 1] = x;
            }
        char name[300], leaf[320];
        snprintf(name, sizeof name, "per_class_%s", ds[d]);
        snprintf(leaf, sizeof leaf, "%s.dat", name);
        char *dat = data_path(cx, leaf);
        DataFile df;
        FILE *f = data_open(&df);
        if (!f) { err_set("%s: out of memory", dat); free(dat); return -1; }
        fprintf(f, "\"class\"");
        for (int l = 0; l < nl; l++) { fputc(' ', f); header_label(f, labels[l]); }
        fputc('\n', f);
        for (int c = 0; c < nc; c++) {
            header_label(f, classes[c]);
            for (int l = 0; l < nl; l++) {
                double s = 0;
                int cnt = 0;
                for (int i = 0; i < n; i++) {
                    if (strcmp(runs[i].label, labels[l])) continue;
                    const DatasetResult *dr = run_result_dataset(&runs[i], ds[d]);
                    for (int q = 0; dr && q < dr->n_classes; q++)
                        if (!strcmp(dr->classes[q].name, classes[c]) && dr->classes[q].m.has[M_IMAGE_AUROC]) {
                            s += dr->classes[q].m.v[M_IMAGE_AUROC] * 100;
                            cnt++;
                        }
                }
                if (cnt) fprintf(f, " %.4f", s / cnt);
                else fprintf(f, " ?");
            }
            fputc('\n', f);
        }
        if (data_commit(&df, dat) < 0) { free(dat); return -1; }
        char *vars = NULL;
        size_t len;
        FILE *v = open_memstream(&vars, &len);
        fprintf(v, "datafile=");
        gp_quote(v, dat);
        fprintf(v, "; ncols=%d; title_text=", nl + 1);
        gp_quote(v, dataset_display_name(ds[d]));
        fprintf(v, "; ylabel_text='Image AUROC (%%)';");
        fclose(v);
        char caption[400];
        snprintf(caption, sizeof caption, "Per-class image-level AUROC on %s.", dataset_display_name(ds[d]));
        int rc = render(cx, "per_class.gp", name, vars, caption);
        free(vars);
        free(dat);
        if (rc < 0) return rc;
    }
    return 0;
}

static int ablation_figure(Ctx *cx, RunResult *runs, int n) {
    const char *labels[256];
    int nl = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(runs[i].table, "ablation")) continue;
        int seen = 0;
        for (int k = 0; k < nl; k++) seen |= !strcmp(labels[k], runs[i].label);
        if (!seen && nl < 256) labels[nl++] = runs[i].label;
    }
    if (!nl) return 0;
    // order as in the ablation table: report.order, then label
    for (int a = 1; a < nl; a++)
        for (int b = a; b > 0; b--) {
            int oa = 0, ob = 0;
            for (int i = 0; i < n; i++) {
                if (!strcmp(runs[i].label, labels[b - 1])) oa = runs[i].order;
                if (!strcmp(runs[i].label, labels[b])) ob = runs[i].order;
            }
            if (oa < ob || (oa == ob && strcmp(labels[b - 1], labels[b]) <= 0)) break;
            const char *x = labels[b];
            labels[b] = labels[b - 1];
            labels[b - 1] = x;
        }
    char *dat = data_path(cx, "ablation.dat");
    DataFile df;
    FILE *f = data_open(&df);
    if (!f) { err_set("%s: out of memory", dat); free(dat); return -1; }
    fprintf(f, "\"variant\" \"Image AUROC\" \"Pixel AUROC\"\n");
    for (int l = 0; l < nl; l++) {
        header_label(f, labels[l]);
        int ks[2] = {M_IMAGE_AUROC, M_PIXEL_AUROC};
        for (int j = 0; j < 2; j++) {
            double s = 0;
            int cnt = 0;
            for (int i = 0; i < n; i++) {
                if (strcmp(runs[i].table, "ablation") || strcmp(runs[i].label, labels[l])) continue;
                for (int d = 0; d < runs[i].n_datasets; d++)
                    if (runs[i].datasets[d].m.has[ks[j]]) { s += runs[i].datasets[d].m.v[ks[j]] * 100; cnt++; }
            }
            if (cnt) fprintf(f, " %.4f", s / cnt);
            else fprintf(f, " ?");
        }
        fputc('\n', f);
    }
    if (data_commit(&df, dat) < 0) { free(dat); return -1; }
    char *vars = NULL;
    size_t len;
    FILE *v = open_memstream(&vars, &len);
    fprintf(v, "datafile=");
    gp_quote(v, dat);
    fprintf(v, ";");
    fclose(v);
    int rc = render(cx, "ablation.gp", "ablation", vars, "Ablation: mean image- and pixel-level AUROC over datasets.");
    free(vars);
    free(dat);
    return rc;
}

static int loss_figures(Ctx *cx, RunResult *runs, int n) {
    for (int i = 0; i < n; i++) {
        char *csv = fs_join(runs[i].dir, "train_log.csv");
        char *text = fs_exists(csv) ? fs_read_file(csv, NULL) : NULL;
        free(csv);
        if (!text) continue;
        int ncols = 1;
        for (char *p = text; *p && *p != '\n'; p++) ncols += *p == ',';
        if (strncmp(text, "step,epoch,", 11) || ncols < 3) {
            free(text);
            return err_set("%s/train_log.csv: expected a header step,epoch,loss_total,...", runs[i].dir);
        }
        const char *nl = strchr(text, '\n');
        if (!nl || !nl[1]) {  // a header alone: the run trained no step (train.epochs 0), there is no curve
            free(text);
            continue;
        }
        // the run folder's own name ("results/x/" and "results/x" alike)
        size_t end = strlen(runs[i].dir);
        while (end > 1 && runs[i].dir[end - 1] == '/') end--;
        size_t start = end;
        while (start > 0 && runs[i].dir[start - 1] != '/') start--;
        char name[400], leaf[420];
        snprintf(name, sizeof name, "loss_%.*s", (int)(end - start), runs[i].dir + start);
        snprintf(leaf, sizeof leaf, "%s.csv", name);
        char *dat = data_path(cx, leaf);
        int rc = fs_write_atomic(dat, text, strlen(text));
        free(text);
        if (rc < 0) { free(dat); return rc; }
        char label[300];
        run_name(runs, n, i, label, sizeof label);
        char *vars = NULL;
        size_t len;
        FILE *v = open_memstream(&vars, &len);
        fprintf(v, "datafile=");
        gp_quote(v, dat);
        fprintf(v, "; ncols=%d; title_text=", ncols);
        gp_quote(v, label);
        fprintf(v, ";");
        fclose(v);
        char caption[400];
        snprintf(caption, sizeof caption, "Training losses of %s.", label);
        rc = render(cx, "loss.gp", name, vars, caption);
        free(vars);
        free(dat);
        if (rc < 0) return rc;
    }
    return 0;
}

static int by_dir(const void *a, const void *b) { return strcmp(((const RunResult *)a)->dir, ((const RunResult *)b)->dir); }

int plots_write(RunResult *runs, int n_runs, const char *out_dir, const char *gnuplot, int *n_figures) {
    const char *scripts = plots_scripts_dir();
    if (!scripts) return -1;
    char *data = fs_join(out_dir, "data");
    int rc = fs_mkdirs(data);
    free(data);
    if (rc < 0) return rc;
    qsort(runs, (size_t)n_runs, sizeof *runs, by_dir);
    Ctx cx = {.out = out_dir, .gnuplot = gnuplot, .scripts = scripts};
    cx.tex = open_memstream(&cx.figures_tex, &cx.tex_len);
    fprintf(cx.tex, "%% generated by kanoclip plots; do not edit. \\figdir: where the PDFs are, relative to the "
                    "including document.\n\\providecommand{\\figdir}{figures}\n");
    const char *ds[256];
    int nd = datasets_of(runs, n_runs, ds);
    rc = roc_figures(&cx, runs, n_runs, ds, nd);
    if (rc == 0) rc = per_class_figures(&cx, runs, n_runs, ds, nd);
    if (rc == 0) rc = ablation_figure(&cx, runs, n_runs);
    if (rc == 0) rc = loss_figures(&cx, runs, n_runs);
    fclose(cx.tex);
    if (rc == 0) {
        char *p = fs_join(out_dir, "figures.tex");
        rc = fs_write_atomic(p, cx.figures_tex, cx.tex_len);
        free(p);
    }
    free(cx.figures_tex);
    if (n_figures) *n_figures = cx.n_figures;
    return rc;
}
