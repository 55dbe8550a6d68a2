// Image and pixel metrics of an HDF5 maps file for `kanoclip metrics --maps` (see metrics_maps.h).
#include "harness/cli/metrics_maps.h"
#include "metrics/metrics.h"
#include "metrics/metrics_boot.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int metrics_from_maps(const char *maps_path, const char *masks_path, const MapsMetricsOptions *bo, cJSON **out) {
    const int bins = bo->bins;
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
