// kanoclip metrics: image metrics from a label,score CSV, or image and pixel metrics from HDF5 maps + masks,
// through the same code that scores the harness's own runs.
//
// HDF5 layout (--maps FILE.h5 [--masks FILE2.h5]):
//   maps    [N,H,W] float (float32 as written by the harness; any float type is converted)
//   masks   [N,H,W] uint8, nonzero = anomalous pixel (in the maps file, or in --masks FILE2.h5)
//   labels  [N] integer 0/1, optional (default: 1 when the mask has an anomalous pixel)
//   scores  [N] float, optional image scores (default: the maximum of each map)
//   classes [N] strings, optional (fixed or variable length); metrics per class, then the unweighted mean
//   has_mask [N] integer 0/1, optional (default 1): 0 leaves the item out of the pixel metrics (an anomalous
//           image without ground truth)
// A run's maps_<dataset>.h5 (eval.save_maps; harness/run/eval_maps.h) is in this layout. Maps are read one at a
// time, twice: once to find each class's score range and image scores, once into the streaming pixel histograms
// over that range, so memory does not depend on N (with --bootstrap, each image's pixels are also kept by bin).
// --bootstrap N resamples the images of each class (metrics/metrics_boot.h) for intervals of every metric: per
// class and of the mean, "ci" beside "image" and "pixel"; with a run's eval.bootstrap_seed as --seed, the same
// resamples as the run's metrics.json.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "metrics/metrics.h"
#include "metrics/metrics_boot.h"
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
    int fixed_range;      // --range: every class's histograms over [lo, hi] (else the class's own score range)
    double lo, hi;
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

// ---- HDF5 --------------------------------------------------------------------------------------------

// Why H5Fopen failed: the file is missing or unreadable, else it is not HDF5.
static int h5_open_error(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: %s", path, strerror(errno));
    fclose(f);
    return err_set("%s: cannot open as HDF5", path);
}

typedef struct {
    const char *path;
    hid_t file, dset, space;
    int rank;
    hsize_t dims[3];
} h5_array;

static void h5_array_close(h5_array *a) {
    if (a->space > 0) H5Sclose(a->space);
    if (a->dset > 0) H5Dclose(a->dset);
    a->space = a->dset = 0;
}

// Opens dataset `name` of `file`; missing -> 1 (when optional) or an error.
static int h5_array_open(h5_array *a, hid_t file, const char *path, const char *name, int rank, int optional) {
    memset(a, 0, sizeof *a);
    a->path = path;
    a->file = file;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        if (optional) return 1;
        return err_set("%s: no dataset '%s'", path, name);
    }
    a->dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (a->dset < 0) return err_set("%s: cannot open dataset '%s'", path, name);
    a->space = H5Dget_space(a->dset);
    a->rank = H5Sget_simple_extent_ndims(a->space);
    if (a->rank != rank) {
        int r = a->rank;
        h5_array_close(a);
        return err_set("%s: dataset '%s' has rank %d, expected %d", path, name, r, rank);
    }
    H5Sget_simple_extent_dims(a->space, a->dims, NULL);
    return 0;
}

// Reads item i (a [H,W] slab of a [N,H,W] dataset, or all of a 1-D one when i < 0) converted to mem_type.
static int h5_read_item(const h5_array *a, const char *name, long i, hid_t mem_type, void *buf) {
    herr_t st;
    if (i < 0) {
        st = H5Dread(a->dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    } else {
        hsize_t start[3] = {(hsize_t)i, 0, 0}, count[3] = {1, a->dims[1], a->dims[2]};
        hid_t fspace = H5Scopy(a->space);
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
        hid_t mspace = H5Screate_simple(3, count, NULL);
        st = H5Dread(a->dset, mem_type, mspace, fspace, H5P_DEFAULT, buf);
        H5Sclose(mspace);
        H5Sclose(fspace);
    }
    if (st < 0) return err_set("%s: cannot read %s%s (type not convertible?)", a->path, name, i < 0 ? "" : "[i]");
    return 0;
}

// classes [N] strings -> one malloc'd name per item.
static char **read_class_names(const h5_array *a, long n) {
    hid_t ftype = H5Dget_type(a->dset);
    char **names = calloc(n, sizeof *names);
    int ok = ftype >= 0 && H5Tget_class(ftype) == H5T_STRING;
    if (ok && H5Tis_variable_str(ftype) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ftype)); // h5py writes UTF-8; HDF5 will not convert between csets
        char **raw = calloc(n, sizeof *raw);
        ok = H5Dread(a->dset, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0;
        for (long i = 0; ok && i < n; i++) names[i] = strdup(raw[i] ? raw[i] : "");
        if (ok) H5Dvlen_reclaim(mt, a->space, H5P_DEFAULT, raw);
        free(raw);
        H5Tclose(mt);
    } else if (ok) {
        size_t len = H5Tget_size(ftype);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        H5Tset_cset(mt, H5Tget_cset(ftype));
        char *raw = calloc(n, len + 1);
        ok = H5Dread(a->dset, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0;
        for (long i = 0; ok && i < n; i++) names[i] = strdup(raw + i * (len + 1));
        free(raw);
        H5Tclose(mt);
    }
    if (ftype >= 0) H5Tclose(ftype);
    if (!ok) {
        for (long i = 0; i < n; i++) free(names[i]);
        free(names);
        err_set("%s: dataset 'classes' must hold N strings", a->path);
        return NULL;
    }
    return names;
}

typedef struct {
    char *name;
    float lo, hi; // score range of the class's maps
    long n;       // items
} class_info;

static int metrics_from_maps(const char *maps_path, const char *masks_path, int bins, const boot_opts *bo,
                             cJSON **out) {
    int rc = -1;
    hid_t fmaps = -1, fmasks = -1;
    h5_array maps = {0}, masks = {0}, labels_ds = {0}, scores_ds = {0}, classes_ds = {0}, has_mask_ds = {0};
    float *map = NULL;
    uint8_t *mask = NULL, *labels = NULL, *has_mask = NULL;
    int64_t *cls_acc = NULL;
    double *scores = NULL, *cls_scores = NULL;
    uint8_t *cls_labels = NULL;
    char **names = NULL;
    int *class_of = NULL;
    class_info *classes = NULL;
    int n_classes = 0;
    long N = 0;
    pixel_acc *acc = NULL;
    cJSON *root = NULL;
    boot_mean bmean = {0};

    if (!masks_path) masks_path = maps_path;
    fmaps = H5Fopen(maps_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fmaps < 0) { h5_open_error(maps_path); goto done; }
    fmasks = strcmp(masks_path, maps_path) ? H5Fopen(masks_path, H5F_ACC_RDONLY, H5P_DEFAULT) : fmaps;
    if (fmasks < 0) { h5_open_error(masks_path); goto done; }
    if (h5_array_open(&maps, fmaps, maps_path, "maps", 3, 0)) goto done;
    if (h5_array_open(&masks, fmasks, masks_path, "masks", 3, 0)) goto done;
    N = (long)maps.dims[0];
    const int H = (int)maps.dims[1], W = (int)maps.dims[2];
    if (masks.dims[0] != maps.dims[0]) {
        err_set("%s: masks has %llu items but %s: maps has %ld", masks_path, (unsigned long long)masks.dims[0],
                maps_path, N);
        goto done;
    }
    if ((int)masks.dims[1] != H || (int)masks.dims[2] != W) {
        err_set("%s: maps[0]: anomaly map is %dx%d but its mask (%s: masks[0]) is %dx%d (HxW)", maps_path, H, W,
                masks_path, (int)masks.dims[1], (int)masks.dims[2]);
        goto done;
    }
    if (N == 0) { err_set("%s: dataset 'maps' holds no items", maps_path); goto done; }

    labels = malloc(N);
    scores = malloc(N * sizeof *scores);
    class_of = calloc(N, sizeof *class_of);
    map = malloc((size_t)H * W * sizeof *map);
    mask = malloc((size_t)H * W);
    if (!labels || !scores || !class_of || !map || !mask) { err_set("%s: out of memory for %ld maps of %dx%d", maps_path, N, H, W); goto done; }
    int has_labels = h5_array_open(&labels_ds, fmaps, maps_path, "labels", 1, 1);
    if (has_labels < 0) goto done;
    has_labels = !has_labels;
    if (has_labels) {
        if ((long)labels_ds.dims[0] != N) { err_set("%s: labels has %llu items, maps %ld", maps_path, (unsigned long long)labels_ds.dims[0], N); goto done; }
        int *tmp = malloc(N * sizeof *tmp);
        if (h5_read_item(&labels_ds, "labels", -1, H5T_NATIVE_INT, tmp)) { free(tmp); goto done; }
        for (long i = 0; i < N; i++) {
            if (tmp[i] != 0 && tmp[i] != 1) { err_set("%s: labels[%ld] is %d, not 0 or 1", maps_path, i, tmp[i]); free(tmp); goto done; }
            labels[i] = (uint8_t)tmp[i];
        }
        free(tmp);
    }
    int has_scores = h5_array_open(&scores_ds, fmaps, maps_path, "scores", 1, 1);
    if (has_scores < 0) goto done;
    has_scores = !has_scores;
    if (has_scores) {
        if ((long)scores_ds.dims[0] != N) { err_set("%s: scores has %llu items, maps %ld", maps_path, (unsigned long long)scores_ds.dims[0], N); goto done; }
        if (h5_read_item(&scores_ds, "scores", -1, H5T_NATIVE_DOUBLE, scores)) goto done;
        for (long i = 0; i < N; i++)
            if (isnan(scores[i])) { err_set("%s: scores[%ld] is NaN", maps_path, i); goto done; }
    }
    has_mask = malloc(N);
    if (!has_mask) { err_set("%s: out of memory", maps_path); goto done; }
    memset(has_mask, 1, N);
    int has_has_mask = h5_array_open(&has_mask_ds, fmaps, maps_path, "has_mask", 1, 1);
    if (has_has_mask < 0) goto done;
    if (has_has_mask == 0) {
        if ((long)has_mask_ds.dims[0] != N) { err_set("%s: has_mask has %llu items, maps %ld", maps_path, (unsigned long long)has_mask_ds.dims[0], N); goto done; }
        int *tmp = malloc(N * sizeof *tmp);
        if (!tmp || h5_read_item(&has_mask_ds, "has_mask", -1, H5T_NATIVE_INT, tmp)) { free(tmp); goto done; }
        for (long i = 0; i < N; i++) {
            if (tmp[i] != 0 && tmp[i] != 1) { err_set("%s: has_mask[%ld] is %d, not 0 or 1", maps_path, i, tmp[i]); free(tmp); goto done; }
            has_mask[i] = (uint8_t)tmp[i];
        }
        free(tmp);
    }
    int has_classes = h5_array_open(&classes_ds, fmaps, maps_path, "classes", 1, 1);
    if (has_classes < 0) goto done;
    has_classes = !has_classes;
    if (has_classes) {
        if ((long)classes_ds.dims[0] != N) { err_set("%s: classes has %llu items, maps %ld", maps_path, (unsigned long long)classes_ds.dims[0], N); goto done; }
        if (!(names = read_class_names(&classes_ds, N))) goto done;
    }
    classes = calloc(has_classes ? N : 1, sizeof *classes);
    if (!classes) { err_set("%s: out of memory", maps_path); goto done; }
    for (long i = 0; i < N; i++) {
        const char *nm = has_classes ? names[i] : "all";
        int c = 0;
        while (c < n_classes && strcmp(classes[c].name, nm)) c++;
        if (c == n_classes) classes[n_classes++] = (class_info){strdup(nm), INFINITY, -INFINITY, 0};
        class_of[i] = c;
        classes[c].n++;
    }

    // Pass 1: per-class score range, image scores (max of the map) and labels (from the mask).
    for (long i = 0; i < N; i++) {
        if (h5_read_item(&maps, "maps", i, H5T_NATIVE_FLOAT, map)) goto done;
        float mn = INFINITY, mx = -INFINITY;
        for (size_t k = 0; k < (size_t)H * W; k++) {
            float s = map[k];
            if (isnan(s)) { err_set("%s: maps[%ld]: score at (y=%zu, x=%zu) is NaN", maps_path, i, k / W, k % W); goto done; }
            if (s < mn) mn = s;
            if (s > mx) mx = s;
        }
        if (!isfinite(mn) || !isfinite(mx)) { err_set("%s: maps[%ld]: scores are not finite", maps_path, i); goto done; }
        class_info *c = &classes[class_of[i]];
        if (mn < c->lo) c->lo = mn;
        if (mx > c->hi) c->hi = mx;
        if (!has_scores) scores[i] = mx;
        if (!has_labels) {
            if (h5_read_item(&masks, "masks", i, H5T_NATIVE_UINT8, mask)) goto done;
            uint8_t any = 0;
            for (size_t k = 0; k < (size_t)H * W; k++) any |= mask[k] != 0;
            labels[i] = any;
        }
    }

    // Pass 2, class by class: the pixel histograms over the class's range, and the image metrics.
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "maps", maps_path);
    cJSON_AddStringToObject(root, "masks", masks_path);
    cJSON_AddNumberToObject(root, "n_images", N);
    cJSON_AddNumberToObject(root, "height", H);
    cJSON_AddNumberToObject(root, "width", W);
    cJSON_AddStringToObject(root, "image_score", has_scores ? "scores dataset" : "max of map");
    cJSON_AddStringToObject(root, "image_label", has_labels ? "labels dataset" : "mask has an anomalous pixel");
    cJSON *per_class = cJSON_AddObjectToObject(root, "classes");
    image_metrics_mean imean = {0};
    pixel_metrics_mean pmean = {0};
    cls_scores = malloc(N * sizeof *cls_scores);
    cls_labels = malloc(N);
    cls_acc = malloc(N * sizeof *cls_acc);
    if (!cls_scores || !cls_labels || !cls_acc) { err_set("%s: out of memory", maps_path); goto done; }
    if (bo->n_boot > 0 && boot_mean_init(&bmean, bo->n_boot, bo->seed)) goto done;
    for (int c = 0; c < n_classes; c++) {
        double lo = classes[c].lo, hi = classes[c].hi > classes[c].lo ? classes[c].hi : classes[c].lo + 1.0;
        if (bo->fixed_range) lo = bo->lo, hi = bo->hi;
        acc = pixel_acc_create(lo, hi, bins);
        if (!acc) goto done;
        if (bo->n_boot > 0) pixel_acc_keep_images(acc);
        size_t n = 0;
        int64_t n_px = 0;
        for (long i = 0; i < N; i++) {
            if (class_of[i] != c) continue;
            char item[64];
            snprintf(item, sizeof item, "maps[%ld]", i);
            cls_acc[n] = has_mask[i] ? n_px++ : -1;
            if (has_mask[i] && (h5_read_item(&maps, "maps", i, H5T_NATIVE_FLOAT, map) ||
                                h5_read_item(&masks, "masks", i, H5T_NATIVE_UINT8, mask) ||
                                pixel_acc_add(acc, item, map, H, W, mask, H, W))) {
                err_wrap("%s: ", maps_path);
                goto done;
            }
            cls_scores[n] = scores[i];
            cls_labels[n] = labels[i];
            n++;
        }
        pixel_metrics pm;
        pixel_acc_compute(acc, &pm);
        image_metrics im;
        if (image_metrics_compute(&im, cls_scores, cls_labels, n)) goto done;
        cJSON *co = cJSON_AddObjectToObject(per_class, classes[c].name);
        cJSON_AddItemToObject(co, "image", image_metrics_json(&im));
        cJSON_AddItemToObject(co, "pixel", pixel_metrics_json(&pm));
        if (bo->n_boot > 0) {
            boot_class bc = {.scores = cls_scores, .labels = cls_labels, .n = n, .acc = acc, .acc_image = cls_acc};
            boot_samples bs;
            if (boot_class_resample(&bs, &bc, bo->n_boot, bo->seed, c)) { err_wrap("%s: class %s: ", maps_path, classes[c].name); goto done; }
            cJSON_AddItemToObject(co, "ci", boot_ci_json(&bs, -1));
            boot_mean_add(&bmean, &bs);
            boot_samples_free(&bs);
        }
        pixel_acc_free(acc);
        acc = NULL;
        image_metrics_mean_add(&imean, &im);
        pixel_metrics_mean_add(&pmean, &pm);
    }
    cJSON *mean = cJSON_AddObjectToObject(root, "mean");
    cJSON_AddItemToObject(mean, "image", image_metrics_mean_json(&imean));
    cJSON_AddItemToObject(mean, "pixel", pixel_metrics_mean_json(&pmean));
    if (bo->n_boot > 0) {
        boot_samples bs;
        if (boot_mean_samples(&bmean, &bs)) goto done;
        cJSON_AddItemToObject(mean, "ci", boot_ci_json(&bs, -1));
        cJSON_AddItemToObject(root, "bootstrap", boot_info_json(&bs, -1));
        boot_samples_free(&bs);
    }
    *out = root;
    root = NULL;
    rc = 0;
done:
    pixel_acc_free(acc);
    cJSON_Delete(root);
    h5_array_close(&maps);
    h5_array_close(&masks);
    h5_array_close(&labels_ds);
    h5_array_close(&scores_ds);
    h5_array_close(&classes_ds);
    h5_array_close(&has_mask_ds);
    boot_mean_free(&bmean);
    if (fmasks >= 0 && fmasks != fmaps) H5Fclose(fmasks);
    if (fmaps >= 0) H5Fclose(fmaps);
    if (names) for (long i = 0; i < N; i++) free(names[i]);
    free(names);
    if (classes) for (int c = 0; c < n_classes; c++) free(classes[c].name);
    free(classes);
    free(map); free(mask); free(labels); free(scores); free(class_of); free(cls_scores); free(cls_labels); free(cls_acc); free(has_mask);
    return rc;
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
    boot_opts bo = {(int)n_boot, stratified, (uint64_t)seed, fixed_range, range_lo, range_hi};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // our messages name the file and dataset instead
    cJSON *json = NULL;
    if (csv ? metrics_from_csv(csv, &bo, &json) : metrics_from_maps(maps, masks, (int)bins, &bo, &json))
        return fail_with_error();
    char *text = cJSON_Print(json);
    printf("%s\n", text);
    free(text);
    int rc = out_path && json_write_file(out_path, json) ? fail_with_error() : 0;
    cJSON_Delete(json);
    return rc;
}
