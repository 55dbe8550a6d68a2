// SDD = KolektorSDD in the 3-band ZSAD form (each image cut into 3 horizontal bands, names kosXX_PartN_i.png):
//   AdaCLIP:     SDD_anomaly_detection/SDD/{train/good, test/{good,defect}, ground_truth/defect/<stem>_mask.png}
//   AnomalyCLIP: SDD/electrical commutators/{train,test}/... (the class folder name has a space)
// The raw KolektorSDD release (kosNN/PartN.jpg + PartN_label.bmp) must be cut into bands first; it is recognised
// and refused with a message saying so rather than misread.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>

static const char *const normal_tokens[] = {"good", NULL};
static const char *const mask_suffixes[] = {"_mask", "", NULL};

int read_sdd(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    char *raw = find_subdir_ci(root, "kos01");
    if (raw && !tree_is_class_dir(root, split)) {
        free(raw);
        return err_set("%s: raw KolektorSDD layout (kosNN/PartN.jpg); convert it to the 3-band ZSAD layout "
                       "(SDD/{test/good,test/defect,ground_truth/defect}) first",
                       root);
    }
    free(raw);
    TreeSpec spec = {normal_tokens, mask_suffixes, 1, NULL, "electrical commutators"};
    return tree_read_root(b, root, split, &spec);
}
