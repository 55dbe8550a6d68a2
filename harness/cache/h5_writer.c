// HDF5 output through a temporary file (common/fsutil.h: fs_temp_name + fs_commit).
#include "harness/cache/h5_writer.h"
#include "harness/cache/cache_h5.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct H5Writer {
    char *path, *tmp;
    hid_t file;
};

H5Writer *h5w_open(const char *path) {
    H5Writer *w = calloc(1, sizeof *w);
    if (!w) { err_set("%s: out of memory", path); return NULL; }
    w->path = strdup(path);
    w->tmp = fs_temp_name(path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // errors are reported as one line by the caller
    errno = 0;
    w->file = w->tmp ? H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (w->file < 0) {
        int e = errno; // left by the open() under HDF5's file driver
        err_set("%s: cannot create the HDF5 file%s%s", path, e ? ": " : "", e ? strerror(e) : "");
        free(w->path);
        free(w->tmp);
        free(w);
        return NULL;
    }
    return w;
}

int h5w_dataset(H5Writer *w, const char *name, int ndim, const hsize_t *dims) {
    return h5w_dataset_typed(w, name, H5T_IEEE_F32LE, ndim, dims);
}

int h5w_dataset_typed(H5Writer *w, const char *name, hid_t file_type, int ndim, const hsize_t *dims) {
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(w->file, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (d < 0) return err_set("%s: cannot create dataset %s", w->path, name);
    H5Dclose(d);
    return 0;
}

int h5w_write_rows(H5Writer *w, const char *name, hsize_t row0, hsize_t nrows, const float *data) {
    return h5w_write_rows_typed(w, name, H5T_NATIVE_FLOAT, row0, nrows, data);
}

int h5w_write_rows_typed(H5Writer *w, const char *name, hid_t mem_type, hsize_t row0, hsize_t nrows, const void *data) {
    hid_t d = H5Dopen2(w->file, name, H5P_DEFAULT);
    if (d < 0) return err_set("%s: no dataset %s", w->path, name);
    hid_t space = H5Dget_space(d);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8], start[8] = {0}, count[8];
    H5Sget_simple_extent_dims(space, dims, NULL);
    memcpy(count, dims, sizeof(hsize_t) * ndim);
    start[0] = row0;
    count[0] = nrows;
    herr_t rc = H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mem = H5Screate_simple(ndim, count, NULL);
    errno = 0;
    if (rc >= 0) rc = H5Dwrite(d, mem_type, mem, space, H5P_DEFAULT, data);
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(d);
    if (rc < 0) return err_set("%s: writing rows %llu..%llu of %s failed: %s", w->path, (unsigned long long)row0,
                               (unsigned long long)(row0 + nrows), name, h5_os_reason());
    return 0;
}

int h5w_strings(H5Writer *w, const char *name, const char *const *s, hsize_t n) {
    size_t len = 1;
    for (hsize_t i = 0; i < n; i++) len = strlen(s[i]) > len ? strlen(s[i]) : len;
    char *buf = calloc(n ? n : 1, len);
    if (!buf) return err_set("%s: out of memory for %s", w->path, name);
    for (hsize_t i = 0; i < n; i++) memcpy(buf + i * len, s[i], strlen(s[i]));
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, len);
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    hid_t space = H5Screate_simple(1, &n, NULL);
    errno = 0;
    hid_t d = H5Dcreate2(w->file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (d >= 0) H5Dclose(d);
    H5Sclose(space);
    H5Tclose(type);
    free(buf);
    if (rc < 0) return err_set("%s: writing the strings of %s failed: %s", w->path, name, h5_os_reason());
    return 0;
}

static int write_attr(H5Writer *w, const char *name, hid_t type, const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(w->file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    if (rc < 0) return err_set("%s: cannot write attribute %s", w->path, name);
    return 0;
}

int h5w_attr_str(H5Writer *w, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    int rc = write_attr(w, name, type, value);
    H5Tclose(type);
    return rc;
}

int h5w_attr_int(H5Writer *w, const char *name, long value) {
    long long v = value;
    return write_attr(w, name, H5T_NATIVE_LLONG, &v);
}

int h5w_close(H5Writer *w, int commit) {
    int rc = 0;
    errno = 0; // buffered data reaches the file at the close: a full disk shows here
    if (H5Fclose(w->file) < 0) rc = err_set("%s: closing the HDF5 file failed: %s", w->path, h5_os_reason());
    if (commit && rc == 0) rc = fs_commit(w->tmp, w->path);
    else unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
    return rc;
}
