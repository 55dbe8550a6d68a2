// The cpu backend: host memory and the CPU ops themselves (the reference path, no indirection but the table's).
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/adam.h"
#include "model/backend.h"
#include "model/kanoclip_losses.h"
#include "model/ops.h"
#include "model/ops_baseline.h"
#include "model/ops_extra.h"
#include "model/ops_heads.h"
#include "model/ops_infer.h"

static float *cpu_alloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) err_set("out of memory for %zu floats (%zu MB)", n, n * 4 >> 20);
    return p;
}
static void cpu_release(float *p) { free(p); }
static void cpu_copy(float *dst, const float *src, size_t n) { memmove(dst, src, n * sizeof(float)); }
static void cpu_zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }
static int cpu_sync(void) { return 0; }
static void cpu_set_precision(GemmPrecision p) { (void)p; }

static const Backend CPU = {
    .name = "cpu", .device = DEVICE_CPU,
    .alloc = cpu_alloc, .release = cpu_release, .upload = cpu_copy, .download = cpu_copy, .copy = cpu_copy,
    .zero = cpu_zero, .sync = cpu_sync, .set_precision = cpu_set_precision,
#define OP(name, params, args) .name = name,
#include "model/backend_ops.def"
#undef OP
};

const Backend *backend_cpu(void) { return &CPU; }

const Backend *backend_for(DeviceKind device) {
    if (device == DEVICE_CUDA) return backend_cuda();
    const char *e = getenv("KANOCLIP_BACKEND");
    if (e && !strcmp(e, "guard")) return backend_guard();
    if (e && !strcmp(e, "profile")) return backend_profile();
    return &CPU;
}
