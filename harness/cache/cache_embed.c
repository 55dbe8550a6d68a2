// Text-embedding cache (see cache_embed.h): an in-memory table keyed by text hash, persisted in HDF5.
#include "harness/cache/cache_embed.h"
#include "harness/cache/cache_h5.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_LEN 64

struct EmbedCache {
    char *path, *encoder_hash, *code_version;
    int dim, n, cap, dirty;
    char (*keys)[HASH_LEN + 1];  // [cap]
    char **texts;                // [cap]
    float *vecs;                 // [cap, dim]
    int *table, table_size;      // open addressing over keys: index+1, 0 empty
    char reason[512];
};

// The first 32 bits of the (uniform) SHA-256 pick the slot.
static unsigned long key_slot(const char *hex, int size) {
    unsigned long v = 0;
    for (int i = 0; i < 8; i++) v = v * 16 + (unsigned long)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return v % (unsigned long)size;
}

static void rehash(EmbedCache *ec) {
    ec->table_size = ec->cap * 2 + 1;
    free(ec->table);
    ec->table = calloc((size_t)ec->table_size, sizeof *ec->table);
    for (int i = 0; i < ec->n; i++) {
        unsigned long s = key_slot(ec->keys[i], ec->table_size);
        while (ec->table[s]) s = (s + 1) % (unsigned long)ec->table_size;
        ec->table[s] = i + 1;
    }
}

static int find(const EmbedCache *ec, const char *hex) {
    if (!ec->table_size) return -1;
    unsigned long s = key_slot(hex, ec->table_size);
    while (ec->table[s]) {
        int i = ec->table[s] - 1;
        if (!memcmp(ec->keys[i], hex, HASH_LEN)) return i;
        s = (s + 1) % (unsigned long)ec->table_size;
    }
    return -1;
}

static void append(EmbedCache *ec, const char *hex, const char *text, const float *vec) {
    if (ec->n == ec->cap) {
        ec->cap = ec->cap ? ec->cap * 2 : 64;
        ec->keys = realloc(ec->keys, (size_t)ec->cap * sizeof *ec->keys);
        ec->texts = realloc(ec->texts, (size_t)ec->cap * sizeof *ec->texts);
        ec->vecs = realloc(ec->vecs, (size_t)ec->cap * (size_t)ec->dim * sizeof *ec->vecs);
        rehash(ec);
    }
    memcpy(ec->keys[ec->n], hex, HASH_LEN + 1);
    ec->texts[ec->n] = strdup(text);
    memcpy(ec->vecs + (size_t)ec->n * (size_t)ec->dim, vec, sizeof(float) * (size_t)ec->dim);
    unsigned long s = key_slot(hex, ec->table_size);
    while (ec->table[s]) s = (s + 1) % (unsigned long)ec->table_size;
    ec->table[s] = ++ec->n;
}

static hid_t key_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, HASH_LEN);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    return t;
}

static hid_t text_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int load(EmbedCache *ec) {
    hid_t f = H5Fopen(ec->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return err_set("%s: cannot open as HDF5", ec->path);
    char old[1024], now[64];
    const char *names[3] = {"encoder_hash", "dim", "code_version"};
    snprintf(now, sizeof now, "%d", ec->dim);
    const char *want[3] = {ec->encoder_hash, now, ec->code_version};
    for (int i = 0; i < 3; i++) {
        if (h5_get_attr_text(f, names[i], old, sizeof old) < 0) snprintf(old, sizeof old, "(missing)");
        if (strcmp(old, want[i])) {
            snprintf(ec->reason, sizeof ec->reason, "attribute %s was '%s', now '%s'", names[i], old, want[i]);
            log_msg("embedding cache %s: %s; starting empty", ec->path, ec->reason);
            H5Fclose(f);
            ec->dirty = 1;  // the next save replaces the stale file
            return 0;
        }
    }
    hid_t dk = H5Dopen2(f, "key", H5P_DEFAULT), dt = H5Dopen2(f, "text", H5P_DEFAULT), dv = H5Dopen2(f, "vector", H5P_DEFAULT);
    int rc = 0;
    if (dk < 0 || dt < 0 || dv < 0) rc = err_set("%s: missing key/text/vector datasets", ec->path);
    hsize_t n = 0;
    if (rc == 0) {
        hid_t sp = H5Dget_space(dk);
        H5Sget_simple_extent_dims(sp, &n, NULL);
        H5Sclose(sp);
    }
    if (rc == 0 && n > 0) {
        char *keys = malloc(n * HASH_LEN);
        char **texts = calloc(n, sizeof *texts);
        float *vecs = malloc(n * (size_t)ec->dim * sizeof *vecs);
        hid_t kt = key_type(), tt = text_type();
        if (H5Dread(dk, kt, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys) < 0 ||
            H5Dread(dt, tt, H5S_ALL, H5S_ALL, H5P_DEFAULT, texts) < 0 ||
            H5Dread(dv, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vecs) < 0)
            rc = err_set("%s: cannot read the cache", ec->path);
        for (hsize_t i = 0; rc == 0 && i < n; i++) {
            char hex[HASH_LEN + 1];
            memcpy(hex, keys + i * HASH_LEN, HASH_LEN);
            hex[HASH_LEN] = '\0';
            append(ec, hex, texts[i] ? texts[i] : "", vecs + i * (size_t)ec->dim);
        }
        for (hsize_t i = 0; i < n; i++) free(texts[i]);  // H5Dread allocated them with malloc
        H5Tclose(kt);
        H5Tclose(tt);
        free(keys);
        free(texts);
        free(vecs);
    }
    if (dk >= 0) H5Dclose(dk);
    if (dt >= 0) H5Dclose(dt);
    if (dv >= 0) H5Dclose(dv);
    H5Fclose(f);
    return rc;
}

EmbedCache *embed_cache_open(const char *path, const char *encoder_hash, int dim, const char *code_version) {
    h5_quiet();
    if (dim <= 0) { err_set("%s: embedding dim must be positive", path); return NULL; }
    EmbedCache *ec = calloc(1, sizeof *ec);
    ec->path = strdup(path);
    ec->encoder_hash = strdup(encoder_hash ? encoder_hash : "");
    ec->code_version = strdup(code_version ? code_version : "");
    ec->dim = dim;
    if (fs_exists(path) && load(ec) < 0) {
        embed_cache_close(ec);
        return NULL;
    }
    return ec;
}

int embed_cache_get(const EmbedCache *ec, const char *text, float *out) {
    char hex[65];
    sha256_hex(text, strlen(text), hex);
    int i = find(ec, hex);
    if (i < 0) return 0;
    memcpy(out, ec->vecs + (size_t)i * (size_t)ec->dim, sizeof(float) * (size_t)ec->dim);
    return 1;
}

int embed_cache_put(EmbedCache *ec, const char *text, const float *vec) {
    char hex[65];
    sha256_hex(text, strlen(text), hex);
    int i = find(ec, hex);
    if (i >= 0) memcpy(ec->vecs + (size_t)i * (size_t)ec->dim, vec, sizeof(float) * (size_t)ec->dim);
    else append(ec, hex, text, vec);
    ec->dirty = 1;
    return 0;
}

int embed_cache_size(const EmbedCache *ec) { return ec->n; }
const char *embed_cache_reason(const EmbedCache *ec) { return ec->reason; }

int embed_cache_save(EmbedCache *ec) {
    if (!ec->dirty) return 0;
    char *tmp = fs_temp_name(ec->path);
    errno = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) { free(tmp); return err_set("%s: cannot create: %s", ec->path, h5_os_reason()); }
    char dim[32];
    snprintf(dim, sizeof dim, "%d", ec->dim);
    int rc = (h5_set_attr_str(f, "encoder_hash", ec->encoder_hash) | h5_set_attr_str(f, "dim", dim) |
              h5_set_attr_str(f, "code_version", ec->code_version)) ? err_set("%s: cannot write attributes", ec->path) : 0;
    hsize_t dims[2] = {(hsize_t)ec->n, (hsize_t)ec->dim};
    hid_t s1 = H5Screate_simple(1, dims, NULL), s2 = H5Screate_simple(2, dims, NULL);
    hid_t kt = key_type(), tt = text_type();
    char *keys = malloc((size_t)ec->n * HASH_LEN + 1);
    for (int i = 0; i < ec->n; i++) memcpy(keys + (size_t)i * HASH_LEN, ec->keys[i], HASH_LEN);
    hid_t dk = H5Dcreate2(f, "key", kt, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t dt = H5Dcreate2(f, "text", tt, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t dv = H5Dcreate2(f, "vector", H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (rc == 0 && (dk < 0 || dt < 0 || dv < 0)) rc = err_set("%s: cannot create datasets", ec->path);
    if (rc == 0 && ec->n > 0 &&
        (H5Dwrite(dk, kt, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys) < 0 ||
         H5Dwrite(dt, tt, H5S_ALL, H5S_ALL, H5P_DEFAULT, ec->texts) < 0 ||
         H5Dwrite(dv, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ec->vecs) < 0))
        rc = err_set("%s: cannot write: %s", ec->path, h5_os_reason());
    free(keys);
    if (dk >= 0) H5Dclose(dk);
    if (dt >= 0) H5Dclose(dt);
    if (dv >= 0) H5Dclose(dv);
    H5Tclose(kt);
    H5Tclose(tt);
    H5Sclose(s1);
    H5Sclose(s2);
    errno = 0; // the data reaches the file at the close: a full disk shows here
    if (H5Fclose(f) < 0 && rc == 0) rc = err_set("%s: cannot close: %s", ec->path, h5_os_reason());
    if (rc == 0) rc = fs_commit(tmp, ec->path);
    else unlink(tmp);
    free(tmp);
    if (rc == 0) ec->dirty = 0;
    return rc;
}

int embed_cache_close(EmbedCache *ec) {
    if (!ec) return 0;
    int rc = embed_cache_save(ec);
    for (int i = 0; i < ec->n; i++) free(ec->texts[i]);
    free(ec->texts);
    free(ec->keys);
    free(ec->vecs);
    free(ec->table);
    free(ec->path);
    free(ec->encoder_hash);
    free(ec->code_version);
    free(ec);
    return rc;
}
