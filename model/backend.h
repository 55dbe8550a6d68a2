// Where the trainable heads run: a table of ops over buffers that belong to the backend (llm.c's forward/backward
// pairs, model/backend_ops.def), chosen at run time. The heads (model/kanoclip*.c, bicmci.c, deform_attn.c, ...)
// are written once against it:
//   cpu    the reference: host memory, the CPU ops (model/ops*.h), exactly the arithmetic of a direct call;
//   guard  the CPU ops over memory the host cannot touch outside a backend call (pages kept PROT_NONE except
//          inside an op or an explicit copy), and every pointer an op receives must be the backend's: a host
//          read or write of a backend buffer, or a host buffer handed to an op, crashes at once. It proves
//          without a GPU that the orchestration would run on one (make test runs the heads through it);
//   cuda   the same ops on a CUDA device (model/cuda/ops_cuda.h), queued on one stream.
// Buffers cross between host and backend only through upload / download.
#ifndef MODEL_BACKEND_H
#define MODEL_BACKEND_H

#include <stddef.h>
#include <stdio.h>

#include "model/device.h"

typedef struct Backend {
    const char *name;        // "cpu", "guard", "cuda"
    DeviceKind device;       // where the memory is: DEVICE_CPU for cpu and guard
    // memory: alloc returns n zeroed floats (NULL with err_set); release(NULL) does nothing
    float *(*alloc)(size_t n);
    void (*release)(float *p);
    void (*upload)(float *dst, const float *host_src, size_t n);
    void (*download)(float *host_dst, const float *src, size_t n);
    void (*copy)(float *dst, const float *src, size_t n);
    void (*zero)(float *p, size_t n);
    // waits for queued work; 0, or -1 with err_set naming the first failure since the last sync
    int (*sync)(void);
    // the GEMM precision of the following ops (the CPU computes in fp32 whatever is asked)
    void (*set_precision)(GemmPrecision p);
#define OP(name, params, args) void (*name) params;
#include "model/backend_ops.def"
#undef OP
} Backend;

// The backend for a device: DEVICE_CPU gives the cpu backend (or guard where KANOCLIP_BACKEND=guard is set, so a
// whole run can be proven through it); DEVICE_CUDA the cuda one (NULL with err_set without CUDA or a GPU).
const Backend *backend_for(DeviceKind device);
const Backend *backend_cpu(void);
const Backend *backend_guard(void);
// profile: the cpu backend timing each op (KANOCLIP_BACKEND=profile); the report lists the ops taking at least
// min_share of the total, largest first, and returns the total seconds spent in ops since the last reset.
const Backend *backend_profile(void);
void backend_profile_reset(void);
double backend_profile_report(FILE *f, double min_share);
const Backend *backend_cuda(void);  // NULL with err_set when this binary has no CUDA or no device answers

// guard only: 1 when p lies in its memory (tests), and the number of op calls so far.
int backend_guard_owns(const void *p);
long backend_guard_calls(void);

#endif
