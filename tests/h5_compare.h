// Test helper: two HDF5 files compared as a reader sees them (their root attributes) and as bytes.
#ifndef TESTS_H5_COMPARE_H
#define TESTS_H5_COMPARE_H

#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "harness/cache/cache_h5.h"

// The root attributes of a and b: the same names, the same text.
__attribute__((unused)) static void h5_assert_same_attributes(const char *a, const char *b) {
    hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(fa >= 0 && fb >= 0, "%s, %s: not HDF5", a, b);
    H5O_info_t ia, ib;
    cr_assert(H5Oget_info(fa, &ia) >= 0 && H5Oget_info(fb, &ib) >= 0);
    cr_assert_eq(ia.num_attrs, ib.num_attrs, "%s has %d attributes, %s %d", a, (int)ia.num_attrs, b, (int)ib.num_attrs);
    cr_assert_gt(ia.num_attrs, 0, "%s has no attributes", a);
    for (hsize_t i = 0; i < ia.num_attrs; i++) {
        char name[64], va[1024], vb[1024];
        cr_assert(H5Aget_name_by_idx(fa, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) > 0);
        cr_assert_eq(h5_get_attr_text(fa, name, va, sizeof va), 0);
        cr_assert_eq(h5_get_attr_text(fb, name, vb, sizeof vb), 0, "%s lacks attribute %s", b, name);
        cr_assert_str_eq(va, vb, "attribute %s of %s and %s", name, a, b);
    }
    H5Fclose(fa);
    H5Fclose(fb);
}

// a and b hold the same bytes.
__attribute__((unused)) static void assert_same_bytes(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *ba = fs_read_file(a, &la), *bb = fs_read_file(b, &lb);
    cr_assert(ba && bb, "%s or %s cannot be read", a, b);
    cr_assert(la == lb && !memcmp(ba, bb, la), "%s (%zu bytes) and %s (%zu bytes) differ", a, la, b, lb);
    free(ba);
    free(bb);
}

#endif
