// pytorch_model.bin: the zip torch.save writes (PREFIX/data.pkl, PREFIX/data/KEY per storage, PREFIX/version;
// PREFIX is the file's stem or "archive"). The pickle gives names and views, libzip the records. Storages are
// read on first request into memory the checkpoint owns (the records are stored uncompressed, but libzip does
// not expose their file offsets, so they are copied rather than mapped).
#include "model/checkpoint_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "common/error.h"
#include "model/torch_pickle.h"

#define MAX_PICKLE_BYTES (256u << 20)

static const char *zip_errstr(int code, char *buf, size_t size) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    snprintf(buf, size, "%s", zip_error_strerror(&e));
    zip_error_fini(&e);
    return buf;
}

// Index of the PREFIX/data.pkl record, with PREFIX copied out; -1 with err_set if there is none.
static int64_t find_pickle(Checkpoint *ck, zip_t *z, char *prefix, size_t size) {
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(z, i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0 && (size_t)(slash - name) < size) {
            memcpy(prefix, name, slash - name);
            prefix[slash - name] = '\0';
            return i;
        }
    }
    return err_set("%s: no PREFIX/data.pkl record in the zip (not a torch.save file?)", ck->path);
}

// Reads record idx whole into a malloc'd buffer of exactly want bytes; reading to the end lets libzip check the CRC.
static unsigned char *read_record(Checkpoint *ck, zip_t *z, int64_t idx, size_t want, const char *what) {
    zip_stat_t st;
    if (zip_stat_index(z, idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        err_set("%s: %s: cannot stat the zip record", ck->path, what);
        return NULL;
    }
    if (st.size < want) {
        err_set("%s: %s: zip record holds %llu bytes, %zu needed", ck->path, what, (unsigned long long)st.size, want);
        return NULL;
    }
    unsigned char *buf = malloc(want ? want : 1);
    zip_file_t *f = buf ? zip_fopen_index(z, idx, 0) : NULL;
    if (!f) {
        err_set("%s: %s: %s", ck->path, what, buf ? zip_error_strerror(zip_get_error(z)) : "out of memory");
        free(buf);
        return NULL;
    }
    size_t got = 0;
    while (got < want) {
        zip_int64_t r = zip_fread(f, buf + got, want - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    unsigned char extra;
    int bad = got != want;
    // At the end of the record one more read returns 0, or an error if the CRC does not match.
    if (!bad && st.size == want && zip_fread(f, &extra, 1) != 0) bad = 1;
    if (bad) {
        err_set("%s: %s: zip record unreadable or corrupt after %zu of %zu bytes (%s)", ck->path, what, got, want,
                zip_error_strerror(zip_file_get_error(f)));
        zip_fclose(f);
        free(buf);
        return NULL;
    }
    zip_fclose(f);
    return buf;
}

typedef struct {
    const char *key;
    int tensor;
} KeyRef;

static int keyref_cmp(const void *a, const void *b) {
    const KeyRef *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->tensor > y->tensor) - (x->tensor < y->tensor);
}

static CkDtype storage_dtype(const char *type) {
    if (strcmp(type, "FloatStorage") == 0) return CK_F32;
    if (strcmp(type, "HalfStorage") == 0) return CK_F16;
    if (strcmp(type, "BFloat16Storage") == 0) return CK_BF16;
    return CK_UNSUPPORTED;
}

// Row-major contiguity as torch defines it (dimensions of size 1 may have any stride).
static int is_contiguous(const PickledTensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != expect) return 0;
        expect *= t->size[d];
    }
    return 1;
}

// One storage per distinct key; each checked against its zip record and the views on it.
static int build_storages(Checkpoint *ck, zip_t *z, const char *prefix, PickledTensor *pt, int n, int *storage_of) {
    KeyRef *refs = malloc((n ? n : 1) * sizeof *refs);
    ck->storages = calloc(n ? n : 1, sizeof *ck->storages);
    if (!refs || !ck->storages) {
        free(refs);
        return err_set("%s: out of memory", ck->path);
    }
    for (int i = 0; i < n; i++) refs[i] = (KeyRef){pt[i].storage_key, i};
    qsort(refs, n, sizeof *refs, keyref_cmp);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        PickledTensor *t = &pt[refs[i].tensor];
        if (i > 0 && strcmp(refs[i - 1].key, refs[i].key) == 0) {
            CkStorage *s = &ck->storages[ck->nstorages - 1];
            if (strcmp(s->dtype_name, t->storage_type) != 0 || s->numel != t->storage_numel)
                rc = err_set("%s: tensor %s: storage %s declared twice with different types or sizes", ck->path, t->name, t->storage_key);
            storage_of[refs[i].tensor] = ck->nstorages - 1;
            continue;
        }
        CkStorage *s = &ck->storages[ck->nstorages];
        if (!(s->key = strdup(t->storage_key))) {
            rc = err_set("%s: out of memory", ck->path);
            break;
        }
        ck->nstorages++;
        snprintf(s->dtype_name, sizeof s->dtype_name, "%s", t->storage_type);
        s->dtype = storage_dtype(t->storage_type);
        s->elem_size = (size_t)torch_storage_elem_size(t->storage_type);
        s->numel = t->storage_numel;
        if (!s->elem_size) {
            rc = err_set("%s: tensor %s: unknown storage type %s", ck->path, t->name, t->storage_type);
            break;
        }
        char record[512];
        snprintf(record, sizeof record, "%s/data/%s", prefix, t->storage_key);
        s->zip_index = zip_name_locate(z, record, 0);
        if (s->zip_index < 0) {
            rc = err_set("%s: tensor %s: storage record %s is missing from the zip", ck->path, t->name, record);
            break;
        }
        zip_stat_t st;
        uint64_t need;
        if (zip_stat_index(z, s->zip_index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
            __builtin_mul_overflow((uint64_t)s->numel, (uint64_t)s->elem_size, &need) || st.size < need)
            rc = err_set("%s: tensor %s: storage record %s is shorter than its %lld elements of %s", ck->path, t->name,
                         record, (long long)s->numel, s->dtype_name);
        storage_of[refs[i].tensor] = ck->nstorages - 1;
    }
    free(refs);
    return rc;
}

int torch_zip_read(Checkpoint *ck) {
    int code = 0;
    char msg[256];
    zip_t *z = zip_open(ck->path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!z) return err_set("%s: not a readable zip (%s)", ck->path, zip_errstr(code, msg, sizeof msg));
    ck->zip = z;
    char prefix[256];
    int64_t pkl_index = find_pickle(ck, z, prefix, sizeof prefix);
    if (pkl_index < 0) return -1;
    // torch >= 2.1 records the byte order of the storages; everything here reads little-endian.
    char record[300];
    snprintf(record, sizeof record, "%s/byteorder", prefix);
    int64_t order_index = zip_name_locate(z, record, 0);
    if (order_index >= 0) {
        unsigned char *order = read_record(ck, z, order_index, 3, record);
        if (!order) return -1;
        int big = memcmp(order, "big", 3) == 0;
        free(order);
        if (big) return err_set("%s: %s says big-endian storages, which are not supported", ck->path, record);
    }
    zip_stat_t st;
    if (zip_stat_index(z, pkl_index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || st.size > MAX_PICKLE_BYTES)
        return err_set("%s: %s/data.pkl: missing size or larger than 256 MB", ck->path, prefix);
    char what[300];
    snprintf(what, sizeof what, "%s/data.pkl", prefix);
    unsigned char *pkl = read_record(ck, z, pkl_index, (size_t)st.size, what);
    if (!pkl) return -1;
    char label[1024];
    snprintf(label, sizeof label, "%s: %s", ck->path, what);
    PickledTensor *pt = NULL;
    int n = 0;
    int rc = torch_pickle_state_dict(pkl, (size_t)st.size, label, &pt, &n);
    free(pkl);
    if (rc != 0) return -1;
    int *storage_of = calloc(n ? n : 1, sizeof *storage_of);
    rc = storage_of ? build_storages(ck, z, prefix, pt, n, storage_of) : err_set("%s: out of memory", ck->path);
    for (int i = 0; i < n && rc == 0; i++) {
        PickledTensor *p = &pt[i];
        CkStorage *s = &ck->storages[storage_of[i]];
        CkTensor *t = ck_add_tensor(ck, p->name);
        if (!t) {
            rc = err_set("%s: out of memory", ck->path);
            break;
        }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", s->dtype_name);
        t->dtype = s->dtype;
        t->ndim = p->ndim;
        memcpy(t->shape, p->size, sizeof p->size);
        t->storage = storage_of[i];
        t->storage_offset = p->offset;
        int64_t numel = ck_numel(p->size, p->ndim), last;
        char sh[160];
        if (numel < 0 || (numel > 0 && (__builtin_add_overflow(p->offset, numel, &last) || last > s->numel)))
            rc = err_set("%s: tensor %s: shape %s at storage offset %lld runs past its storage of %lld elements", ck->path,
                         p->name, ck_shape_str(p->size, p->ndim, sh, sizeof sh), (long long)p->offset, (long long)s->numel);
        else if (!is_contiguous(p)) {
            char st_buf[160], msg2[400];
            snprintf(msg2, sizeof msg2, "non-contiguous strides %s for shape %s (save it with .contiguous())",
                     ck_shape_str(p->stride, p->ndim, st_buf, sizeof st_buf), ck_shape_str(p->size, p->ndim, sh, sizeof sh));
            if (!(t->problem = strdup(msg2))) rc = err_set("%s: out of memory", ck->path);
        }
    }
    free(storage_of);
    torch_pickle_free(pt, n);
    return rc;
}

int torch_zip_load_storage(Checkpoint *ck, int s, const char *tensor) {
    CkStorage *st = &ck->storages[s];
    if (st->bytes) return 0;
    char what[512];
    snprintf(what, sizeof what, "tensor %s: storage %s", tensor, st->key);
    st->bytes = read_record(ck, ck->zip, st->zip_index, (size_t)st->numel * st->elem_size, what);
    return st->bytes ? 0 : -1;
}

void torch_zip_close(Checkpoint *ck) {
    for (int i = 0; i < ck->nstorages; i++) {
        free(ck->storages[i].key);
        free(ck->storages[i].bytes);
    }
    free(ck->storages);
    if (ck->zip) zip_discard(ck->zip);
}
