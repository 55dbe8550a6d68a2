// Dataset readers: the 12 on-disk layouts of the zero-shot AD benchmarks and AnomalyCLIP-style meta.json, read
// into one list of samples {image, mask or NULL, class, prompt class, defect folder, label}. Readers only look at
// names (they never decode), so a reader's view of a tree is cheap and exact. Order is deterministic: classes
// sorted by name (byte order), samples sorted by (class, image path).
#ifndef DATASETS_DATASET_H
#define DATASETS_DATASET_H

typedef enum {
#define DATASET(e, name, reader, mask_rule) DATASET_##e,
#include "datasets/dataset_types.def"
#undef DATASET
    DATASET_N_TYPES
} DatasetType;

typedef enum { SPLIT_TEST, SPLIT_TRAIN } DatasetSplit;

// How a decoded mask becomes 0/1. Both read "defect where the value is non-zero"; they differ in which value.
typedef enum {
    MASK_GREY_NONZERO,  // convert to 8-bit grey (PIL 'L': palette looked up, RGB(A) -> luma), defect where > 0:
                        // 0/255 masks, BMAD bone-cmap RGBA masks (AnomalyCLIP `convert('L') > 0`)
    MASK_INDEX_NONZERO, // the stored sample itself (palette index or grey level), defect where != 0, no palette
                        // lookup: VisA multi-class index masks, whose palette may map an index to black
} MaskRule;

typedef struct {
    char *image_path;  // root joined with the relative path (absolute paths in meta.json kept as they are)
    char *mask_path;   // the mask file, or NULL: normal images, and anomalous ones of mask-less data
    int class_index;   // into Dataset.classes
    char *defect;      // defect / specie folder: "good", "broken_large", "ok", "ko", "Ungood"; "" where the
                       // layout has none (VisA csv, DAGM)
    int label;         // 0 normal, 1 anomalous
} Sample;

typedef struct {
    char *name;        // folder or csv name, as results are keyed: "metal_nut", "01", "candle", "brain"
    char *prompt_name; // the class word(s) for text prompts: "metal nut", "electrical commutators", "retinal OCT"
    int n_normal;      // counts over this split's samples of the class
    int n_anomalous;
    int n_masks;       // anomalous samples with a mask file
} DatasetClass;

typedef struct {
    DatasetType type;
    DatasetSplit split;
    char *root;            // as given (a meta.json path given as root is replaced by its folder)
    char *layout;          // which variant was found, for logs: "mvtec", "visa-csv", "visa-1cls", "dagm-kaggle", ...
    Sample *samples;       // (n_samples)
    int n_samples;
    DatasetClass *classes; // (n_classes), sorted by name
    int n_classes;
    int image_level_only;  // 1 when the data has no masks at all: pixel metrics are not computed on it
    MaskRule mask_rule;    // how the loader binarises this dataset's masks
} Dataset;

// Options that only some layouts read; NULL means all defaults.
typedef struct {
    // COVID-19: comma-separated folder names taken as normal (default "NORMAL,Normal") and as anomalous
    // (default NULL = every other class folder). Folders in neither list are skipped.
    const char *normal_folders;
    const char *anomalous_folders;
} DatasetOptions;

// "mvtec", "visa", ... "meta" <-> DatasetType. dataset_type_from_name returns -1 with err_set listing the valid
// names when the name is unknown.
int dataset_type_from_name(const char *name, DatasetType *out);
const char *dataset_type_name(DatasetType type);
// "mvtec visa mpdd btad sdd dagm brainmri liverct resc br35h covid19 headct meta"
const char *dataset_type_names(void);

// Reads the split of the dataset at root. NULL with err_set naming the path at fault: a missing root, a tree
// that matches none of the type's layouts, an anomalous image whose mask is missing where masks are expected,
// a csv/json row naming a file that is not there. A split the layout does not have is an error too.
Dataset *dataset_open(DatasetType type, const char *root, DatasetSplit split, const DatasetOptions *opts);
void dataset_free(Dataset *ds);

// Writes an AnomalyCLIP-compatible meta.json (atomically): {"train": {cls: [record...]}, "test": {...}}, each record
// exactly {img_path, mask_path, cls_name, specie_name, anomaly}; paths relative to the dataset root where they lie
// under it; mask_path "" when absent; anomaly an int. train may be NULL (written as {}).
int dataset_write_meta(const Dataset *test, const Dataset *train, const char *path);

// The prompt form of a class name: underscores to spaces ("metal_nut" -> "metal nut"); malloc'd.
char *dataset_prompt_from_name(const char *name);

#endif
