// The MVTec-style tree that most layouts share (MVTec-AD, MPDD, BTAD, SDD, spot-diff VisA 1cls, AdaCLIP copies):
//   <class>/train/<normal>/img  <class>/test/<defect>/img  <class>/ground_truth/<defect>/<stem><suffix>.ext
// Masks are matched by name (not by sorted position as the Python scripts do), so a missing mask is caught.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

static const char *split_dir_name(DatasetSplit split) { return split == SPLIT_TRAIN ? "train" : "test"; }

int tree_is_class_dir(const char *dir, DatasetSplit split) {
    char *p = find_subdir_ci(dir, split_dir_name(split));
    free(p);
    return p != NULL;
}

static int read_defect_folder(DatasetBuilder *b, const char *class_dir, const char *split_dir, const char *defect,
                              const char *class_name, const TreeSpec *spec, int label) {
    char *dir = fs_join(split_dir, defect);
    int n = 0;
    char **names = list_names(dir, LIST_IMAGES, &n);
    if (!names) { free(dir); return -1; }
    MaskIndex *mi = NULL;
    char *gt_dir = NULL;
    if (label && spec->with_masks) {
        char *gt = find_subdir_ci(class_dir, "ground_truth");
        if (gt) { gt_dir = find_subdir_ci(gt, defect); free(gt); }
        mi = mask_index_open(gt_dir);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *img = fs_join(dir, names[i]);
        const char *mask = NULL;
        if (mi) {
            char *stem = stem_of(names[i]);
            mask = mask_index_find(mi, stem, spec->mask_suffixes);
            if (!mask) {
                char expect[4096];
                snprintf(expect, sizeof expect, "%s/ground_truth/%s/%s%s.png", class_dir, defect, stem,
                         spec->mask_suffixes[0]);
                rc = err_set("%s: mask not found (expected %s)", img, expect);
            }
            free(stem);
        }
        if (rc == 0) builder_add(b, class_name, spec->prompt, img, mask, defect, label);
        free(img);
    }
    mask_index_free(mi);
    free(gt_dir);
    names_free(names, n);
    free(dir);
    return rc;
}

int tree_read_class(DatasetBuilder *b, const char *class_dir, const char *class_name, DatasetSplit split,
                    const TreeSpec *spec) {
    char *split_dir = find_subdir_ci(class_dir, split_dir_name(split));
    if (!split_dir) return err_set("%s/%s: folder not found", class_dir, split_dir_name(split));
    int n = 0;
    char **defects = list_names(split_dir, LIST_DIRS, &n);
    if (!defects) { free(split_dir); return -1; }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int label = !name_in_list(defects[i], spec->normal_tokens);
        if (split == SPLIT_TRAIN && label) continue; // train holds normal images only
        rc = read_defect_folder(b, class_dir, split_dir, defects[i], class_name, spec, label);
    }
    names_free(defects, n);
    free(split_dir);
    return rc;
}

int tree_read_root(DatasetBuilder *b, const char *root, DatasetSplit split, const TreeSpec *spec) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    if (tree_is_class_dir(root, split)) { // the root is one class
        char *name = base_name(root);
        int rc = tree_read_class(b, root, spec->class_name ? spec->class_name : name, split, spec);
        free(name);
        return rc;
    }
    int n = 0;
    char **dirs = list_names(root, LIST_DIRS, &n);
    if (!dirs) return -1;
    int rc = 0, found = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *cdir = fs_join(root, dirs[i]);
        if (tree_is_class_dir(cdir, split)) {
            found++;
            rc = tree_read_class(b, cdir, spec->class_name ? spec->class_name : dirs[i], split, spec);
        }
        free(cdir);
    }
    names_free(dirs, n);
    if (rc == 0 && !found)
        rc = err_set("%s: no class folders with a %s/ folder (expected %s/<class>/%s/<defect>/<image>)", root,
                     split_dir_name(split), root, split_dir_name(split));
    return rc;
}
