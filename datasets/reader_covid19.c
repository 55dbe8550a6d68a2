// COVID-19 Radiography Database, image-level only (its masks/ are lung fields, not lesions, and are never used).
//   current release: COVID-19_Radiography_Dataset/{COVID,Normal,Lung_Opacity,Viral Pneumonia}/{images,masks}/
//   older releases (AnomalyCLIP's covid.py): the PNGs directly in the class folders, normal folder `NORMAL`.
// Normal folders default to NORMAL,Normal; anomalous to every other folder; both can be set in DatasetOptions,
// since which classes the papers used is not documented.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

// Whether name is in a comma-separated list (exact match).
static int in_csv_list(const char *name, const char *list) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int add_class_folder(DatasetBuilder *b, const char *dir, const char *defect, int label) {
    char *images = find_subdir_ci(dir, "images");
    const char *from = images ? images : dir;
    int n = 0;
    char **names = list_names(from, LIST_IMAGES, &n);
    if (!names) { free(images); return -1; }
    for (int i = 0; i < n; i++) {
        char *img = fs_join(from, names[i]);
        builder_add(b, "chest", "chest", img, NULL, defect, label);
        free(img);
    }
    names_free(names, n);
    free(images);
    return 0;
}

int read_covid19(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    if (split == SPLIT_TRAIN) return err_set("%s: COVID-19 has no train split (all images are test)", root);
    b->ds->image_level_only = 1;
    const char *normal = opts->normal_folders ? opts->normal_folders : "NORMAL,Normal";
    const char *anomalous = opts->anomalous_folders;
    char *inner = find_subdir_ci(root, "COVID-19_Radiography_Dataset");
    const char *top = inner ? inner : root;
    int n = 0;
    char **dirs = list_names(top, LIST_DIRS, &n);
    if (!dirs) { free(inner); return -1; }
    int rc = 0, n_normal = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int label;
        if (in_csv_list(dirs[i], normal)) label = 0;
        else if (!anomalous || in_csv_list(dirs[i], anomalous)) label = 1;
        else continue;
        n_normal += label == 0;
        char *dir = fs_join(top, dirs[i]);
        rc = add_class_folder(b, dir, dirs[i], label);
        free(dir);
    }
    names_free(dirs, n);
    if (rc == 0 && !n_normal) rc = err_set("%s: no normal folder (looked for %s)", top, normal);
    free(inner);
    return rc;
}
