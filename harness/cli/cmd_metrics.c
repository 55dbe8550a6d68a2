// kanoclip metrics: image metrics from a label,score CSV (with a bootstrap interval of AUROC), or image and pixel
// metrics from HDF5 maps + masks (metrics_maps.h), through the same code that scores the harness's own runs.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/cli/metrics_maps.h"
#include "metrics/metrics.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kanoclip metrics (--scores FILE.csv | --maps FILE.h5 [--masks FILE.h5] [--bins N] [--range LO,HI])\n"
    "                        [--bootstrap N [--seed S] [--unstratified]] [--out FILE.json]\n"
    "  --scores      CSV with header label,score (label 0 or 1): image AUROC, AP, F1-max\n"
    "  --maps        HDF5 with maps [N,H,W] float32, masks [N,H,W] uint8, optional labels [N],\n"
    "                scores [N], classes [N] strings, has_mask [N] 0/1: pixel AUROC, AP, F1-max, AUPRO (MVTec,\n"
    "                to FPR 0.3), AUPRO as AnomalyCLIP (aupro_ac200), and image metrics, per class and mean\n"
    "                (a run's maps_<dataset>.h5 from eval.save_maps is such a file)\n"
    "  --masks       HDF5 holding masks [N,H,W] when they are not in the maps file\n"
    "  --bins        score bins of the streaming pixel histograms (default 1048576, 32 bytes each)\n"
    "  --range LO,HI the histograms' score range for every class (default: each class's own); a run's maps\n"
    "                with --range 0,1 --bins <its eval.pixel_bins, 0 = 1048576> give its metrics.json's values\n"
    "  --bootstrap   resamples of 95% percentile bootstrap intervals, stratified by label: of image AUROC\n"
    "                (--scores); of every metric, images resampled per class with their pixels (--maps)\n"
    "  --seed        seed of the bootstrap (default 0)\n"
    "  --unstratified  (--scores) resample from all items, skipping resamples with one class\n"
    "  --out         also write the JSON to this file (atomically)\n";

typedef struct {
    int n_boot, stratified;
    uint64_t seed;
} boot_opts;

// ---- CSV ---------------------------------------------------------------------------------------------

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = '\0';
    return s;
}

// Splits line at commas in place; returns the field count (at most max).
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *c = strchr(p, ',');
        if (c) *c = '\0';
        if (n < max) fields[n] = trim(p);
        n++;
        if (!c) break;
        p = c + 1;
    }
    return n < max ? n : max;
}

enum { max_fields = 64 };

// Reads label,score rows; *scores and *labels malloc'd. Errors name the file, line and field.
static int read_scores_csv(const char *path, double **scores_out, uint8_t **labels_out, size_t *n_out) {
    size_t size = 0;
    char *text = fs_read_file(path, &size);
    if (!text) return -1;
    size_t cap = 1024, n = 0;
    double *scores = malloc(cap * sizeof *scores);
    uint8_t *labels = malloc(cap);
    if (!scores || !labels) { free(text); free(scores); free(labels); return err_set("%s: out of memory", path); }
    int col_label = -1, col_score = -1, n_cols = 0, line_no = 0, rc = 0;
    char *p = text;
    while (*p && rc == 0) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        line_no++;
        char *line = p;
        p = eol ? eol + 1 : p + strlen(p);
        char *fields[max_fields];
        if (col_label < 0) { // the header
            char copy[256];
            snprintf(copy, sizeof copy, "%s", trim(line));
            if (line_no == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3; // UTF-8 byte-order mark
            n_cols = split_fields(line, fields, max_fields);
            for (int i = 0; i < n_cols; i++) {
                if (!strcmp(fields[i], "label") && col_label < 0) col_label = i;
                else if (!strcmp(fields[i], "score") && col_score < 0) col_score = i;
            }
            if (col_label < 0 || col_score < 0) {
                rc = err_set("%s:%d: expected the header 'label,score', got '%s'", path, line_no, copy);
                col_label = 0;
            }
            continue;
        }
        if (*trim(line) == '\0') continue; // blank lines (a trailing newline) carry nothing
        int nf = split_fields(line, fields, max_fields);
        int need = (col_label > col_score ? col_label : col_score) + 1;
        if (nf < need) { rc = err_set("%s:%d: expected %d fields, got %d", path, line_no, need, nf); break; }
        if (nf > n_cols) { rc = err_set("%s:%d: expected %d fields as in the header, got %d", path, line_no, n_cols, nf); break; }
        const char *lab = fields[col_label], *sc = fields[col_score];
        if (strcmp(lab, "0") != 0 && strcmp(lab, "1") != 0) {
            rc = err_set("%s:%d: field 'label': '%s' is not 0 or 1", path, line_no, lab);
            break;
        }
        char *end = NULL;
        errno = 0;
        double v = strtod(sc, &end);
        if (*sc == '\0' || *end != '\0') {
            rc = err_set("%s:%d: field 'score': '%s' is not a number", path, line_no, sc);
            break;
        }
        if (!isfinite(v)) {
            rc = err_set("%s:%d: field 'score': '%s' is not a finite number", path, line_no, sc);
            break;
        }
        if (n == cap) {
            cap *= 2;
            double *s2 = realloc(scores, cap * sizeof *scores);
            uint8_t *l2 = s2 ? realloc(labels, cap) : NULL;
            if (s2) scores = s2;
            if (l2) labels = l2;
            if (!s2 || !l2) { rc = err_set("%s: out of memory at line %d", path, line_no); break; }
        }
        scores[n] = v;
        labels[n] = (uint8_t)(lab[0] - '0');
        n++;
    }
    if (rc == 0 && col_label < 0) rc = err_set("%s:1: empty file, expected the header 'label,score'", path);
    free(text);
    if (rc) { free(scores); free(labels); return -1; }
    *scores_out = scores;
    *labels_out = labels;
    *n_out = n;
    return 0;
}

static cJSON *image_metrics_with_ci(const double *scores, const uint8_t *labels, size_t n, const boot_opts *bo) {
    image_metrics m;
    if (image_metrics_compute(&m, scores, labels, n)) return NULL;
    cJSON *o = image_metrics_json(&m);
    if (bo->n_boot > 0) {
        auroc_interval ci;
        if (image_auroc_bootstrap(&ci, scores, labels, n, bo->n_boot, bo->seed, bo->stratified)) {
            cJSON_Delete(o);
            return NULL;
        }
        auroc_interval_json(o, &ci);
    }
    return o;
}

static int metrics_from_csv(const char *path, const boot_opts *bo, cJSON **out) {
    double *scores = NULL;
    uint8_t *labels = NULL;
    size_t n = 0;
    if (read_scores_csv(path, &scores, &labels, &n)) return -1;
    cJSON *o = image_metrics_with_ci(scores, labels, n, bo);
    free(scores);
    free(labels);
    if (!o) return err_wrap("%s: ", path);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scores", path);
    for (cJSON *c = o->child; c;) { // flatten: the metrics sit at the top level
        cJSON *next = c->next;
        cJSON_AddItemToObject(root, c->string, cJSON_DetachItemViaPointer(o, c));
        c = next;
    }
    cJSON_Delete(o);
    *out = root;
    return 0;
}

// ---- command -----------------------------------------------------------------------------------------

int cmd_metrics(int argc, char **argv) {
    const char *csv = NULL, *maps = NULL, *masks = NULL, *out_path = NULL;
    long bins = PIXEL_BINS_DEFAULT, n_boot = 0, seed = 0;
    int stratified = 1;
    static const char *const valued[] = {"--scores", "--maps", "--masks", "--out", "--bins", "--bootstrap", "--seed",
                                         "--range"};
    double range_lo = 0, range_hi = 0;
    int fixed_range = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); return 0; }
        if (!strcmp(a, "--unstratified")) { stratified = 0; continue; }
        if (!CLI_IS_ONE_OF(a, valued)) { fprintf(stderr, "kanoclip metrics: unknown option '%s' (see --help)\n", a); return 2; }
        if (i + 1 >= argc) { fprintf(stderr, "kanoclip metrics: %s needs a value (see --help)\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--scores")) csv = v;
        else if (!strcmp(a, "--maps")) maps = v;
        else if (!strcmp(a, "--masks")) masks = v;
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--range")) {
            char *end = NULL;
            range_lo = strtod(v, &end);
            if (end == v || *end != ',' || (range_hi = strtod(end + 1, &end), *end) || !(range_lo < range_hi) ||
                !isfinite(range_lo) || !isfinite(range_hi)) {
                fprintf(stderr, "kanoclip metrics: --range: '%s' is not LO,HI with LO < HI\n", v);
                return 2;
            }
            fixed_range = 1;
        } else if (!strcmp(a, "--bins")) {
            if (cli_parse_long(v, 3, 1 << 26, &bins)) { fprintf(stderr, "kanoclip metrics: --bins: '%s' is not an integer in 3..%d\n", v, 1 << 26); return 2; }
        } else if (!strcmp(a, "--bootstrap")) {
            if (cli_parse_long(v, 1, 10000000, &n_boot)) { fprintf(stderr, "kanoclip metrics: --bootstrap: '%s' is not a positive integer\n", v); return 2; }
        } else { // --seed
            if (cli_parse_long(v, 0, 0x7fffffffffffffffL, &seed)) { fprintf(stderr, "kanoclip metrics: --seed: '%s' is not a non-negative integer\n", v); return 2; }
        }
    }
    if (!!csv + !!maps != 1) { fprintf(stderr, "kanoclip metrics: give exactly one of --scores FILE.csv or --maps FILE.h5\n"); return 2; }
    if (masks && !maps) { fprintf(stderr, "kanoclip metrics: --masks goes with --maps\n"); return 2; }
    if (!stratified && maps) { fprintf(stderr, "kanoclip metrics: --unstratified goes with --scores (--maps resamples by label)\n"); return 2; }
    if (fixed_range && !maps) { fprintf(stderr, "kanoclip metrics: --range goes with --maps\n"); return 2; }
    boot_opts bo = {(int)n_boot, stratified, (uint64_t)seed};
    MapsMetricsOptions mo = {(int)bins, fixed_range, range_lo, range_hi, (int)n_boot, (uint64_t)seed};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // our messages name the file and dataset instead
    cJSON *json = NULL;
    if (csv ? metrics_from_csv(csv, &bo, &json) : metrics_from_maps(maps, masks, &mo, &json))
        return fail_with_error();
    char *text = cJSON_Print(json);
    printf("%s\n", text);
    free(text);
    int rc = out_path && json_write_file(out_path, json) ? fail_with_error() : 0;
    cJSON_Delete(json);
    return rc;
}
