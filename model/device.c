// Device selection: the CUDA runtime is asked only when the binary has CUDA built in.
#include "model/device.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"

#ifdef KANOCLIP_CUDA
#include <cuda_runtime_api.h>
#endif

int device_cuda_built(void) {
#ifdef KANOCLIP_CUDA
    return 1;
#else
    return 0;
#endif
}

#ifdef KANOCLIP_CUDA
// The device count, or -1 with the runtime's reason in why.
static int cuda_device_count(const char **why) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        *why = cudaGetErrorString(e);
        cudaGetLastError();  // reset the runtime's last error so later calls do not report this one
        return -1;
    }
    if (n == 0) *why = "0 devices";
    return n;
}
#endif

int device_available(void) {
#ifdef KANOCLIP_CUDA
    const char *why = NULL;
    return cuda_device_count(&why) > 0;
#else
    return 0;
#endif
}

const char *device_describe(DeviceKind kind) {
    if (kind == DEVICE_CPU) return "cpu";
#ifdef KANOCLIP_CUDA
    static _Thread_local char line[256];
    const char *why = NULL;
    if (cuda_device_count(&why) <= 0) {
        snprintf(line, sizeof line, "cuda: no device (%s)", why);
        return line;
    }
    struct cudaDeviceProp p;
    int dev = 0;
    cudaGetDevice(&dev);
    if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "cuda: device properties unavailable";
    snprintf(line, sizeof line, "cuda: %s (sm_%d%d, %.0f GB, %d SMs)", p.name, p.major, p.minor,
             p.totalGlobalMem / 1e9, p.multiProcessorCount);
    return line;
#else
    return "cuda: not built";
#endif
}

int device_select(const char *name, DeviceKind *out) {
    if (!name || !strcmp(name, "cpu")) {
        *out = DEVICE_CPU;
        return 0;
    }
    if (strcmp(name, "cuda") != 0) return err_set("unknown device '%s' (expected cpu or cuda)", name);
#ifdef KANOCLIP_CUDA
    const char *why = NULL;
    if (cuda_device_count(&why) <= 0)
        return err_set("CUDA was asked for, but no CUDA device found (cudaGetDeviceCount: %s)", why);
    *out = DEVICE_CUDA;
    return 0;
#else
    return err_set("CUDA was asked for, but this binary was built without CUDA (install the CUDA toolkit and "
                   "rebuild)");
#endif
}

int gemm_precision_parse(const char *name, GemmPrecision *out) {
    static const char *names[] = {"fp32", "tf32", "bf16"};
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (GemmPrecision)i;
            return 0;
        }
    return err_set("unknown precision '%s' (expected fp32, tf32 or bf16)", name ? name : "");
}

const char *gemm_precision_name(GemmPrecision p) {
    return p == GEMM_TF32 ? "tf32" : p == GEMM_BF16 ? "bf16" : "fp32";
}

GemmPrecision gemm_precision_on(DeviceKind device, GemmPrecision asked) {
    return device == DEVICE_CPU ? GEMM_FP32 : asked;
}
