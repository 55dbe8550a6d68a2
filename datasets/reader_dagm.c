// DAGM 2007. Two layouts:
//   Kaggle (DAGM_KaggleUpload): ClassN/{Train,Test}/NNNN.PNG, defects labelled by ClassN/<Phase>/Label/NNNN_label.PNG;
//     an image is defective iff its label file exists (Labels.txt is ignored). Some copies nest ClassN/ClassN/.
//   AdaCLIP conversion: ClassN/{train/good, test/{good,defect}, ground_truth/defect/NNNN_label.PNG}.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

static const char *const normal_tokens[] = {"good", NULL};
static const char *const label_suffixes[] = {"_label", "_mask", "", NULL};

// A Kaggle phase folder holds the images themselves (and Label/); an AdaCLIP one holds good/ and defect/.
static int is_kaggle_phase(const char *phase_dir) {
    char *label = find_subdir_ci(phase_dir, "Label");
    if (label) { free(label); return 1; }
    int n = 0;
    char **imgs = list_names(phase_dir, LIST_IMAGES, &n);
    names_free(imgs, n);
    return n > 0;
}

static int read_kaggle_phase(DatasetBuilder *b, const char *phase_dir, const char *class_name) {
    int n = 0;
    char **names = list_names(phase_dir, LIST_IMAGES, &n);
    if (!names) return -1;
    char *label_dir = find_subdir_ci(phase_dir, "Label");
    MaskIndex *mi = mask_index_open(label_dir);
    for (int i = 0; i < n; i++) {
        char *img = fs_join(phase_dir, names[i]);
        char *stem = stem_of(names[i]);
        const char *mask = mask_index_find(mi, stem, label_suffixes);
        builder_add(b, class_name, NULL, img, mask, "", mask != NULL);
        free(stem);
        free(img);
    }
    mask_index_free(mi);
    free(label_dir);
    names_free(names, n);
    return 0;
}

int read_dagm(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    const char *phase = split == SPLIT_TRAIN ? "Train" : "Test";
    int n = 0;
    char **classes = list_names(root, LIST_DIRS, &n);
    if (!classes) return -1;
    int rc = 0, found = 0, kaggle = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *cdir = fs_join(root, classes[i]);
        char *nested = fs_join(cdir, classes[i]); // ClassN/ClassN/
        if (fs_is_dir(nested)) { free(cdir); cdir = nested; } else free(nested);
        char *phase_dir = find_subdir_ci(cdir, phase);
        if (phase_dir) {
            found++;
            if (is_kaggle_phase(phase_dir)) {
                kaggle = 1;
                rc = read_kaggle_phase(b, phase_dir, classes[i]);
            } else {
                TreeSpec spec = {normal_tokens, label_suffixes, 1, NULL, NULL};
                rc = tree_read_class(b, cdir, classes[i], split, &spec);
            }
            free(phase_dir);
        }
        free(cdir);
    }
    names_free(classes, n);
    if (rc == 0 && !found)
        rc = err_set("%s: no class folders with %s/ (expected %s/ClassN/%s/NNNN.PNG)", root, phase, root, phase);
    if (rc == 0) b->ds->layout = strdup(kaggle ? "dagm-kaggle" : "dagm-adaclip");
    return rc;
}
