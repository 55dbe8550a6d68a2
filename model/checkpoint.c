// Checkpoint: one weights file as a table of named tensors, served as float32 of an exact expected shape.
// The readers (safetensors.c, torch_zip.c) fill and validate the table; this file looks tensors up, checks
// the shape the caller expects and converts F16/BF16 once.
#include "model/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "model/checkpoint_table.h"

// Both formats store little-endian values, which F32 tensors are served in place as.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint reading assumes a little-endian host");

static int tensor_name_cmp(const void *a, const void *b) {
    return strcmp(((const CkTensor *)a)->name, ((const CkTensor *)b)->name);
}

Checkpoint *checkpoint_open_file(const char *path) {
    Checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(path))) {
        free(ck);
        err_set("%s: out of memory", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: %s", path, strerror(errno));
        checkpoint_close(ck);
        return NULL;
    }
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    int rc;
    if (got == 4 && memcmp(magic, "PK\x03\x04", 4) == 0)
        rc = torch_zip_read(ck);
    else if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
        rc = err_set("%s: a legacy (pre-1.6, non-zip) torch.save file; re-save it with a newer torch or convert it "
                     "to model.safetensors", path);
    else
        rc = safetensors_read(ck);
    if (rc == 0) {
        qsort(ck->tensors, ck->count, sizeof *ck->tensors, tensor_name_cmp);
        for (int i = 1; i < ck->count && rc == 0; i++)
            if (strcmp(ck->tensors[i - 1].name, ck->tensors[i].name) == 0)
                rc = err_set("%s: tensor %s: appears twice", path, ck->tensors[i].name);
    }
    if (rc != 0) {
        checkpoint_close(ck);
        return NULL;
    }
    return ck;
}

Checkpoint *checkpoint_open(const char *dir) {
    // pytorch_model.safetensors: the name some third-party conversions of .bin-only repos use.
    static const char *const NAMES[] = {"model.safetensors", "pytorch_model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 3; i++) {
        char *p = fs_join(dir, NAMES[i]);
        if (!p) {
            err_set("%s: out of memory", dir);
            return NULL;
        }
        if (fs_exists(p)) {
            Checkpoint *ck = checkpoint_open_file(p);
            free(p);
            return ck;
        }
        free(p);
    }
    err_set("%s: no model.safetensors or pytorch_model.bin in the checkpoint folder", dir);
    return NULL;
}

static const CkTensor *find_const(const Checkpoint *ck, const char *name) {
    CkTensor key = {.name = (char *)name};
    return bsearch(&key, ck->tensors, ck->count, sizeof key, tensor_name_cmp);
}

int checkpoint_has(const Checkpoint *ck, const char *name) { return find_const(ck, name) != NULL; }

int checkpoint_count(const Checkpoint *ck) { return ck->count; }

const char *checkpoint_entry(const Checkpoint *ck, int i, const char **dtype, const int64_t **shape, int *ndim) {
    if (i < 0 || i >= ck->count) return NULL;
    const CkTensor *t = &ck->tensors[i];
    if (dtype) *dtype = t->dtype_name;
    if (shape) *shape = t->shape;
    if (ndim) *ndim = t->ndim;
    return t->name;
}

int checkpoint_shape(const Checkpoint *ck, const char *name, int64_t shape[8], int *ndim) {
    const CkTensor *t = find_const(ck, name);
    if (!t) return err_set("%s: tensor %s: not in the checkpoint", ck->path, name);
    memcpy(shape, t->shape, sizeof t->shape);
    *ndim = t->ndim;
    return 0;
}

// IEEE half to single, exactly (subnormals normalised, Inf kept, NaN payload shifted as torch does).
static uint32_t f16_to_f32_bits(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return sign | 0x7f800000u | man << 13;
    if (exp == 0) {
        if (man == 0) return sign;
        int shift = 0;
        while (!(man & 0x400)) man <<= 1, shift++;   // normalise: value = man * 2^-24
        return sign | (uint32_t)(127 - 15 + 1 - shift) << 23 | (man & 0x3ff) << 13;
    }
    return sign | (exp + 127 - 15) << 23 | man << 13;
}

// The raw little-endian elements of t, or NULL with err_set (torch storages are read here on first use).
static const unsigned char *tensor_bytes(Checkpoint *ck, CkTensor *t, size_t elem) {
    if (t->storage < 0) return t->data;
    if (torch_zip_load_storage(ck, t->storage, t->name) != 0) return NULL;
    return ck->storages[t->storage].bytes + (size_t)t->storage_offset * elem;
}

const float *checkpoint_tensor_f32(Checkpoint *ck, const char *name, const int64_t *shape, int ndim) {
    CkTensor *t = (CkTensor *)find_const(ck, name);
    char want[160], have[160];
    if (!t) {
        err_set("%s: tensor %s: not in the checkpoint", ck->path, name);
        return NULL;
    }
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        err_set("%s: tensor %s: shape %s in the file, expected %s", ck->path, name,
                ck_shape_str(t->shape, t->ndim, have, sizeof have), ck_shape_str(shape, ndim, want, sizeof want));
        return NULL;
    }
    if (t->problem) {
        err_set("%s: tensor %s: %s", ck->path, name, t->problem);
        return NULL;
    }
    if (t->dtype == CK_UNSUPPORTED) {
        err_set("%s: tensor %s: dtype %s is not supported (F32, F16 and BF16 are)", ck->path, name, t->dtype_name);
        return NULL;
    }
    if (t->owned) return t->owned;
    size_t n = (size_t)ck_numel(t->shape, t->ndim);
    size_t elem = t->dtype == CK_F32 ? 4 : 2;
    const unsigned char *src = tensor_bytes(ck, t, elem);
    if (!src) return NULL;
    if (t->dtype == CK_F32 && ((uintptr_t)src % _Alignof(float)) == 0) return (const float *)src;
    float *out = malloc(n ? n * sizeof *out : 1);
    if (!out) {
        err_set("%s: tensor %s: out of memory for %zu floats", ck->path, name, n);
        return NULL;
    }
    uint32_t *bits = (uint32_t *)out;
    if (t->dtype == CK_F32) {
        memcpy(out, src, n * 4);
    } else if (t->dtype == CK_F16) {
        for (size_t i = 0; i < n; i++) bits[i] = f16_to_f32_bits((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    } else {
        for (size_t i = 0; i < n; i++) bits[i] = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
    }
    t->owned = out;
    return out;
}

const char *checkpoint_hash(Checkpoint *ck) {
    if (!ck->hash[0]) {
        if (ck->map) {
            sha256_hex(ck->map, ck->map_size, ck->hash);
        } else if (sha256_file_hex(ck->path, ck->hash) != 0) {
            ck->hash[0] = '\0';
            return NULL;
        }
    }
    return ck->hash;
}

const char *checkpoint_path(const Checkpoint *ck) { return ck->path; }

void checkpoint_close(Checkpoint *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->count; i++) {
        free(ck->tensors[i].name);
        free(ck->tensors[i].problem);
        free(ck->tensors[i].owned);
    }
    free(ck->tensors);
    if (ck->map) munmap(ck->map, ck->map_size);
    torch_zip_close(ck);
    free(ck->path);
    free(ck);
}
