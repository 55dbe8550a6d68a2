// cuDNN's fused scaled-dot-product attention (flash attention) for inference, through cuDNN's C backend API (the
// graph API without the C++ frontend). The graph is the one cuDNN's SDPA pattern matcher takes (the frontend's
// composite SDPA node, as built for cuDNN 9 before its unified SDPA operation):
//
//   S = matmul(Q, Kᵀ) → S·scale → [causal: select(row >= col, S, -inf)] → softmax as
//   max, sub, exp, sum, log + add (the statistics; virtual: inference), div → P (bf16/fp16) → O = matmul(P, V)
//
// with every intermediate virtual, so one fused kernel runs it and no score ever reaches memory. Q, K, V and O
// are bf16 or fp16 (the fused engines take no fp32 I/O), in compact (B, T, H·hd) row-major buffers of this file
// (BSHD in cuDNN's words): the fp32 inputs, whatever their row strides, are rounded into them and the output
// widened back into the caller's rows, on the op stream.
//
// libcudnn.so.9 is opened at run time (dlopen), not linked: a binary built where cuDNN's headers are still starts
// where the library is missing, and attention falls back to the other paths. Plans (graph, engine from the
// heuristics, finalized execution plan) are cached per shape; a shape that fails to plan is remembered.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/error.h"
}
#include "model/cuda/cuda_internal.cuh"
#include "model/cuda/ops_cuda.h"

#ifndef KANOCLIP_CUDNN

extern "C" int attention_cudnn_built(void) { return 0; }
extern "C" int attention_cudnn_available(void) {
    return err_set("cuDNN: this build has no cuDNN path (cuDNN's headers were not found at build time)"), 0;
}
extern "C" long attention_cudnn_version(void) { return 0; }
extern "C" int attention_cudnn_plan(int, int, int, int, int, int, int) {
    return err_set("cuDNN: this build has no cuDNN path (cuDNN's headers were not found at build time)");
}
extern "C" int attention_cudnn_forward(float *, const float *, const float *, const float *, int, int, int, int, int,
                                       int, int, int, int, float, int) {
    return err_set("cuDNN: this build has no cuDNN path (cuDNN's headers were not found at build time)");
}
extern "C" void attention_cudnn_shutdown(void) {}

#else

#include <cudnn_graph.h>
#include <dlfcn.h>

// ---------------------------------------------------------------------------------------------------------------
// fp32 rows <-> compact half-precision rows

template <typename T> __device__ __forceinline__ T narrow(float x);
template <> __device__ __forceinline__ __nv_bfloat16 narrow<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half narrow<__half>(float x) { return __float2half_rn(x); }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float widen(__half x) { return __half2float(x); }

// dst (rows, cols) compact = src (rows, cols) of row stride ld, rounded to nearest even. V4: four columns per
// thread (cols and ld multiples of 4, src 16-byte aligned). blockIdx.y strides over the rows.
template <typename T, bool V4>
__global__ void narrow_rows_kernel(T *dst, const float *src, int rows, int cols, int ld) {
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * (V4 ? 4 : 1);
    if (c >= cols) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const float *s = src + (size_t)r * ld + c;
        T *d = dst + (size_t)r * cols + c;
        if (V4) {
            float4 x = *(const float4 *)s;
            d[0] = narrow<T>(x.x); d[1] = narrow<T>(x.y); d[2] = narrow<T>(x.z); d[3] = narrow<T>(x.w);
        } else {
            d[0] = narrow<T>(s[0]);
        }
    }
}

// dst (rows, cols) of row stride ld = src (rows, cols) compact, widened to fp32.
template <typename T, bool V4>
__global__ void widen_rows_kernel(float *dst, int ld, const T *src, int rows, int cols) {
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * (V4 ? 4 : 1);
    if (c >= cols) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const T *s = src + (size_t)r * cols + c;
        float *d = dst + (size_t)r * ld + c;
        if (V4) {
            *(float4 *)d = make_float4(widen(s[0]), widen(s[1]), widen(s[2]), widen(s[3]));
        } else {
            d[0] = widen(s[0]);
        }
    }
}

static dim3 rows_grid(int rows, int cols, bool v4, unsigned threads) {
    unsigned units = (unsigned)(v4 ? cols / 4 : cols);
    return dim3((units + threads - 1) / threads, (unsigned)(rows < 32768 ? rows : 32768));
}

template <typename T>
static void narrow_rows(T *dst, const float *src, int rows, int cols, int ld) {
    bool v4 = cols % 4 == 0 && ld % 4 == 0 && ((uintptr_t)src & 15) == 0;
    dim3 grid = rows_grid(rows, cols, v4, 128);
    if (v4) CUDA_LAUNCH("cuDNN attention: inputs", (narrow_rows_kernel<T, true>), grid, 128, 0, dst, src, rows, cols,
                        ld);
    else CUDA_LAUNCH("cuDNN attention: inputs", (narrow_rows_kernel<T, false>), grid, 128, 0, dst, src, rows, cols,
                     ld);
}

template <typename T>
static void widen_rows(float *dst, int ld, const T *src, int rows, int cols) {
    bool v4 = cols % 4 == 0 && ld % 4 == 0 && ((uintptr_t)dst & 15) == 0;
    dim3 grid = rows_grid(rows, cols, v4, 128);
    if (v4) CUDA_LAUNCH("cuDNN attention: output", (widen_rows_kernel<T, true>), grid, 128, 0, dst, ld, src, rows,
                        cols);
    else CUDA_LAUNCH("cuDNN attention: output", (widen_rows_kernel<T, false>), grid, 128, 0, dst, ld, src, rows,
                     cols);
}

// ---------------------------------------------------------------------------------------------------------------
// the library, opened at run time

// The entry points this file calls, looked up by name in libcudnn.so.9 (types from cudnn_graph.h).
#define CUDNN_ENTRY_POINTS(X)                                                                                      \
    X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream)                     \
    X(cudnnBackendCreateDescriptor) X(cudnnBackendDestroyDescriptor) X(cudnnBackendSetAttribute)                   \
    X(cudnnBackendGetAttribute) X(cudnnBackendFinalize) X(cudnnBackendExecute)

static struct {
#define X(f) decltype(&::f) f;
    CUDNN_ENTRY_POINTS(X)
#undef X
    decltype(&::cudnnGetLastErrorString) last_error;  // optional: a fuller reason for a failed call
    void *lib;
    cudnnHandle_t handle;
    int state;  // 0 not tried, 1 ready, -1 unavailable (why says why)
    long version;
    char why[320];
} L;

// Deprecated in the 9.x headers (the handle now comes with the execute call) but still required by the 9.x
// libraries before that change, so set by number (the enumerators' deprecation attribute would warn).
static const cudnnBackendAttributeName_t ATTR_OPERATIONGRAPH_HANDLE = (cudnnBackendAttributeName_t)800;
static const cudnnBackendAttributeName_t ATTR_EXECUTION_PLAN_HANDLE = (cudnnBackendAttributeName_t)400;

static int unavailable(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int unavailable(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L.why, sizeof L.why, fmt, ap);
    va_end(ap);
    L.state = -1;
    fprintf(stderr, "kanoclip: CUDA attention: cuDNN not used: %s\n", L.why);
    return err_set("%s", L.why);
}

static int lib_load(void) {
    if (L.state > 0) return 0;
    if (L.state < 0) return err_set("%s", L.why);
    if (!cuda_stream_()) return err_set("cuDNN: CUDA ops used before cuda_ops_init");
    const char *names[] = {"libcudnn.so.9", "libcudnn.so"};
    char tried[200] = "";
    for (int i = 0; i < 2 && !L.lib; i++) {
        L.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!L.lib && i == 0) snprintf(tried, sizeof tried, "%s", dlerror());
    }
    if (!L.lib) return unavailable("cuDNN: libcudnn.so.9 not found at run time (%s)", tried);
#define X(f)                                                                                                       \
    if (!(L.f = (decltype(L.f))dlsym(L.lib, #f))) return unavailable("cuDNN: the library lacks %s", #f);
    CUDNN_ENTRY_POINTS(X)
#undef X
    L.last_error = (decltype(L.last_error))dlsym(L.lib, "cudnnGetLastErrorString");
    L.version = (long)L.cudnnGetVersion();
    if (L.version < 90000 || L.version >= 100000)
        return unavailable("cuDNN: version %ld found, 9.x needed (this build's headers are %d.%d)", L.version,
                           CUDNN_MAJOR, CUDNN_MINOR);
    cudnnStatus_t s = L.cudnnCreate(&L.handle);
    if (s != CUDNN_STATUS_SUCCESS)
        return unavailable("cuDNN %ld: cudnnCreate: %s", L.version, L.cudnnGetErrorString(s));
    s = L.cudnnSetStream(L.handle, cuda_stream_());
    if (s != CUDNN_STATUS_SUCCESS)
        return unavailable("cuDNN %ld: cudnnSetStream: %s", L.version, L.cudnnGetErrorString(s));
    L.state = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// building a graph: every descriptor made is kept (the plan refers to them) and freed with the plan

typedef cudnnBackendDescriptor_t Desc;
enum { MAX_DESCS = 64, MAX_OPS = 24 };  // the causal graph makes 48 descriptors, 14 of them operations

struct Builder {
    Desc descs[MAX_DESCS];
    int n;
    Desc ops[MAX_OPS];
    int n_ops;
    cudnnStatus_t status;  // the first failure; later calls do nothing
    char failed_at[96];
};

static void fail_at(Builder *b, cudnnStatus_t s, const char *what) {
    if (b->status != CUDNN_STATUS_SUCCESS) return;
    b->status = s;
    snprintf(b->failed_at, sizeof b->failed_at, "%s", what);
}

static Desc make(Builder *b, cudnnBackendDescriptorType_t type, const char *what) {
    if (b->status != CUDNN_STATUS_SUCCESS) return NULL;
    if (b->n == MAX_DESCS) {
        fail_at(b, CUDNN_STATUS_INTERNAL_ERROR, "too many descriptors");
        return NULL;
    }
    Desc d = NULL;
    cudnnStatus_t s = L.cudnnBackendCreateDescriptor(type, &d);
    if (s != CUDNN_STATUS_SUCCESS) {
        fail_at(b, s, what);
        return NULL;
    }
    return b->descs[b->n++] = d;
}

static void set(Builder *b, Desc d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t n,
                const void *value, const char *what) {
    if (b->status != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t s = L.cudnnBackendSetAttribute(d, name, type, n, value);
    if (s != CUDNN_STATUS_SUCCESS) fail_at(b, s, what);
}

static void finalize(Builder *b, Desc d, const char *what) {
    if (b->status != CUDNN_STATUS_SUCCESS) return;
    cudnnStatus_t s = L.cudnnBackendFinalize(d);
    if (s != CUDNN_STATUS_SUCCESS) fail_at(b, s, what);
}

static void free_descs(Desc *d, int n) {
    for (int i = n - 1; i >= 0; i--)
        if (d[i]) L.cudnnBackendDestroyDescriptor(d[i]);
}

// A 4-d tensor; by_value: a scalar whose host address goes in the variant pack.
static Desc tensor(Builder *b, int64_t uid, cudnnDataType_t type, const int64_t dim[4], const int64_t stride[4],
                   bool is_virtual, bool by_value) {
    Desc t = make(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    int64_t align = 16;
    set(b, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
    set(b, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim, "tensor dimensions");
    set(b, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, stride, "tensor strides");
    set(b, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor id");
    set(b, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    if (is_virtual) set(b, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "virtual tensor");
    if (by_value) set(b, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "by-value tensor");
    finalize(b, t, "tensor");
    return t;
}

static void add_op(Builder *b, Desc op) {
    if (b->status != CUDNN_STATUS_SUCCESS) return;
    if (b->n_ops == MAX_OPS) return fail_at(b, CUDNN_STATUS_INTERNAL_ERROR, "too many operations");
    b->ops[b->n_ops++] = op;
}

// y = mode(x[, b2[, t]]); axis >= 0 for GEN_INDEX.
static void pointwise(Builder *b, cudnnPointwiseMode_t mode, cudnnDataType_t prec, Desc x, Desc b2, Desc t, Desc y,
                      int64_t axis, const char *what) {
    Desc pw = make(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, what);
    set(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, what);
    set(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, what);
    if (axis >= 0) set(b, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, what);
    finalize(b, pw, what);
    Desc op = make(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, what);
    float one = 1.0f;
    set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, what);
    set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, what);
    if (b2) set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b2, what);
    if (t) set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, what);
    set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, what);
    set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, what);
    set(b, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, what);
    finalize(b, op, what);
    add_op(b, op);
}

static void reduction(Builder *b, cudnnReduceTensorOp_t mode, Desc x, Desc y, const char *what) {
    cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    Desc rd = make(b, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, what);
    set(b, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, what);
    set(b, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, what);
    finalize(b, rd, what);
    Desc op = make(b, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, what);
    set(b, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, what);
    set(b, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, what);
    set(b, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd, what);
    finalize(b, op, what);
    add_op(b, op);
}

static void matmul(Builder *b, Desc a, Desc bm, Desc c, const char *what) {
    cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    Desc mm = make(b, CUDNN_BACKEND_MATMUL_DESCRIPTOR, what);
    set(b, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32, what);
    finalize(b, mm, what);
    Desc op = make(b, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, what);
    set(b, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, what);
    set(b, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bm, what);
    set(b, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, what);
    set(b, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, what);
    finalize(b, op, what);
    add_op(b, op);
}

// ---------------------------------------------------------------------------------------------------------------
// plans

enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG_INF, UID_VIRTUAL = 100 };
enum { MAX_PLANS = 16 };

typedef struct {
    int B, Tq, Tk, H, hd, causal, fp16;
} Shape;

typedef struct {
    int used;
    Shape s;
    int ok;                   // 1 planned; 0 failed (why says why; not retried)
    Desc descs[MAX_DESCS + 2];  // everything the plan refers to: engine configuration, graph, plan
    int n_descs;
    Desc plan;
    int64_t workspace;
    float scale, neg_inf;     // by-value scalars (their addresses go in the variant pack)
    unsigned long long last_use;
    char why[256];
} Plan;

static struct {
    Plan plans[MAX_PLANS];
    unsigned long long clock;
    void *buf;                // q | k | v | o | cuDNN workspace
    size_t buf_bytes;
} C;

static void plan_free(Plan *p) {
    if (p->used && p->n_descs) {
        cudaStreamSynchronize(cuda_stream_());  // queued work may still run this plan's kernels
        free_descs(p->descs, p->n_descs);
    }
    memset(p, 0, sizeof *p);
}

static const char *status_text(cudnnStatus_t s) { return L.cudnnGetErrorString ? L.cudnnGetErrorString(s) : "?"; }

// The reason of the last failed cuDNN call, when the library tells it ("" otherwise).
static const char *last_error(void) {
    static char msg[256];
    msg[0] = 0;
    if (L.last_error) L.last_error(msg, sizeof msg);
    return msg;
}

// Builds the graph of shape s and finalizes the first engine configuration the heuristics offer that works.
static void plan_build(Plan *p) {
    const Shape &s = p->s;
    Builder *b = (Builder *)calloc(1, sizeof(Builder));
    if (!b) {
        snprintf(p->why, sizeof p->why, "out of host memory");
        return;
    }
    const int64_t B = s.B, H = s.H, Tq = s.Tq, Tk = s.Tk, D = s.hd, C = (int64_t)s.H * s.hd;
    cudnnDataType_t io = s.fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
    cudnnDataType_t i32 = CUDNN_DATA_INT32, boolean = CUDNN_DATA_BOOLEAN;
    // compact (B, T, H, hd) rows seen as (B, H, T, hd); Kᵀ as (B, H, hd, Tk)
    const int64_t q_dim[4] = {B, H, Tq, D}, q_str[4] = {Tq * C, D, C, 1};
    const int64_t kt_dim[4] = {B, H, D, Tk}, kt_str[4] = {Tk * C, D, 1, C};
    const int64_t v_dim[4] = {B, H, Tk, D}, v_str[4] = {Tk * C, D, C, 1};
    const int64_t s_dim[4] = {B, H, Tq, Tk}, s_str[4] = {H * Tq * Tk, Tq * Tk, Tk, 1};
    const int64_t r_dim[4] = {B, H, Tq, 1}, r_str[4] = {H * Tq, Tq, 1, 1};
    const int64_t one[4] = {1, 1, 1, 1};
    int64_t uid = UID_VIRTUAL;
    Desc q = tensor(b, UID_Q, io, q_dim, q_str, false, false);
    Desc kt = tensor(b, UID_K, io, kt_dim, kt_str, false, false);
    Desc v = tensor(b, UID_V, io, v_dim, v_str, false, false);
    Desc o = tensor(b, UID_O, io, q_dim, q_str, false, false);
    Desc scale = tensor(b, UID_SCALE, f32, one, one, false, true);
    // S = Q Kᵀ, times the scale
    Desc s0 = tensor(b, uid++, f32, s_dim, s_str, true, false);
    matmul(b, q, kt, s0, "matmul Q Kt");
    Desc s1 = tensor(b, uid++, f32, s_dim, s_str, true, false);
    pointwise(b, CUDNN_POINTWISE_MUL, f32, s0, scale, NULL, s1, -1, "scale");
    if (s.causal) {  // keep S where row >= column, -inf elsewhere
        Desc neg = tensor(b, UID_NEG_INF, f32, one, one, false, true);
        Desc row = tensor(b, uid++, i32, s_dim, s_str, true, false);
        Desc col = tensor(b, uid++, i32, s_dim, s_str, true, false);
        Desc keep = tensor(b, uid++, boolean, s_dim, s_str, true, false);
        Desc s2 = tensor(b, uid++, f32, s_dim, s_str, true, false);
        pointwise(b, CUDNN_POINTWISE_GEN_INDEX, i32, s1, NULL, NULL, row, 2, "causal row index");
        pointwise(b, CUDNN_POINTWISE_GEN_INDEX, i32, s1, NULL, NULL, col, 3, "causal column index");
        pointwise(b, CUDNN_POINTWISE_CMP_GE, boolean, row, col, NULL, keep, -1, "causal compare");
        pointwise(b, CUDNN_POINTWISE_BINARY_SELECT, f32, s1, neg, keep, s2, -1, "causal select");
        s1 = s2;
    }
    // softmax: m = max S, e = exp(S - m), l = sum e, stats = m + log l (virtual), P = e / l
    Desc m = tensor(b, uid++, f32, r_dim, r_str, true, false);
    Desc d = tensor(b, uid++, f32, s_dim, s_str, true, false);
    Desc e = tensor(b, uid++, f32, s_dim, s_str, true, false);
    Desc l = tensor(b, uid++, f32, r_dim, r_str, true, false);
    Desc logl = tensor(b, uid++, f32, r_dim, r_str, true, false);
    Desc stats = tensor(b, uid++, f32, r_dim, r_str, true, false);
    Desc pr = tensor(b, uid++, io, s_dim, s_str, true, false);
    reduction(b, CUDNN_REDUCE_TENSOR_MAX, s1, m, "softmax max");
    pointwise(b, CUDNN_POINTWISE_SUB, f32, s1, m, NULL, d, -1, "softmax sub");
    pointwise(b, CUDNN_POINTWISE_EXP, f32, d, NULL, NULL, e, -1, "softmax exp");
    reduction(b, CUDNN_REDUCE_TENSOR_ADD, e, l, "softmax sum");
    pointwise(b, CUDNN_POINTWISE_LOG, f32, l, NULL, NULL, logl, -1, "softmax log");
    pointwise(b, CUDNN_POINTWISE_ADD, f32, m, logl, NULL, stats, -1, "softmax stats");
    pointwise(b, CUDNN_POINTWISE_DIV, f32, e, l, NULL, pr, -1, "softmax div");
    // O = P V
    matmul(b, pr, v, o, "matmul P V");

    Desc graph = make(b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    set(b, graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, b->n_ops, b->ops, "graph ops");
    if (L.handle) set(b, graph, ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &L.handle, "graph handle");
    finalize(b, graph, "operation graph (no cuDNN engine matches this graph)");

    // engines: heuristics mode A, then the fallback list; the first configuration that finalizes wins
    Desc plan = NULL;
    cudnnStatus_t last = CUDNN_STATUS_SUCCESS;
    char last_msg[160] = "";
    int tried = 0;
    cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    for (int mi = 0; mi < 2 && !plan && b->status == CUDNN_STATUS_SUCCESS; mi++) {
        Desc heur = NULL;
        if (L.cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur) != CUDNN_STATUS_SUCCESS)
            continue;
        int64_t count = 0;
        bool got = L.cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph) == CUDNN_STATUS_SUCCESS &&
                   L.cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1,
                                              &modes[mi]) == CUDNN_STATUS_SUCCESS &&
                   L.cudnnBackendFinalize(heur) == CUDNN_STATUS_SUCCESS &&
                   L.cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                              &count, NULL) == CUDNN_STATUS_SUCCESS;
        if (count > 8) count = 8;
        Desc cfgs[8] = {0};
        int64_t n_cfg = 0;
        for (int64_t i = 0; got && i < count; i++)
            got = L.cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[i]) ==
                  CUDNN_STATUS_SUCCESS;
        if (got && count > 0)
            got = L.cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                             count, &n_cfg, cfgs) == CUDNN_STATUS_SUCCESS;
        if (!got && !last_msg[0]) snprintf(last_msg, sizeof last_msg, "%s", last_error());
        for (int64_t i = 0; got && i < n_cfg && !plan; i++) {
            Desc ep = NULL;
            if (L.cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &ep) != CUDNN_STATUS_SUCCESS)
                break;
            tried++;
            cudnnStatus_t st = L.handle ? L.cudnnBackendSetAttribute(ep, ATTR_EXECUTION_PLAN_HANDLE,
                                                                     CUDNN_TYPE_HANDLE, 1, &L.handle)
                                        : CUDNN_STATUS_SUCCESS;
            if (st == CUDNN_STATUS_SUCCESS)
                st = L.cudnnBackendSetAttribute(ep, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]);
            if (st == CUDNN_STATUS_SUCCESS) st = L.cudnnBackendFinalize(ep);
            int64_t ws = 0, n = 0;
            if (st == CUDNN_STATUS_SUCCESS)
                st = L.cudnnBackendGetAttribute(ep, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                                &ws);
            if (st == CUDNN_STATUS_SUCCESS) {
                plan = ep;
                p->workspace = ws;
                p->descs[p->n_descs++] = cfgs[i];  // kept with the plan
                cfgs[i] = NULL;
            } else {
                last = st;
                snprintf(last_msg, sizeof last_msg, "%s", last_error());
                L.cudnnBackendDestroyDescriptor(ep);
            }
        }
        for (int i = 0; i < 8; i++)
            if (cfgs[i]) L.cudnnBackendDestroyDescriptor(cfgs[i]);
        L.cudnnBackendDestroyDescriptor(heur);
    }
    if (b->status != CUDNN_STATUS_SUCCESS) {
        snprintf(p->why, sizeof p->why, "%s: %s%s%s", b->failed_at, status_text(b->status), *last_error() ? ": " : "",
                 last_error());
    } else if (!plan) {
        if (tried)
            snprintf(p->why, sizeof p->why, "none of %d engine configurations finalized (last: %s%s%s)", tried,
                     status_text(last), last_msg[0] ? ": " : "", last_msg);
        else
            snprintf(p->why, sizeof p->why, "the heuristics offer no engine for this graph%s%s%s",
                     last_msg[0] ? " (" : "", last_msg, last_msg[0] ? ")" : "");
    }
    if (!plan) {
        free_descs(p->descs, p->n_descs);
        p->n_descs = 0;
        free_descs(b->descs, b->n);
        free(b);
        return;
    }
    memcpy(p->descs + p->n_descs, b->descs, sizeof(Desc) * b->n);
    p->n_descs += b->n;
    p->descs[p->n_descs++] = plan;
    p->plan = plan;
    p->ok = 1;
    free(b);
}

// The cached plan of shape s, built on first use (failures cached too); NULL with err_set when it cannot run.
static Plan *plan_get(const Shape &s) {
    if (lib_load()) return NULL;
    Plan *p = NULL, *victim = NULL;  // the shape's entry; else a free one, else the least recently used
    for (int i = 0; i < MAX_PLANS && !p; i++) {
        Plan *c = &C.plans[i];
        if (c->used && !memcmp(&c->s, &s, sizeof s)) p = c;
        else if (!victim || (victim->used && (!c->used || c->last_use < victim->last_use))) victim = c;
    }
    if (!p) {
        plan_free(victim);
        p = victim;
        p->used = 1;
        p->s = s;
        plan_build(p);
        if (!p->ok)
            fprintf(stderr,
                    "kanoclip: CUDA attention: cuDNN cannot run B %d, T %d x %d, %d heads of %d%s, %s (%s); "
                    "this shape uses the other kernels\n",
                    s.B, s.Tq, s.Tk, s.H, s.hd, s.causal ? ", causal" : "", s.fp16 ? "fp16" : "bf16", p->why);
    }
    p->last_use = ++C.clock;
    if (!p->ok) return err_set("cuDNN attention: %s", p->why), (Plan *)NULL;
    return p;
}

static size_t round_up(size_t n) { return (n + 255) & ~(size_t)255; }

// ---------------------------------------------------------------------------------------------------------------
// entry points

extern "C" int attention_cudnn_built(void) { return 1; }

extern "C" int attention_cudnn_available(void) { return lib_load() == 0; }

extern "C" long attention_cudnn_version(void) { return L.state > 0 ? L.version : 0; }

extern "C" int attention_cudnn_plan(int B, int Tq, int Tk, int H, int hd, int causal, int fp16) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || hd <= 0) return err_set("cuDNN attention: empty shape");
    Shape s = {B, Tq, Tk, H, hd, causal ? 1 : 0, fp16 ? 1 : 0};
    return plan_get(s) ? 0 : -1;
}

extern "C" int attention_cudnn_forward(float *out, const float *q, const float *k, const float *v, int B, int Tq,
                                       int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale,
                                       int fp16) {
    if (!cuda_live_("attention_cudnn_forward")) return err_set("cuDNN attention: a CUDA failure is pending");
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || hd <= 0) return err_set("cuDNN attention: empty shape");
    Shape s = {B, Tq, Tk, H, hd, causal ? 1 : 0, fp16 ? 1 : 0};
    Plan *p = plan_get(s);
    if (!p) return -1;
    // the workspace: compact q, k, v (shared where the caller passes the same rows), o, then cuDNN's
    int C_ = H * hd;
    size_t nq = round_up((size_t)B * Tq * C_ * 2), nkv = round_up((size_t)B * Tk * C_ * 2);
    bool k_is_q = k == q && ldkv == ldq && Tk == Tq, v_is_k = v == k;
    size_t need = nq + (k_is_q ? 0 : nkv) + (v_is_k ? 0 : nkv) + nq + round_up((size_t)p->workspace);
    if (need > C.buf_bytes) {
        cudaStreamSynchronize(cuda_stream_());  // the old buffer may still be in use by queued work
        cudaFree(C.buf);
        C.buf = NULL;
        C.buf_bytes = 0;
        cudaError_t e = cudaMalloc(&C.buf, need);
        if (e != cudaSuccess) {
            cudaGetLastError();  // not sticky: the caller falls back
            C.buf = NULL;
            return err_set("cuDNN attention: workspace of %zu MB: %s", need >> 20, cudaGetErrorString(e));
        }
        C.buf_bytes = need;
    }
    char *at = (char *)C.buf;
    void *qb = at, *kb, *vb, *ob, *ws;
    at += nq;
    kb = k_is_q ? qb : (void *)at;
    at += k_is_q ? 0 : nkv;
    vb = v_is_k ? kb : (void *)at;
    at += v_is_k ? 0 : nkv;
    ob = at;
    at += nq;
    ws = at;
    if (fp16) {
        narrow_rows((__half *)qb, q, B * Tq, C_, ldq);
        if (!k_is_q) narrow_rows((__half *)kb, k, B * Tk, C_, ldkv);
        if (!v_is_k) narrow_rows((__half *)vb, v, B * Tk, C_, ldkv);
    } else {
        narrow_rows((__nv_bfloat16 *)qb, q, B * Tq, C_, ldq);
        if (!k_is_q) narrow_rows((__nv_bfloat16 *)kb, k, B * Tk, C_, ldkv);
        if (!v_is_k) narrow_rows((__nv_bfloat16 *)vb, v, B * Tk, C_, ldkv);
    }
    p->scale = scale;
    p->neg_inf = L.version >= 91000 ? -INFINITY : -3.402823466e38f;  // older 9.x wanted the lowest float
    int64_t uids[6] = {UID_Q, UID_K, UID_V, UID_O, UID_SCALE, UID_NEG_INF};
    void *ptrs[6] = {qb, kb, vb, ob, &p->scale, &p->neg_inf};
    int64_t n = causal ? 6 : 5;
    Desc pack = NULL;
    cudnnStatus_t st = L.cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
    if (st == CUDNN_STATUS_SUCCESS)
        st = L.cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (st == CUDNN_STATUS_SUCCESS)
        st = L.cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (st == CUDNN_STATUS_SUCCESS)
        st = L.cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (st == CUDNN_STATUS_SUCCESS) st = L.cudnnBackendFinalize(pack);
    if (st == CUDNN_STATUS_SUCCESS) st = L.cudnnBackendExecute(L.handle, p->plan, pack);
    if (pack) L.cudnnBackendDestroyDescriptor(pack);
    if (st != CUDNN_STATUS_SUCCESS) {
        // not run: remember the shape as failed (the caller falls back, now and later)
        char why[256];
        snprintf(why, sizeof why, "execute: %s%s%s", status_text(st), *last_error() ? ": " : "", last_error());
        fprintf(stderr, "kanoclip: CUDA attention: cuDNN failed to run B %d, T %d x %d, %d heads of %d (%s); "
                        "this shape uses the other kernels\n", B, Tq, Tk, H, hd, why);
        plan_free(p);
        p->used = 1;
        p->s = s;
        snprintf(p->why, sizeof p->why, "%s", why);
        return err_set("cuDNN attention: %s", why);
    }
    if (fp16) widen_rows(out, ldo, (const __half *)ob, B * Tq, C_);
    else widen_rows(out, ldo, (const __nv_bfloat16 *)ob, B * Tq, C_);
    return 0;
}

extern "C" void attention_cudnn_shutdown(void) {
    for (int i = 0; i < MAX_PLANS; i++) plan_free(&C.plans[i]);
    if (C.buf) {
        cudaStreamSynchronize(cuda_stream_());
        cudaFree(C.buf);
    }
    C.buf = NULL;
    C.buf_bytes = 0;
    C.clock = 0;
    if (L.state > 0 && L.handle) L.cudnnDestroy(L.handle);
    L.handle = NULL;
    if (L.state > 0) L.state = 0;  // the library stays loaded; a later cuda_ops_init makes a new handle
}

#endif
