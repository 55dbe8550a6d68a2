#include "harness/cache/cache_h5.h"

#include <errno.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hid_t h5_float16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    // sign bit 15, exponent bits 10..14, mantissa bits 0..9, bias 15: binary16.
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

const char *h5_os_reason(void) { return errno ? strerror(errno) : "HDF5 reported an error"; }

int h5_set_attr_str(hid_t obj, const char *name, const char *value) {
    return H5LTset_attribute_string(obj, ".", name, value) < 0 ? -1 : 0;
}

int h5_set_attr_long(hid_t obj, const char *name, long value) {
    return H5LTset_attribute_long(obj, ".", name, &value, 1) < 0 ? -1 : 0;
}

int h5_get_attr_text(hid_t obj, const char *name, char *buf, int size) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hsize_t dims[4] = {0};
    H5T_class_t cls;
    size_t tsize = 0;
    if (H5LTget_attribute_info(obj, ".", name, dims, &cls, &tsize) < 0) return -1;
    if (cls == H5T_STRING) {
        char *tmp = malloc(tsize + 1);
        if (H5LTget_attribute_string(obj, ".", name, tmp) < 0) { free(tmp); return -1; }
        tmp[tsize] = '\0';
        snprintf(buf, (size_t)size, "%s", tmp);
        free(tmp);
        return 0;
    }
    if (cls == H5T_INTEGER) {
        long v;
        if (H5LTget_attribute_long(obj, ".", name, &v) < 0) return -1;
        snprintf(buf, (size_t)size, "%ld", v);
        return 0;
    }
    return -1;
}
