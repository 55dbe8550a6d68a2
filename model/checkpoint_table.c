// The tensor table the checkpoint readers fill (checkpoint_table.h): adding an entry, element counts that cannot
// overflow, and shapes as text for messages. Its own file so that the readers (safetensors.c, torch_zip.c) and the
// lookups (checkpoint.c) depend on it and not on each other.
#include "model/checkpoint_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CkTensor *ck_add_tensor(Checkpoint *ck, const char *name) {
    if (ck->count == ck->cap) {
        int cap = ck->cap ? 2 * ck->cap : 64;
        CkTensor *t = realloc(ck->tensors, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        ck->tensors = t;
        ck->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return NULL;
    CkTensor *t = &ck->tensors[ck->count++];
    memset(t, 0, sizeof *t);
    t->name = copy;
    t->storage = -1;
    return t;
}

int64_t ck_numel(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, shape[i], &n)) return -1;
    }
    return n;
}

const char *ck_shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t at = 0;
    at += snprintf(buf + at, at < size ? size - at : 0, "[");
    for (int i = 0; i < ndim; i++)
        at += snprintf(buf + at, at < size ? size - at : 0, i ? ", %lld" : "%lld", (long long)shape[i]);
    snprintf(buf + at, at < size ? size - at : 0, "]");
    return buf;
}
