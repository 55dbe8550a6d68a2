// Training state file: "KANOCLIP-STATE\0\0" (16 bytes), u32 version, u32 tensor count, u64 floats per block,
// i64 step, u64 rng[4], then per tensor (u32 name length, name, u32 ndim, u32 shape[3]), then the parameter,
// first-moment and second-moment blocks (float32, little-endian as on the machines we run).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "model/kanoclip_internal.h"

static const char MAGIC[16] = "KANOCLIP-STATE";

int kanoclip_save(const Kanoclip *m, const char *path) {
    char *tmp = fs_temp_name(path);
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) { err_set("%s: cannot write (%s)", tmp, "open failed"); free(tmp); return -1; }
    uint32_t version = 1, n = (uint32_t)m->L.n;
    uint64_t total = m->L.total;
    int64_t step = m->step;
    int ok = fwrite(MAGIC, 1, 16, f) == 16 && fwrite(&version, 4, 1, f) == 1 && fwrite(&n, 4, 1, f) == 1 &&
             fwrite(&total, 8, 1, f) == 1 && fwrite(&step, 8, 1, f) == 1 && fwrite(m->rng, 8, 4, f) == 4;
    for (int i = 0; ok && i < m->L.n; i++) {
        const KanoTensor *t = &m->L.t[i];
        uint32_t len = (uint32_t)strlen(t->name), nd = (uint32_t)t->ndim, sh[3] = {t->shape[0], t->shape[1], t->shape[2]};
        ok = fwrite(&len, 4, 1, f) == 1 && fwrite(t->name, 1, len, f) == len && fwrite(&nd, 4, 1, f) == 1 &&
             fwrite(sh, 4, 3, f) == 3;
    }
    float *host = malloc(sizeof(float) * 3 * total + 1);
    if (host) {  // parameters and both moments, from the backend
        m->be->download(host, m->params, total);
        m->be->download(host + total, m->adam_m, 2 * total);
    }
    ok = ok && host && fwrite(host, 4, 3 * total, f) == 3 * total;
    free(host);
    ok = (fclose(f) == 0) && ok;
    if (!ok) { remove(tmp); free(tmp); return err_set("%s: write failed", path); }
    int rc = fs_commit(tmp, path);
    free(tmp);
    return rc;
}

int kanoclip_load(Kanoclip *m, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open", path);
    char magic[16];
    uint32_t version, n;
    uint64_t total, rng[4];
    int64_t step;
    float *host = NULL;
    int rc = -1;
    if (fread(magic, 1, 16, f) != 16 || memcmp(magic, MAGIC, 16) != 0) { err_set("%s: not a KAnoCLIP state file", path); goto out; }
    if (fread(&version, 4, 1, f) != 1 || version != 1) { err_set("%s: unsupported version", path); goto out; }
    if (fread(&n, 4, 1, f) != 1 || fread(&total, 8, 1, f) != 1 || fread(&step, 8, 1, f) != 1 ||
        fread(rng, 8, 4, f) != 4) { err_set("%s: truncated header", path); goto out; }
    if ((int)n != m->L.n || total != m->L.total) {
        err_set("%s: %u tensors / %llu floats, but the configured model has %d / %zu (different method switches?)",
                path, n, (unsigned long long)total, m->L.n, m->L.total);
        goto out;
    }
    for (int i = 0; i < m->L.n; i++) {
        const KanoTensor *t = &m->L.t[i];
        uint32_t len, nd, sh[3];
        char name[64] = {0};
        if (fread(&len, 4, 1, f) != 1 || len >= sizeof name || fread(name, 1, len, f) != len ||
            fread(&nd, 4, 1, f) != 1 || fread(sh, 4, 3, f) != 3) { err_set("%s: truncated tensor table", path); goto out; }
        if (strcmp(name, t->name) || (int)sh[0] != t->shape[0] || (int)sh[1] != t->shape[1] || (int)sh[2] != t->shape[2]) {
            err_set("%s: tensor %d is %s [%u,%u,%u], the model expects %s [%d,%d,%d]", path, i, name, sh[0], sh[1],
                    sh[2], t->name, t->shape[0], t->shape[1], t->shape[2]);
            goto out;
        }
    }
    host = malloc(sizeof(float) * 3 * total + 1);
    if (!host) { err_set("%s: out of memory for %llu floats", path, (unsigned long long)total); goto out; }
    if (fread(host, 4, 3 * total, f) != 3 * total) { err_set("%s: truncated data", path); goto out; }
    m->be->upload(m->params, host, total);
    m->be->upload(m->adam_m, host + total, 2 * total);
    m->step = step;
    memcpy(m->rng, rng, sizeof rng);
    rc = 0;
out:
    free(host);
    fclose(f);
    return rc;
}
