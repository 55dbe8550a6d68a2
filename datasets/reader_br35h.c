// Br35H (Kaggle "Br35H :: Brain Tumor Detection 2020"), image-level only. Layouts:
//   raw / AnomalyCLIP copy: <root>/{no,yes}/*.jpg (the unlabelled pred/ folder, and any other, is skipped;
//     AnomalyCLIP's br35.py would have counted it as anomalous);
//   AdaCLIP: Br35h_anomaly_detection/br35h/test/{good,<abnormal>}/.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

static const char *const normal_tokens[] = {"good", "no", NULL};
static const char *const no_suffixes[] = {NULL};

// Images of dir as one label (no masks).
static int add_folder(DatasetBuilder *b, const char *cls, const char *prompt, const char *dir, const char *defect,
                      int label) {
    int n = 0;
    char **names = list_names(dir, LIST_IMAGES, &n);
    if (!names) return -1;
    for (int i = 0; i < n; i++) {
        char *img = fs_join(dir, names[i]);
        builder_add(b, cls, prompt, img, NULL, defect, label);
        free(img);
    }
    names_free(names, n);
    return 0;
}

int read_br35h(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    b->ds->image_level_only = 1;
    char *no = find_subdir_ci(root, "no"), *yes = find_subdir_ci(root, "yes");
    int rc;
    if (no && yes) {
        if (split == SPLIT_TRAIN) rc = err_set("%s: the raw Br35H layout (no/, yes/) has no train split", root);
        else {
            rc = add_folder(b, "brain", "brain", no, "no", 0);
            if (rc == 0) rc = add_folder(b, "brain", "brain", yes, "yes", 1);
        }
        b->ds->layout = strdup("br35h-raw");
    } else {
        TreeSpec spec = {normal_tokens, no_suffixes, 0, NULL, "brain"};
        rc = tree_read_root(b, root, split, &spec);
        if (rc != 0) err_wrap("%s: no no/ and yes/ folders; ", root);
        b->ds->layout = strdup("br35h-adaclip");
    }
    free(no);
    free(yes);
    return rc;
}
