// Shared by the reader files (datasets/reader_*.c): the sample builder, folder listings, mask lookup by name, and
// the MVTec-style tree walk that most layouts reuse. Not part of the public API (datasets/dataset.h is).
#ifndef DATASETS_READER_INTERNAL_H
#define DATASETS_READER_INTERNAL_H

#include "datasets/dataset.h"

#include <stddef.h>
#include <stdio.h>

// Samples collected in any order; dataset_open sorts them and builds the class table.
typedef struct {
    Dataset *ds;
    struct BuiltSample { char *image, *mask, *cls, *prompt, *defect; int label; } *items; // (n)
    int n, cap;
} DatasetBuilder;

// Adds one sample (strings copied). mask NULL or "" means none; prompt NULL means from the class name.
void builder_add(DatasetBuilder *b, const char *cls, const char *prompt, const char *image, const char *mask,
                 const char *defect, int label);

// A reader fills the builder (and may set ds->layout, ds->image_level_only, ds->mask_rule); 0 or -1 with err_set.
typedef int (*ReaderFn)(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts);

#define DATASET(e, name, reader, mask_rule) \
    int reader(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts);
#include "datasets/dataset_types.def"
#undef DATASET

// ---- folders ----
// Names in dir, sorted (byte order), hidden entries skipped. kind: LIST_DIRS or LIST_IMAGES (regular files with an
// image extension, any case). NULL with err_set if dir cannot be read; *n gets the count. Free with names_free.
enum { LIST_DIRS, LIST_IMAGES };
char **list_names(const char *dir, int kind, int *n);
void names_free(char **names, int n);
// .png .jpg .jpeg .bmp .tif .tiff, case-insensitive.
int is_image_name(const char *name);
// The child of dir named name, compared case-insensitively, that is a folder: malloc'd path or NULL (no error set).
char *find_subdir_ci(const char *dir, const char *name);
// The first of names (NULL-terminated) found as a sub-folder of dir (case-insensitive).
char *find_subdir_any(const char *dir, const char *const *names);
// Whether name is in the NULL-terminated list, case-insensitively.
int name_in_list(const char *name, const char *const *list);
// name without its extension, malloc'd.
char *stem_of(const char *name);
// Last path component of path (trailing slashes ignored), malloc'd.
char *base_name(const char *path);

// ---- masks matched by name ----
// The image files of a mask folder indexed by stem, so "000" finds "000_mask.png" (suffix "_mask"),
// "0013" finds "0013.bmp" (suffix ""), "0002" finds "0002_label.PNG" (suffix "_label").
typedef struct MaskIndex MaskIndex;
MaskIndex *mask_index_open(const char *dir); // an empty index when dir is NULL or missing
// The mask path for an image stem, trying each suffix in order (NULL-terminated); NULL if none.
const char *mask_index_find(const MaskIndex *mi, const char *stem, const char *const *suffixes);
void mask_index_free(MaskIndex *mi);

// ---- MVTec-style trees: <class>/test/<defect>/img, <class>/ground_truth/<defect>/<stem><suffix>.ext ----
typedef struct {
    const char *const *normal_tokens; // defect folders holding normal images ("good", "ok"), case-insensitive
    const char *const *mask_suffixes; // tried in order in ground_truth/<defect>/
    int with_masks;                   // 1: every anomalous image must have a mask; 0: mask-less data
    const char *class_name;           // NULL: the class folder's name
    const char *prompt;               // NULL: from the class name
} TreeSpec;

// Whether dir looks like one class of such a tree for the split (has test/ or train/).
int tree_is_class_dir(const char *dir, DatasetSplit split);
// Reads one class folder.
int tree_read_class(DatasetBuilder *b, const char *class_dir, const char *class_name, DatasetSplit split,
                    const TreeSpec *spec);
// Reads every class folder under root; if root itself is a class folder, reads it as one class named after it.
// Error naming root if there is none.
int tree_read_root(DatasetBuilder *b, const char *root, DatasetSplit split, const TreeSpec *spec);

#endif
