// The cuda backend: the op table bound to model/cuda/ops_cuda.h (name##_cuda), device memory, one stream.
// Downloads wait for the stream (the host reads the result next); a failure seen there is kept for sync().
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "model/backend.h"

#ifdef KANOCLIP_CUDA
#include "model/cuda/ops_cuda.h"

static int failed;              // a failure seen by a download, reported by the next sync
static char failure[512];

static float *cu_alloc(size_t n) {
    float *p = cuda_alloc_floats(n ? n : 1);
    if (p) cuda_zero(p, n ? n : 1);
    return p;
}
static void cu_release(float *p) { cuda_free(p); }
static void cu_download(float *dst, const float *src, size_t n) {
    cuda_download(dst, src, n);
    if (cuda_ops_sync() && !failed) {
        failed = 1;
        snprintf(failure, sizeof failure, "%s", err_msg());
    }
}
static int cu_sync(void) {
    int rc = cuda_ops_sync();
    if (failed) {
        failed = 0;
        return err_set("%s", failure);
    }
    return rc;
}

static const Backend CUDA = {
    .name = "cuda", .device = DEVICE_CUDA,
    .alloc = cu_alloc, .release = cu_release, .upload = cuda_upload, .download = cu_download, .copy = cuda_copy,
    .zero = cuda_zero, .sync = cu_sync, .set_precision = cuda_ops_set_precision,
#define OP(name, params, args) .name = name##_cuda,
#include "model/backend_ops.def"
#undef OP
};

const Backend *backend_cuda(void) {
    DeviceKind k;
    if (device_select("cuda", &k) || cuda_ops_init()) return NULL;
    return &CUDA;
}
#else
const Backend *backend_cuda(void) {
    err_set("CUDA was asked for, but this binary was built without CUDA (install the CUDA toolkit and rebuild)");
    return NULL;
}
#endif
