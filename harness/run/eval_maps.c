// The saved maps file (see eval_maps.h).
#include "harness/run/eval_maps.h"

#include <stdlib.h>

int maps_file_start(H5Writer *h5, const ExecDataset *d, int S, int pixel, int bins) {
    hsize_t dm[3] = {(hsize_t)d->n, (hsize_t)S, (hsize_t)S}, dn[1] = {(hsize_t)d->n};
    const char **names = malloc(sizeof *names * (d->n ? d->n : 1));
    for (int i = 0; names && i < d->n; i++) names[i] = d->classes[d->cls[i]]->name;
    int rc = !names || h5w_dataset(h5, "maps", 3, dm) < 0 || h5w_dataset(h5, "scores", 1, dn) < 0 ||
             h5w_dataset_typed(h5, "labels", H5T_STD_U8LE, 1, dn) < 0 ||
             h5w_strings(h5, "classes", names, (hsize_t)d->n) < 0 ||
             (pixel && (h5w_dataset_typed(h5, "masks", H5T_STD_U8LE, 3, dm) < 0 ||
                        h5w_dataset_typed(h5, "has_mask", H5T_STD_U8LE, 1, dn) < 0)) ||
             h5w_attr_str(h5, "dataset", d->name) < 0 || h5w_attr_int(h5, "pixel_bins", bins) < 0;
    free(names);
    return rc ? -1 : 0;
}

int maps_file_row(H5Writer *h5, int i, const float *map, const uint8_t *mask, float score, int label, int has,
                  int pixel) {
    uint8_t lab = (uint8_t)label, hm = (uint8_t)(has > 0);
    if (h5w_write_rows(h5, "maps", i, 1, map) < 0 || h5w_write_rows(h5, "scores", i, 1, &score) < 0 ||
        h5w_write_rows_typed(h5, "labels", H5T_NATIVE_UINT8, i, 1, &lab) < 0)
        return -1;
    if (pixel && (h5w_write_rows_typed(h5, "masks", H5T_NATIVE_UINT8, i, 1, mask) < 0 ||
                  h5w_write_rows_typed(h5, "has_mask", H5T_NATIVE_UINT8, i, 1, &hm) < 0))
        return -1;
    return 0;
}
