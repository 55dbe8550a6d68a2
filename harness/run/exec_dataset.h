// A dataset as a run uses it: the reader's test split (datasets/dataset.h), the classes the run's role keeps
// (the synthetic zero-shot split, demo_assets.h), content hashes for the feature cache, and ground-truth masks
// at the model's input size.
#ifndef HARNESS_EXEC_DATASET_H
#define HARNESS_EXEC_DATASET_H

#include <stdint.h>

#include "datasets/dataset.h"
#include "datasets/image.h"
#include "harness/config/settings.h"

typedef struct ExecDataset {
    char *name, *type, *root;         // as the config names it
    Dataset *ds;                      // the reader's test split
    int n;                            // samples used
    const Sample **s;                 // (n) in the reader's order (class, then path)
    int *cls;                         // (n) local class id
    int n_classes;
    const DatasetClass **classes;     // (n_classes) local class -> the reader's class
    char (*hash)[65];                 // (n) SHA-256 of each image file, after exec_dataset_hash
    char manifest[65];                // SHA-256 over (class, relative path, label, image hash) of every sample
    int resize_masks;                 // data.resize_masks: a mask of another size than its image is resized, not an error
    ImageResizeMode resize;           // model.resize: images and masks are brought to S x S this way
} ExecDataset;

// Opens the test split of d (train_role: 1 for data.train, 0 for an eval dataset). -1 with err_set naming the
// key and what is missing (and how to get it).
int exec_dataset_open(const Settings *s, const DatasetSettings *d, int train_role, ExecDataset *out);
// Hashes every image file (OpenMP) and the manifest. -1 with err_set naming the file.
int exec_dataset_hash(ExecDataset *d);
void exec_dataset_free(ExecDataset *d);

// The ground truth of sample i at S x S as AnomalyCLIP makes it: the mask binarised by the dataset's rule, as
// 0/255 resized with PIL's bilinear filter, then > 0.5 (of 255). out (S,S) 0/1; all zero for a normal image.
// Returns 1 when the sample has pixel ground truth (normal images of a dataset with masks, or a mask file),
// 0 when it has none (image-level data, an anomalous image without a mask), -1 with err_set on a bad file or on a
// mask whose size is not its image's (naming the mask, both sizes and data.resize_masks), unless d->resize_masks.
int exec_dataset_mask(const ExecDataset *d, int i, int S, uint8_t *out);

// Samples idx[0..B) decoded, resized to S x S (bicubic, as d->resize) and normalised with mean/std into pixels
// (B,3,S,S), on the OpenMP threads. -1 with the first failing image's error.
int exec_dataset_load_pixels(const ExecDataset *d, const int *idx, int B, int S, const float *mean, const float *std,
                             float *pixels);

#endif
