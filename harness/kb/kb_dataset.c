#include "harness/kb/kb_dataset.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/dataset.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const skipped_folders[] = {"good", "ok", "normal", "train", "ground_truth", "masks", "label",
                                              "anomaly_mask"};
static const char *const image_exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"};

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    for (size_t i = 0; i < sizeof image_exts / sizeof image_exts[0]; i++)
        if (!strcasecmp(dot, image_exts[i])) {
            size_t stem = dot - name;
            if (stem >= 5 && !strncasecmp(dot - 5, "_mask", 5)) return 0;
            if (stem >= 6 && !strncasecmp(dot - 6, "_label", 6)) return 0;
            return 1;
        }
    return 0;
}

static int is_skipped_folder(const char *name) {
    for (size_t i = 0; i < sizeof skipped_folders / sizeof skipped_folders[0]; i++)
        if (!strcasecmp(name, skipped_folders[i])) return 1;
    return name[0] == '.';
}

typedef struct { char **rel; int n, cap; } RelList;

static int walk(const char *root, const char *rel, RelList *out) {
    char *dir = rel[0] ? fs_join(root, rel) : strdup(root);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) { err_set("%s: cannot list folder", dir); free(dir); return -1; }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc == 0 && strcmp(name, ".") && strcmp(name, "..")) {
            char *r = rel[0] ? fs_join(rel, name) : strdup(name);
            char *full = fs_join(root, r);
            struct stat st;
            if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
                if (!is_skipped_folder(name)) rc = walk(root, r, out);
                free(r);
            } else if (is_image_name(name)) {
                if (out->n == out->cap) {
                    out->cap = out->cap ? 2 * out->cap : 64;
                    out->rel = realloc(out->rel, out->cap * sizeof *out->rel);
                }
                out->rel[out->n++] = r;
            } else {
                free(r);
            }
            free(full);
        }
        free(names[i]);
    }
    free(names);
    free(dir);
    return rc;
}

static int class_index(const KbDataset *d, const char *name) {
    for (int i = 0; i < d->n_classes; i++)
        if (!strcmp(d->classes[i], name)) return i;
    return -1;
}

static void add_class(KbDataset *d, const char *name) {
    d->classes = realloc(d->classes, (d->n_classes + 1) * sizeof *d->classes);
    d->classes[d->n_classes++] = strdup(name);
}

int kb_dataset_walk(const char *images_dir, const char *classes_csv, KbDataset *out) {
    memset(out, 0, sizeof *out);
    out->type = strdup("");
    if (classes_csv) {
        const char *p = classes_csv;
        while (*p) {
            size_t k = strcspn(p, ",");
            char *name = strndup(p, k);
            if (name[0] && class_index(out, name) < 0) add_class(out, name);
            free(name);
            p += k;
            if (*p == ',') p++;
        }
        if (out->n_classes == 0) { kb_dataset_free(out); return err_set("--classes: no class names in '%s'", classes_csv); }
    }
    if (!images_dir) return 0;
    if (!fs_is_dir(images_dir)) { kb_dataset_free(out); return err_set("%s: not a folder", images_dir); }
    RelList list = {0};
    if (walk(images_dir, "", &list) != 0) {
        for (int i = 0; i < list.n; i++) free(list.rel[i]);
        free(list.rel);
        kb_dataset_free(out);
        return -1;
    }
    int fixed = out->n_classes > 0;
    // Class of each image: its first folder, or the one given class for images at the top.
    char **cls = calloc(list.n ? list.n : 1, sizeof *cls);
    int rc = 0;
    for (int i = 0; i < list.n && rc == 0; i++) {
        const char *slash = strchr(list.rel[i], '/');
        if (slash) cls[i] = strndup(list.rel[i], slash - list.rel[i]);
        else if (fixed && out->n_classes == 1) cls[i] = strdup(out->classes[0]);
        else rc = err_set("%s/%s: image directly in the folder; put it under %s/<class>/ or give exactly one class",
                          images_dir, list.rel[i], images_dir);
    }
    for (int i = 0; i < list.n && rc == 0; i++)
        if (!fixed && class_index(out, cls[i]) < 0) add_class(out, cls[i]);
    if (rc == 0) {
        out->images = calloc(list.n ? list.n : 1, sizeof *out->images);
        // Group by class in class order; the walk already sorted paths.
        for (int c = 0; c < out->n_classes; c++)
            for (int i = 0; i < list.n; i++) {
                if (strcmp(cls[i], out->classes[c]) != 0) continue;
                KbImage *im = &out->images[out->n_images++];
                im->class_name = strdup(cls[i]);
                im->rel = strdup(list.rel[i]);
                im->path = fs_join(images_dir, list.rel[i]);
            }
    }
    for (int i = 0; i < list.n; i++) { free(list.rel[i]); free(cls[i]); }
    free(list.rel);
    free(cls);
    if (rc != 0) kb_dataset_free(out);
    return rc;
}

// path relative to root when it lies under it ("bottle/test/crack/000.png"), else path itself (meta.json may name
// absolute paths elsewhere).
static char *relative_to(const char *root, const char *path) {
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    if (!strncmp(path, root, n) && path[n] == '/') return strdup(path + n + 1);
    return strdup(path);
}

static int cmp_image(const void *a, const void *b) {
    const KbImage *x = a, *y = b;
    return strcmp(x->rel, y->rel);
}

int kb_dataset_load(const char *type, const char *root, KbDataset *out) {
    memset(out, 0, sizeof *out);
    if (!type || !type[0]) return err_set("kb: no dataset type for %s (kb.dataset or --dataset-type: %s)", root, dataset_type_names());
    DatasetType t;
    if (dataset_type_from_name(type, &t) != 0) return err_wrap("kb.dataset: ");
    Dataset *ds = dataset_open(t, root, SPLIT_TEST, NULL);
    if (!ds) return -1;
    out->type = strdup(type);
    out->n_classes = ds->n_classes;
    out->classes = calloc(ds->n_classes ? ds->n_classes : 1, sizeof *out->classes);
    out->prompt_names = calloc(ds->n_classes ? ds->n_classes : 1, sizeof *out->prompt_names);
    for (int c = 0; c < ds->n_classes; c++) {
        out->classes[c] = strdup(ds->classes[c].name);
        out->prompt_names[c] = strdup(ds->classes[c].prompt_name);
    }
    out->images = calloc(ds->n_samples ? ds->n_samples : 1, sizeof *out->images);
    // The reader sorts samples by (class, image path); class by class, sorted by the recorded relative path.
    int start = 0;
    for (int c = 0; c < ds->n_classes; c++) {
        for (int i = 0; i < ds->n_samples; i++) {
            const Sample *sm = &ds->samples[i];
            if (sm->class_index != c || !sm->label) continue;
            KbImage *im = &out->images[out->n_images++];
            im->class_name = strdup(ds->classes[c].name);
            im->path = strdup(sm->image_path);
            im->rel = relative_to(ds->root, sm->image_path);
        }
        qsort(out->images + start, out->n_images - start, sizeof *out->images, cmp_image);
        start = out->n_images;
    }
    dataset_free(ds);
    if (out->n_classes == 0) {
        kb_dataset_free(out);
        return err_set("%s: no classes in the %s test split", root, type);
    }
    return 0;
}

void kb_dataset_free(KbDataset *d) {
    for (int i = 0; i < d->n_classes; i++) {
        free(d->classes[i]);
        if (d->prompt_names) free(d->prompt_names[i]);
    }
    free(d->classes);
    free(d->prompt_names);
    for (int i = 0; i < d->n_images; i++) { free(d->images[i].class_name); free(d->images[i].path); free(d->images[i].rel); }
    free(d->images);
    free(d->type);
    memset(d, 0, sizeof *d);
}
