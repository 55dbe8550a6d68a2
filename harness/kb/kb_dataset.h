// What the knowledge base needs from a dataset: its classes and its anomalous images with their class.
// kb_dataset_load is the seam to the dataset readers (datasets/dataset.h); kb_dataset_walk takes a plain folder
// (`--images DIR`, `--classes a,b,c`) so that `kanoclip kb build` works without a reader.
#ifndef HARNESS_KB_DATASET_H
#define HARNESS_KB_DATASET_H

typedef struct {
    char *class_name;
    char *path;  // as opened (root joined with rel)
    char *rel;   // relative to the dataset root, as recorded in the cache
} KbImage;

typedef struct {
    char *type;      // dataset type ("" when unknown), chooses the shipped descriptions
    int n_classes;
    char **classes;  // in dataset order
    char **prompt_names;  // (n_classes) the reader's class words ("metal nut"), or NULL when not from a reader
    int n_images;
    KbImage *images; // anomalous images, grouped by class in class order, sorted by rel within a class
} KbDataset;

// The classes and anomalous test images of dataset `type` (mvtec, visa, ... meta; datasets/dataset.h) under root,
// as its reader sees the test split: every class in the reader's order with its prompt name, the anomalous
// samples grouped by class and sorted by path within it. -1 with err_set naming the type or the path at fault.
int kb_dataset_load(const char *type, const char *root, KbDataset *out);
// Walks images_dir (may be NULL: no images): every PNG, JPEG, BMP, TIFF or GIF under images_dir/<class>/ is an
// anomalous image of <class>, except under a folder named good, ok, normal, train, ground_truth, masks, label
// or anomaly_mask (any case), and except mask files (*_mask.*, *_label.*). classes_csv ("a,b,c"; may be NULL)
// fixes the classes and their order and keeps only their images; without it the classes are the sub-folders
// that hold images. Images directly in images_dir belong to the one class when exactly one is given.
int kb_dataset_walk(const char *images_dir, const char *classes_csv, KbDataset *out);
void kb_dataset_free(KbDataset *d);

#endif
