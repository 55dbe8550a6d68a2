// safetensors reader: u64 LE header length, a JSON header {name: {dtype, shape, data_offsets}}, then the byte
// buffer that data_offsets index. The file is memory-mapped; every entry is checked against the mapping before
// any pointer into it is kept, so a lying header gives an error, never a read past the end.
#include "model/checkpoint_table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

// The reference implementation's cap on the JSON header.
#define SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    const char *name;
    CkDtype dtype;
    size_t size;   // bytes per element
} DtypeInfo;

// Every dtype the format defines; only the floating ones convert to float32. Sizes let the others be validated.
static const DtypeInfo DTYPES[] = {
    {"F32", CK_F32, 4},          {"F16", CK_F16, 2},           {"BF16", CK_BF16, 2},
    {"F64", CK_UNSUPPORTED, 8},  {"I64", CK_UNSUPPORTED, 8},   {"I32", CK_UNSUPPORTED, 4},
    {"I16", CK_UNSUPPORTED, 2},  {"I8", CK_UNSUPPORTED, 1},    {"U8", CK_UNSUPPORTED, 1},
    {"U16", CK_UNSUPPORTED, 2},  {"U32", CK_UNSUPPORTED, 4},   {"U64", CK_UNSUPPORTED, 8},
    {"BOOL", CK_UNSUPPORTED, 1}, {"F8_E4M3", CK_UNSUPPORTED, 1}, {"F8_E5M2", CK_UNSUPPORTED, 1},
};

// A JSON number that is a non-negative integer exactly representable in a double.
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_entry(Checkpoint *ck, const cJSON *e, uint64_t buffer_size, Span *span) {
    const char *path = ck->path, *name = e->string;
    if (!cJSON_IsObject(e)) return err_set("%s: tensor %s: header entry is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return err_set("%s: tensor %s: missing or non-string dtype", path, name);
    if (!cJSON_IsArray(sh)) return err_set("%s: tensor %s: missing or non-array shape", path, name);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return err_set("%s: tensor %s: data_offsets must be [begin, end]", path, name);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > CK_MAX_DIMS) return err_set("%s: tensor %s: %d dimensions (at most %d)", path, name, ndim, CK_MAX_DIMS);

    CkTensor *t = ck_add_tensor(ck, name);
    if (!t) return err_set("%s: out of memory", path);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
    t->dtype = CK_UNSUPPORTED;
    size_t elem = 0;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, dt->valuestring) == 0) t->dtype = DTYPES[i].dtype, elem = DTYPES[i].size;
    t->ndim = ndim;
    int d = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, sh) {
        uint64_t n;
        if (json_u64(v, &n) || n > INT64_MAX / 2)
            return err_set("%s: tensor %s: shape entry %d is not a non-negative integer", path, name, d);
        t->shape[d++] = (int64_t)n;
    }
    uint64_t begin, end;
    if (json_u64(cJSON_GetArrayItem(off, 0), &begin) || json_u64(cJSON_GetArrayItem(off, 1), &end))
        return err_set("%s: tensor %s: data_offsets are not non-negative integers", path, name);
    if (end < begin)
        return err_set("%s: tensor %s: data_offsets [%llu, %llu] end before they begin", path, name,
                       (unsigned long long)begin, (unsigned long long)end);
    if (end > buffer_size)
        return err_set("%s: tensor %s: data_offsets [%llu, %llu] past the end of the data (%llu bytes; file truncated?)",
                       path, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)buffer_size);
    int64_t numel = ck_numel(t->shape, ndim);
    char sbuf[128];
    // Unknown dtype names keep their bytes unchecked; asking for such a tensor is an error at request time.
    if (elem) {
        uint64_t need;
        if (numel < 0 || __builtin_mul_overflow((uint64_t)numel, (uint64_t)elem, &need) || need != end - begin)
            return err_set("%s: tensor %s: data_offsets [%llu, %llu] hold %llu bytes but %s shape %s needs %lld x %zu",
                           path, name, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)(end - begin), t->dtype_name, ck_shape_str(t->shape, ndim, sbuf, sizeof sbuf),
                           (long long)numel, elem);
    }
    t->nbytes = end - begin;
    span->begin = begin;
    span->end = end;
    return 0;
}

int safetensors_read(Checkpoint *ck) {
    const char *path = ck->path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set("%s: %s", path, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return err_set("%s: %zu bytes, too short for a safetensors header", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return err_set("%s: mmap: %s", path, strerror(e));
    ck->map = map;
    ck->map_size = size;
    const unsigned char *bytes = map;

    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i];
    if (header_len > SAFETENSORS_MAX_HEADER)
        return err_set("%s: header length %llu exceeds the 100 MB limit (not a safetensors file?)", path,
                       (unsigned long long)header_len);
    if (header_len > size - 8)
        return err_set("%s: header length %llu runs past the end of the file (%zu bytes)", path,
                       (unsigned long long)header_len, size);
    cJSON *root = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)header_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("%s: header is not a JSON object", path);
    }
    uint64_t data_start = 8 + header_len, buffer_size = size - data_start;
    int n = cJSON_GetArraySize(root);
    Span *spans = calloc(n > 0 ? n : 1, sizeof *spans);
    if (!spans) {
        cJSON_Delete(root);
        return err_set("%s: out of memory", path);
    }
    int nspans = 0, rc = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (!entry->string) continue;
        if (strcmp(entry->string, "__metadata__") == 0) continue;
        if ((rc = parse_entry(ck, entry, buffer_size, &spans[nspans])) != 0) break;
        spans[nspans].index = ck->count - 1;
        nspans++;
    }
    if (rc == 0) {
        // No two tensors may share bytes (the reference writer never does; a header that says so is lying).
        qsort(spans, nspans, sizeof *spans, span_cmp);
        uint64_t prev_end = 0;
        int prev = -1;
        for (int i = 0; i < nspans && rc == 0; i++) {
            if (spans[i].end == spans[i].begin) continue;
            if (prev >= 0 && spans[i].begin < prev_end)
                rc = err_set("%s: tensor %s: data_offsets [%llu, %llu] overlap tensor %s", path,
                             ck->tensors[spans[i].index].name, (unsigned long long)spans[i].begin,
                             (unsigned long long)spans[i].end, ck->tensors[prev].name);
            prev_end = spans[i].end;
            prev = spans[i].index;
        }
        for (int i = 0; i < nspans && rc == 0; i++)
            ck->tensors[spans[i].index].data = bytes + data_start + spans[i].begin;
    }
    free(spans);
    cJSON_Delete(root);
    return rc;
}
