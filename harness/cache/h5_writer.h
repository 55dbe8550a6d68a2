// Writing float32 HDF5 datasets row block by row block, into a temporary file renamed over the target at the
// end (a killed run never leaves a half-written file under the real name).
#ifndef HARNESS_H5_WRITER_H
#define HARNESS_H5_WRITER_H

#include <hdf5.h>

typedef struct H5Writer H5Writer;

// Creates a temporary file beside path. NULL with err_set naming path.
H5Writer *h5w_open(const char *path);
// A float32 dataset NAME (groups in "a/b" created as needed) of dims[0] rows of dims[1..ndim) each.
int h5w_dataset(H5Writer *w, const char *name, int ndim, const hsize_t *dims);
// Rows [row0, row0 + nrows) of dataset NAME from data (nrows * row size floats, C order).
int h5w_write_rows(H5Writer *w, const char *name, hsize_t row0, hsize_t nrows, const float *data);
// The same for a dataset of another type: file_type on disk (e.g. H5T_STD_U8LE), data in mem_type.
int h5w_dataset_typed(H5Writer *w, const char *name, hid_t file_type, int ndim, const hsize_t *dims);
int h5w_write_rows_typed(H5Writer *w, const char *name, hid_t mem_type, hsize_t row0, hsize_t nrows, const void *data);
// A 1-D dataset of n fixed-length ASCII strings (as long as the longest).
int h5w_strings(H5Writer *w, const char *name, const char *const *s, hsize_t n);
// Attributes on the root group.
int h5w_attr_str(H5Writer *w, const char *name, const char *value);
int h5w_attr_int(H5Writer *w, const char *name, long value);
// Closes; commit = 1 renames the temporary file over path, 0 removes it. -1 with err_set on failure.
int h5w_close(H5Writer *w, int commit);

#endif
