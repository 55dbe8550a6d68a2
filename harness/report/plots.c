// Figures with gnuplot (plots.h): data files written here, rendering by the committed scripts.
#define _GNU_SOURCE
#include "harness/report/plots.h"
#include "harness/report/tables.h"
#include "harness/report/tables_render.h"
#include "common/strbuf.h"
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
    // name is a safe file stem (figure_stem); the caption is plain text, so escaped for LaTeX
    StrBuf cap = {0};
    tex_escape(&cap, caption);
    fprintf(cx->tex, "\\begin{figure}[H]\n\\centering\n\\includegraphics[width=0.75\\linewidth]{\\figdir/%s.pdf}\n"
                     "\\caption{%s}\n\\label{fig:%s}\n\\end{figure}\n\n", name, cap.s, name);
    free(cap.s);
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

// A figure's file stem from names that come from configs and folders ("loss_<run folder>", "roc_<dataset>"):
// letters, digits, '.', '_' and '-' kept, anything else '-', so that the file name and \label{fig:...} need no
// escaping in LaTeX (nor quoting in a shell).
static void figure_stem(char *name) {
    for (unsigned char *p = (unsigned char *)name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            *p = '-';
}

// Labels drawn in a figure (class names, method labels, titles) are at most this many characters: a longer one
// keeps its start and end around "…", so that tick labels and the key stay inside the picture.
enum { PLOT_LABEL_MAX = 28, PLOT_LABEL_HEAD = 18 };

// The next UTF-8 code point of s (advancing *s); a malformed byte counts as itself.
static unsigned next_cp(const unsigned char **s) {
    const unsigned char *p = *s;
    unsigned c = *p, cp = c;
    int len = 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) { len = 1; cp = c; break; }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    *s = p + len;
    return cp;
}

// 1 when an installed font has every non-ASCII character of s (fontconfig's fc-list; cairo falls back to any
// installed font for a missing glyph), 0 when none has them, so gnuplot would draw empty boxes. Without
// fc-list it cannot tell and answers 1.
static int fonts_cover(const char *s) {
    StrBuf q = {0};
    strbuf_printf(&q, "fc-list -q ':charset=");
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned cp = next_cp(&p);
        if (cp >= 0x80) strbuf_printf(&q, "%s%x", n++ ? " " : "", cp);
    }
    strbuf_printf(&q, "' >/dev/null 2>&1");
    int covered = 1;
    if (n) {
        int st = system(q.s);
        covered = !(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    }
    free(q.s);
    return covered;
}

// What a figure shows for label s: shortened to PLOT_LABEL_MAX characters; characters no installed font can draw
// (CJK class names on a machine without a CJK font) written as U+XXXX, with a note once per label saying so.
static char *plot_label(const char *s) {
    StrBuf b = {0};
    int uncovered = !fonts_cover(s);
    if (uncovered) {
        fprintf(stderr, "kanoclip plots: no installed font draws the characters of '%s'; the figures write them as "
                        "U+XXXX (install a font that has them, e.g. apt-get install fonts-noto-cjk)\n", s);
    }
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        const unsigned char *start = p;
        unsigned cp = next_cp(&p);
        if (uncovered && cp >= 0x80) strbuf_printf(&b, "U+%04X", cp);
        else strbuf_put(&b, (const char *)start, (size_t)(p - start));
    }
    char *full = strbuf_take(&b);
    int n_cp = 0;
    for (const unsigned char *p = (const unsigned char *)full; *p; n_cp++) next_cp(&p);
    if (n_cp <= PLOT_LABEL_MAX) return full;
    // head ... tail, cut at code points
    int tail = PLOT_LABEL_MAX - PLOT_LABEL_HEAD - 1, i = 0;
    for (const unsigned char *p = (const unsigned char *)full; *p; i++) {
        const unsigned char *start = p;
        next_cp(&p);
        if (i < PLOT_LABEL_HEAD || i >= n_cp - tail) strbuf_put(&b, (const char *)start, (size_t)(p - start));
        if (i == PLOT_LABEL_HEAD) strbuf_put(&b, "\xe2\x80\xa6", 3); // …
    }
    free(full);
    return strbuf_take(&b);
}

// A label inside a gnuplot data file header ("..."), as plot_label shows it, then suffix (not shortened; may be
// ""): no double quotes.
static void header_label_with(FILE *f, const char *s, const char *suffix) {
    char *shown = plot_label(s);
    fputc('"', f);
    for (const char *p = shown; *p; p++) fputc(*p == '"' ? '\'' : *p, f);
    for (const char *p = suffix; *p; p++) fputc(*p == '"' ? '\'' : *p, f);
    fputc('"', f);
    free(shown);
}
static void header_label(FILE *f, const char *s) { header_label_with(f, s, ""); }

// A gnuplot string variable holding a title, as plot_label shows it.
static void gp_label(FILE *f, const char *s) {
    char *shown = plot_label(s);
    gp_quote(f, shown);
    free(shown);
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
        figure_stem(name);
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
                char *save, *line = strtok_r(text, "\n", &save);
                if (!line || strncmp(line, "fpr,tpr", 7)) {
                    free(text); free(csv); data_discard(&df); free(dat);
                    return err_set("%s/%s: expected the header fpr,tpr", runs[i].dir, csv_name);
                }
                // The curve pools the images of every class; the tables report the mean of per-class AUROCs.
                // The key names both, so that a pooled area beside a different headline number is not a puzzle.
                StrBuf pts = {0};
                double auc = 0, px = 0, py = 0;
                int first = 1;
                for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                    double fpr, tpr;
                    if (sscanf(line, "%lf,%lf", &fpr, &tpr) != 2) continue;
                    strbuf_printf(&pts, "%.6f %.6f\n", fpr, tpr);
                    if (!first) auc += (fpr - px) * (tpr + py) / 2;
                    px = fpr, py = tpr, first = 0;
                }
                const DatasetResult *dr = run_result_dataset(&runs[i], ds[d]);
                char suffix[96];
                if (dr && dr->m.has[M_IMAGE_AUROC])
                    snprintf(suffix, sizeof suffix, ": pooled AUC %.1f, class mean %.1f", auc * 100,
                             dr->m.v[M_IMAGE_AUROC] * 100);
                else snprintf(suffix, sizeof suffix, ": pooled AUC %.1f", auc * 100);
                if (blocks) fprintf(f, "\n\n");
                fprintf(f, "\"fpr\" ");
                header_label_with(f, label, suffix);
                fputc('\n', f);
                if (pts.len) fputs(pts.s, f);
                free(pts.s);
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
            gp_label(v, dataset_display_name(ds[d]));
            fprintf(v, ";");
            fclose(v);
            char caption[600];
            snprintf(caption, sizeof caption,
                     "Image-level ROC curves on %s, each pooled over the images of all classes. The key gives the "
                     "area under each pooled curve and the mean of per-class AUROCs (%%), the number the tables "
                     "report; the two differ when classes score on different scales.",
                     dataset_display_name(ds[d]));
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
        figure_stem(name);
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
        gp_label(v, dataset_display_name(ds[d]));
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
        figure_stem(name);
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
        gp_label(v, label);
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
