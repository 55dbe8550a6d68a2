// Test helper: reads the .npy files (float32/int64/uint8, C order) that the reference scripts write with np.save,
// and compares buffers with a stated relative tolerance.
#ifndef TESTS_NPY_H
#define TESTS_NPY_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char dtype[8];   // "<f4", "<i8", "|u1", ...
    int ndim;
    long shape[8];
    size_t count;    // product of shape
    void *data;
} Npy;

// Loads DIR/NAME.npy; aborts the test with the path when the file is missing or malformed.
static Npy npy_load(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing fixture %s (run make fixtures)", path);
    unsigned char magic[10];
    cr_assert_eq(fread(magic, 1, 10, f), 10u, "%s: short file", path);
    cr_assert(memcmp(magic, "\x93NUMPY", 6) == 0, "%s: not an npy file", path);
    size_t hlen = magic[8] | (magic[9] << 8);
    if (magic[6] >= 2) { unsigned char ext[2]; cr_assert_eq(fread(ext, 1, 2, f), 2u); hlen |= (size_t)ext[0] << 16 | (size_t)ext[1] << 24; }
    char *hdr = calloc(1, hlen + 1);
    cr_assert_eq(fread(hdr, 1, hlen, f), hlen, "%s: short header", path);
    Npy a = {0};
    char *d = strstr(hdr, "'descr': '");
    cr_assert_not_null(d, "%s: no descr", path);
    sscanf(d + 10, "%7[^']", a.dtype);
    cr_assert(strstr(hdr, "'fortran_order': False") != NULL, "%s: Fortran order", path);
    char *s = strchr(strstr(hdr, "'shape': "), '(') + 1;
    a.count = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        a.shape[a.ndim] = strtol(s, &s, 10);
        a.count *= (size_t)a.shape[a.ndim++];
    }
    free(hdr);
    size_t esize = (size_t)atoi(a.dtype + 2);
    a.data = malloc(a.count * esize + 1);
    cr_assert_eq(fread(a.data, esize, a.count, f), a.count, "%s: short data", path);
    fclose(f);
    return a;
}

static float *npy_f32(const char *dir, const char *name, size_t *count) {
    Npy a = npy_load(dir, name);
    cr_assert_str_eq(a.dtype, "<f4", "%s/%s.npy: expected float32", dir, name);
    if (count) *count = a.count;
    return a.data;
}

// max |got - want| / (max |want| + tiny): one relative error over the whole buffer.
static double rel_error(const float *got, const float *want, size_t n) {
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) maxdiff = d;  // NaN propagates as failure
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    return maxdiff / (maxref + 1e-30);
}

#define assert_close(got, want, n, tol, what)                                                              \
    do {                                                                                                   \
        double e_ = rel_error((got), (want), (n));                                                         \
        cr_assert(e_ <= (tol), "%s: relative error %.3g > %.1g", (what), e_, (double)(tol));               \
    } while (0)

#endif
