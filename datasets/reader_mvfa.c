// The BMAD / MVFA-AD medical layout shared by BrainMRI (BraTS2021 slices), LiverCT and RESC:
//   <X>_AD/{valid,test}/good/img/*.png
//   <X>_AD/{valid,test}/Ungood/img/*.png  with masks of the same file name in Ungood/anomaly_mask/ (MVFA) or
//   Ungood/label/ (BMAD, AA-CLIP); `ungood` in any case; img/ may be absent (images directly in good/, Ungood/);
//   BMAD's own copy also has train/good. The root may be <X>_AD, a folder holding it, or a one-folder nesting
//   (BMAD's Brain_AD/BraTS2021_slice/).
// Variants: BMAD's raw RESC tree RESC/{Train/train/good, Test/test/{good,Ungood}, Test/test_label/Ungood};
// the Kaggle "Brain MRI Images for Brain Tumor Detection" ({yes,no}/, no masks) for brainmri.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

static const char *const mask_suffixes[] = {"", "_mask", NULL};
static const char *const mask_dirs[] = {"anomaly_mask", "label", NULL};

typedef struct {
    const char *class_name;  // results key
    const char *prompt;      // MVFA's REAL_NAME
    const char *folder;      // MVFA's folder name under data/
} MedicalSpec;

// Images of one label folder: <dir>/img/ if present, else <dir>/ itself; masks from mask_dir by file stem.
static int read_label_folder(DatasetBuilder *b, const MedicalSpec *ms, const char *dir, const char *defect,
                             int label, const char *mask_dir) {
    char *img_dir = find_subdir_ci(dir, "img");
    const char *from = img_dir ? img_dir : dir;
    int n = 0;
    char **names = list_names(from, LIST_IMAGES, &n);
    if (!names) { free(img_dir); return -1; }
    MaskIndex *mi = label ? mask_index_open(mask_dir) : NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *img = fs_join(from, names[i]);
        const char *mask = NULL;
        if (mi) {
            char *stem = stem_of(names[i]);
            mask = mask_index_find(mi, stem, mask_suffixes);
            if (!mask) {
                if (mask_dir) rc = err_set("%s: mask not found (expected %s/%s)", img, mask_dir, names[i]);
                else rc = err_set("%s: mask not found (no anomaly_mask/ or label/ folder in %s)", img, dir);
            }
            free(stem);
        }
        if (rc == 0) builder_add(b, ms->class_name, ms->prompt, img, mask, defect, label);
        free(img);
    }
    mask_index_free(mi);
    names_free(names, n);
    free(img_dir);
    return rc;
}

// <split_dir>/{good, Ungood}; mask_dir_override: BMAD raw RESC keeps masks beside, in test_label/Ungood.
static int read_split_dir(DatasetBuilder *b, const MedicalSpec *ms, const char *split_dir, DatasetSplit split,
                          const char *mask_dir_override) {
    char *good = find_subdir_ci(split_dir, "good");
    char *ungood = split == SPLIT_TEST ? find_subdir_ci(split_dir, "Ungood") : NULL;
    int rc = 0;
    if (!good && !ungood) rc = err_set("%s: neither good/ nor Ungood/ found", split_dir);
    if (rc == 0 && good) rc = read_label_folder(b, ms, good, "good", 0, NULL);
    if (rc == 0 && ungood) {
        char *mdir = mask_dir_override ? strdup(mask_dir_override) : find_subdir_any(ungood, mask_dirs);
        char *defect = base_name(ungood);
        rc = read_label_folder(b, ms, ungood, defect, 1, mdir);
        free(defect);
        free(mdir);
    }
    free(good);
    free(ungood);
    return rc;
}

// The folder holding test/ (or train/): root, root/<X>_AD, or root's only sub-folder (one level of nesting).
static char *find_mvfa_root(const char *root, const MedicalSpec *ms, DatasetSplit split) {
    const char *split_name = split == SPLIT_TRAIN ? "train" : "test";
    char *p = find_subdir_ci(root, split_name);
    if (p) { free(p); return strdup(root); }
    char *named = find_subdir_ci(root, ms->folder);
    if (named) {
        char *r = find_mvfa_root(named, ms, split);
        free(named);
        return r;
    }
    int n = 0;
    char **dirs = list_names(root, LIST_DIRS, &n);
    char *r = NULL;
    if (dirs && n == 1) {
        char *sub = fs_join(root, dirs[0]);
        char *s = find_subdir_ci(sub, split_name);
        if (s) r = strdup(sub);
        free(s);
        free(sub);
    }
    if (!dirs) err_clear();
    names_free(dirs, n);
    return r;
}

// BMAD raw RESC: RESC/Test/test/{good,Ungood} + RESC/Test/test_label/Ungood; RESC/Train/train/good.
static int read_bmad_resc(DatasetBuilder *b, const MedicalSpec *ms, const char *root, DatasetSplit split,
                          int *found) {
    const char *phase = split == SPLIT_TRAIN ? "Train" : "Test";
    const char *inner = split == SPLIT_TRAIN ? "train" : "test";
    char *pdir = find_subdir_ci(root, phase);
    char *sdir = pdir ? find_subdir_ci(pdir, inner) : NULL;
    *found = sdir != NULL;
    int rc = 0;
    if (sdir) {
        char label_name[64];
        snprintf(label_name, sizeof label_name, "%s_label", inner);
        char *ldir = find_subdir_ci(pdir, label_name);
        char *mdir = ldir ? find_subdir_ci(ldir, "Ungood") : NULL;
        rc = read_split_dir(b, ms, sdir, split, mdir ? mdir : ldir);
        free(mdir);
        free(ldir);
        b->ds->layout = strdup("resc-bmad");
    }
    free(sdir);
    free(pdir);
    return rc;
}

// Kaggle brain_tumor_dataset/{yes,no}: image-level only.
static int read_kaggle_brain(DatasetBuilder *b, const MedicalSpec *ms, const char *root, DatasetSplit split,
                             int *found) {
    char *inner = find_subdir_ci(root, "brain_tumor_dataset");
    const char *dir = inner ? inner : root;
    char *yes = find_subdir_ci(dir, "yes"), *no = find_subdir_ci(dir, "no");
    *found = yes && no;
    int rc = 0;
    if (*found && split == SPLIT_TRAIN) rc = err_set("%s: the Kaggle BrainMRI layout has no train split", root);
    else if (*found) {
        rc = read_label_folder(b, ms, no, "no", 0, NULL);
        if (rc == 0) {
            // no masks: read the anomalous folder as "normal" and relabel, so no mask lookup happens
            int first = b->n;
            rc = read_label_folder(b, ms, yes, "yes", 0, NULL);
            for (int i = first; i < b->n; i++) b->items[i].label = 1;
        }
        b->ds->layout = strdup("brainmri-kaggle");
        b->ds->image_level_only = 1;
    }
    free(yes);
    free(no);
    free(inner);
    return rc;
}

static int read_medical(DatasetBuilder *b, const char *root, DatasetSplit split, const MedicalSpec *ms,
                        int kaggle_brain, int bmad_resc) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    int found = 0, rc = 0;
    if (bmad_resc) { // before the MVFA check: RESC/Test/ would pass for an MVFA test/ folder
        rc = read_bmad_resc(b, ms, root, split, &found);
        if (found || rc) return rc;
    }
    char *top = find_mvfa_root(root, ms, split);
    if (top) {
        const char *split_name = split == SPLIT_TRAIN ? "train" : "test";
        char *sdir = find_subdir_ci(top, split_name);
        int rc = read_split_dir(b, ms, sdir, split, NULL);
        free(sdir);
        free(top);
        b->ds->layout = strdup("mvfa");
        return rc;
    }
    if (kaggle_brain) { rc = read_kaggle_brain(b, ms, root, split, &found); if (found || rc) return rc; }
    return err_set("%s: no %s/ folder (expected the MVFA layout %s/%s/{good,Ungood}/img/)", root,
                   split == SPLIT_TRAIN ? "train" : "test", ms->folder, split == SPLIT_TRAIN ? "train" : "test");
}

int read_brainmri(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    static const MedicalSpec ms = {"brain", "brain", "Brain_AD"};
    return read_medical(b, root, split, &ms, 1, 0);
}

int read_liverct(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    static const MedicalSpec ms = {"liver", "liver", "Liver_AD"};
    return read_medical(b, root, split, &ms, 0, 0);
}

int read_resc(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    static const MedicalSpec ms = {"retina", "retinal OCT", "Retina_RESC_AD"};
    return read_medical(b, root, split, &ms, 0, 1);
}
