// MVTec-AD and MPDD (the same tree): <class>/{train/good, test/{good,<defect>}, ground_truth/<defect>/NNN_mask.png}.
// anomalib also accepts masks named like the image (NNN.png), so both stems are tried.
#include "datasets/reader_internal.h"

static const char *const normal_tokens[] = {"good", NULL};
static const char *const mask_suffixes[] = {"_mask", "", NULL};

int read_mvtec(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    TreeSpec spec = {normal_tokens, mask_suffixes, 1, NULL, NULL};
    return tree_read_root(b, root, split, &spec);
}

int read_mpdd(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    return read_mvtec(b, root, split, opts);
}
