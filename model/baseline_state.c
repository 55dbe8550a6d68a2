// Training state of a trained baseline: "KANOCLIP-BASELN" (16 bytes with its NUL), u32 version, u32 method,
// u64 parameter count, i64 Adam step, [version 2: i64 step of the second optimiser (MVFA-AD's segmentation
// adapters)], then the parameters and the two Adam moment blocks (float32, little-endian as on the machines we
// run). Written atomically; version 1 for the methods with one optimiser. The blocks come from (and go back to)
// the head's backend.
#include "model/baseline_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[16] = "KANOCLIP-BASELN";
#define HEADER (16 + 4 + 4 + 8 + 8)  // version 1; version 2 has 8 bytes more

int baseline_save(const Baseline *b, const char *path) {
    if (!b->n_params) return err_set("%s: baseline %s has no parameters to save", path, baseline_method_name(b->cfg.method));
    uint32_t version = b->cfg.method == BL_MVFA ? 2 : 1, method = (uint32_t)b->cfg.method;
    size_t n = b->n_params, header = HEADER + (version == 2 ? 8 : 0), size = header + 3 * n * sizeof(float);
    unsigned char *buf = malloc(size), *p = buf;
    if (!buf) return err_set("%s: out of memory", path);
    uint64_t count = n;
    int64_t step = b->step, step2 = b->step_seg;
    memcpy(p, MAGIC, 16), p += 16;
    memcpy(p, &version, 4), p += 4;
    memcpy(p, &method, 4), p += 4;
    memcpy(p, &count, 8), p += 8;
    memcpy(p, &step, 8), p += 8;
    if (version == 2) memcpy(p, &step2, 8), p += 8;
    float *blocks = (float *)p;  // the header is a multiple of 4 bytes: the floats are aligned
    b->be->download(blocks, b->params, n);
    b->be->download(blocks + n, b->m1, n);
    b->be->download(blocks + 2 * n, b->m2, n);
    int rc = fs_write_atomic(path, buf, size);
    free(buf);
    return rc;
}

int baseline_load(Baseline *b, const char *path) {
    size_t size;
    unsigned char *buf = (unsigned char *)fs_read_file(path, &size);
    if (!buf) return -1;
    int rc = -1;
    uint32_t version, method;
    uint64_t count;
    int64_t step, step2;
    size_t header = HEADER;
    if (size < HEADER || memcmp(buf, MAGIC, 16)) { err_set("%s: not a baseline state file", path); goto out; }
    memcpy(&version, buf + 16, 4);
    memcpy(&method, buf + 20, 4);
    memcpy(&count, buf + 24, 8);
    memcpy(&step, buf + 32, 8);
    step2 = step;
    if (version != 1 && version != 2) { err_set("%s: unsupported version %u", path, version); goto out; }
    if (version == 2) {
        header += 8;
        if (size < header) { err_set("%s: %zu bytes, expected at least %zu", path, size, header); goto out; }
        memcpy(&step2, buf + HEADER, 8);
    }
    if (method != (uint32_t)b->cfg.method) {
        err_set("%s: state of baseline %s, the configured method is %s", path,
                baseline_method_name(method < BL_N_METHODS ? (BaselineMethod)method : BL_CLIP),
                baseline_method_name(b->cfg.method));
        goto out;
    }
    if (count != b->n_params) {
        err_set("%s: %llu parameters, the configured %s has %zu (different layers, width or prompt switches?)", path,
                (unsigned long long)count, baseline_method_name(b->cfg.method), b->n_params);
        goto out;
    }
    if (size != header + 3 * count * sizeof(float)) { err_set("%s: %zu bytes, expected %zu", path, size, (size_t)(header + 3 * count * sizeof(float))); goto out; }
    const float *blocks = (const float *)(buf + header);
    b->be->upload(b->params, blocks, count);
    b->be->upload(b->m1, blocks + count, count);
    b->be->upload(b->m2, blocks + 2 * count, count);
    b->step = step;
    b->step_seg = step2;
    rc = 0;
out:
    free(buf);
    return rc;
}

long baseline_step(const Baseline *b) { return (long)b->step; }
