// BTAD (beanTech): BTech_Dataset_transformed/{01,02,03}/{train/ok, test/{ok,ko}, ground_truth/ko/<stem>.{png,bmp}}.
// The normal token is `ok`; masks share the image's stem, with png or bmp extension (01: bmp images, png masks;
// 03: bmp both). The root may be the BTech_Dataset_transformed folder or the folder holding it.
#include "datasets/reader_internal.h"
#include "common/fsutil.h"

#include <stdlib.h>

static const char *const normal_tokens[] = {"ok", "good", NULL};
static const char *const mask_suffixes[] = {"", "_mask", NULL};

int read_btad(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    TreeSpec spec = {normal_tokens, mask_suffixes, 1, NULL, NULL};
    char *inner = find_subdir_ci(root, "BTech_Dataset_transformed");
    int rc = tree_read_root(b, inner ? inner : root, split, &spec);
    free(inner);
    return rc;
}
