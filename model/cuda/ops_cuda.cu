// The CUDA op table, part 1: the context (stream, cuBLAS handle, sticky failure), memory, GEMMs through cuBLAS,
// matmul, LayerNorm and attention. Mirrors model/ops_core.c and model/ops_infer.c op for op.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

extern "C" {
#include "common/error.h"
}
#include "model/cuda/cuda_internal.cuh"
#include "model/cuda/ops_cuda.h"

// ---------------------------------------------------------------------------------------------------------------
// context

static struct {
    int ready;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;            // cuBLAS workspace (32 MiB: Hopper's kernels want it; llm.c does the same)
    GemmPrecision precision;
    CudaAttentionMode attn_mode, attn_last;
    float *scratch[2];
    size_t scratch_cap[2];
    int failed;
    char err[512];
} G;

enum { BLAS_WS_BYTES = 32 << 20 };

void cuda_fail_(const char *fmt, ...) {
    if (G.failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(G.err, sizeof G.err, fmt, ap);
    va_end(ap);
    G.failed = 1;
}

int cuda_live_(const char *op) {
    if (!G.ready) {
        cuda_fail_("%s: CUDA ops used before cuda_ops_init", op);
        return 0;
    }
    return !G.failed;
}

void cuda_after_launch_(const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) cuda_fail_("%s: kernel launch failed: %s", op, cudaGetErrorString(e));
}

cudaStream_t cuda_stream_(void) { return G.stream; }

static const char *blas_status(cublasStatus_t s) { return cublasGetStatusString(s); }

#define CUDA_TRY(op, call)                                                                                   \
    do {                                                                                                     \
        cudaError_t e_ = (call);                                                                             \
        if (e_ != cudaSuccess) cuda_fail_("%s: %s", (op), cudaGetErrorString(e_));                           \
    } while (0)

#define BLAS_TRY(op, call)                                                                                   \
    do {                                                                                                     \
        cublasStatus_t s_ = (call);                                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) cuda_fail_("%s: cuBLAS %s", (op), blas_status(s_));                 \
    } while (0)

extern "C" int cuda_ops_init(void) {
    if (G.ready) return 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return err_set("CUDA: no CUDA device found (cudaGetDeviceCount: %s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if ((e = cudaSetDevice(0)) != cudaSuccess) return err_set("CUDA: cudaSetDevice(0): %s", cudaGetErrorString(e));
    if ((e = cudaStreamCreateWithFlags(&G.stream, cudaStreamNonBlocking)) != cudaSuccess)
        return err_set("CUDA: cudaStreamCreate: %s", cudaGetErrorString(e));
    cublasStatus_t s = cublasCreate(&G.blas);
    if (s != CUBLAS_STATUS_SUCCESS) return err_set("CUDA: cublasCreate: %s", blas_status(s));
    if ((e = cudaMalloc(&G.blas_ws, BLAS_WS_BYTES)) != cudaSuccess)
        return err_set("CUDA: cuBLAS workspace: %s", cudaGetErrorString(e));
    cublasSetStream(G.blas, G.stream);
    cublasSetWorkspace(G.blas, G.blas_ws, BLAS_WS_BYTES);
    cublasSetPointerMode(G.blas, CUBLAS_POINTER_MODE_HOST);
    G.precision = GEMM_FP32;
    G.failed = 0;
    G.ready = 1;
    return 0;
}

extern "C" void cuda_ops_shutdown(void) {
    if (!G.ready) return;
    cudaStreamSynchronize(G.stream);
    attention_cudnn_shutdown();
    for (int i = 0; i < 2; i++) cudaFree(G.scratch[i]);
    cublasDestroy(G.blas);
    cudaFree(G.blas_ws);
    cudaStreamDestroy(G.stream);
    G = {};
}

extern "C" void cuda_ops_set_precision(GemmPrecision p) { G.precision = p; }
extern "C" GemmPrecision cuda_ops_precision(void) { return G.precision; }
extern "C" void *cuda_ops_stream(void) { return (void *)G.stream; }
extern "C" void cuda_attention_set_mode(CudaAttentionMode mode) { G.attn_mode = mode; }
extern "C" CudaAttentionMode cuda_attention_mode(void) { return G.attn_mode; }
extern "C" CudaAttentionMode cuda_attention_last_path(void) { return G.attn_last; }
extern "C" void cuda_attention_set_fused(int fused) { G.attn_mode = fused ? CUDA_ATTN_FUSED_FP32 : CUDA_ATTN_AUTO; }
extern "C" int cuda_attention_fused(void) { return G.attn_mode == CUDA_ATTN_FUSED_FP32; }
extern "C" const char *cuda_attention_mode_name(CudaAttentionMode mode) {
    switch (mode) {
    case CUDA_ATTN_AUTO: return "auto";
    case CUDA_ATTN_UNFUSED: return "cuBLAS + softmax";
    case CUDA_ATTN_FUSED_FP32: return "fused (fp32 kernel)";
    case CUDA_ATTN_CUDNN: return "cuDNN SDPA (bf16)";
    case CUDA_ATTN_CUDNN_FP16: return "cuDNN SDPA (fp16)";
    }
    return "?";
}

extern "C" int cuda_ops_sync(void) {
    if (G.ready) {
        cudaError_t e = cudaStreamSynchronize(G.stream);
        if (e != cudaSuccess) cuda_fail_("CUDA stream: %s", cudaGetErrorString(e));
    } else {
        cuda_fail_("CUDA ops used before cuda_ops_init");
    }
    if (!G.failed) return 0;
    G.failed = 0;
    return err_set("%s", G.err);
}

float *cuda_scratch_(int slot, size_t floats) {
    if (floats <= G.scratch_cap[slot]) return G.scratch[slot];
    cudaStreamSynchronize(G.stream);  // the old buffer may still be in use by queued work
    cudaFree(G.scratch[slot]);
    G.scratch[slot] = NULL;
    G.scratch_cap[slot] = 0;
    cudaError_t e = cudaMalloc((void **)&G.scratch[slot], floats * sizeof(float));
    if (e != cudaSuccess) {
        cuda_fail_("CUDA scratch of %zu MB: %s", floats * 4 >> 20, cudaGetErrorString(e));
        G.scratch[slot] = NULL;
        return NULL;
    }
    G.scratch_cap[slot] = floats;
    return G.scratch[slot];
}

// ---------------------------------------------------------------------------------------------------------------
// memory

extern "C" void *cuda_alloc_bytes(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        err_set("CUDA: out of device memory for %.1f MB (%s)", bytes / 1e6, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

extern "C" float *cuda_alloc_floats(size_t n) { return (float *)cuda_alloc_bytes(n * sizeof(float)); }
extern "C" void cuda_free(void *p) { if (p) cudaFree(p); }

extern "C" void *cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        err_set("CUDA: out of pinned host memory for %.1f MB (%s)", bytes / 1e6, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

extern "C" void cuda_host_free(void *p) { if (p) cudaFreeHost(p); }

extern "C" void cuda_upload(float *dst, const float *src, size_t n) {
    if (!cuda_live_("cuda_upload")) return;
    CUDA_TRY("cuda_upload", cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, G.stream));
}

extern "C" void cuda_download(float *dst, const float *src, size_t n) {
    if (!cuda_live_("cuda_download")) return;
    CUDA_TRY("cuda_download", cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, G.stream));
}

extern "C" void cuda_copy(float *dst, const float *src, size_t n) {
    if (!cuda_live_("cuda_copy")) return;
    CUDA_TRY("cuda_copy", cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, G.stream));
}

extern "C" void cuda_upload_bytes(void *dst, const void *src, size_t bytes) {
    if (!cuda_live_("cuda_upload_bytes")) return;
    CUDA_TRY("cuda_upload_bytes", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, G.stream));
}

extern "C" void cuda_zero(float *dst, size_t n) {
    if (!cuda_live_("cuda_zero")) return;
    CUDA_TRY("cuda_zero", cudaMemsetAsync(dst, 0, n * sizeof(float), G.stream));
}

extern "C" void cuda_copy_rows(float *dst, int ld_dst, const float *src, int ld_src, int rows, int cols) {
    if (!cuda_live_("cuda_copy_rows")) return;
    CUDA_TRY("cuda_copy_rows", cudaMemcpy2DAsync(dst, (size_t)ld_dst * 4, src, (size_t)ld_src * 4, (size_t)cols * 4,
                                                 rows, cudaMemcpyDeviceToDevice, G.stream));
}

// ---------------------------------------------------------------------------------------------------------------
// GEMMs: a row-major C = op(A) op(B) is the column-major Cᵀ = op(B)ᵀ op(A)ᵀ, so A and B swap places.

static cublasComputeType_t compute_type(void) {
    switch (G.precision) {
    case GEMM_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case GEMM_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
    }
}

extern "C" void gemm_cuda(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          long stride_a, const float *B, int ldb, long stride_b, float beta, float *C, int ldc,
                          long stride_c, int batch) {
    if (!cuda_live_("gemm_cuda") || M <= 0 || N <= 0 || batch <= 0) return;
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        BLAS_TRY("gemm_cuda", cublasGemmEx(G.blas, tb, ta, N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda,
                                           &beta, C, CUDA_R_32F, ldc, compute_type(), CUBLAS_GEMM_DEFAULT));
    else
        BLAS_TRY("gemm_cuda batched",
                 cublasGemmStridedBatchedEx(G.blas, tb, ta, N, M, K, &alpha, B, CUDA_R_32F, ldb, stride_b, A,
                                            CUDA_R_32F, lda, stride_a, &beta, C, CUDA_R_32F, ldc, stride_c, batch,
                                            compute_type(), CUBLAS_GEMM_DEFAULT));
}

// ---------------------------------------------------------------------------------------------------------------
// matmul

__global__ void fill_rows_kernel(float *out, const float *row, int N, int C) {
    GRID_STRIDE(i, (size_t)N * C) out[i] = row[i % C];
}

// sum (C) += Σ_n x[n, c]: blocks of 32 columns, 8 row lanes each, reduced in shared memory (deterministic).
__global__ void column_sum_kernel(float *sum, const float *x, int N, int C) {
    __shared__ float part[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float s = 0.0f;
    if (c < C)
        for (int n = threadIdx.y; n < N; n += 8) s += x[(size_t)n * C + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int j = 1; j < 8; j++) s += part[j][threadIdx.x];
        sum[c] += s;
    }
}

extern "C" void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N,
                                    int C, int OC) {
    if (!cuda_live_("matmul_forward_cuda")) return;
    if (bias) CUDA_LAUNCH("matmul bias", fill_rows_kernel, blocks_for((size_t)N * OC, 256), 256, 0, out, bias, N, OC);
    gemm_cuda(0, 1, N, OC, C, 1.0f, inp, C, 0, weight, C, 0, bias ? 1.0f : 0.0f, out, OC, 0, 1);
}

extern "C" void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                     const float *weight, int N, int C, int OC) {
    if (!cuda_live_("matmul_backward_cuda")) return;
    if (dinp) gemm_cuda(0, 0, N, C, OC, 1.0f, dout, OC, 0, weight, C, 0, 1.0f, dinp, C, 0, 1);
    if (dweight) gemm_cuda(1, 0, OC, C, N, 1.0f, dout, OC, 0, inp, C, 0, 1.0f, dweight, C, 0, 1);
    if (dbias) CUDA_LAUNCH("matmul dbias", column_sum_kernel, (OC + 31) / 32, dim3(32, 8), 0, dbias, dout, N, OC);
}

// ---------------------------------------------------------------------------------------------------------------
// LayerNorm: one warp per row

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                         const float *b, int N, int C, float eps) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32) s += x[i];
    float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32) { float d = x[i] - m; v += d * d; }
    float r = 1.0f / sqrtf(warp_sum(v) / C + eps);
    float *y = out + (size_t)row * C;
    for (int i = lane; i < C; i += 32) y[i] = (x[i] - m) * r * w[i] + b[i];
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

__global__ void layernorm_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                      const float *mean, const float *rstd, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
    float m = mean[row], s = rstd[row], gm = 0.0f, gx = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float g = dy[i] * w[i];
        gm += g;
        gx += g * (x[i] - m) * s;
    }
    gm = warp_sum(gm) / C;
    gx = warp_sum(gx) / C;
    float *dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32) dx[i] += s * (dy[i] * w[i] - gm - (x[i] - m) * s * gx);
}

__global__ void layernorm_dparams_kernel(float *dw, float *db, const float *dout, const float *inp,
                                         const float *mean, const float *rstd, int N, int C) {
    __shared__ float pw[8][33], pb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float sw = 0.0f, sb = 0.0f;
    if (c < C)
        for (int n = threadIdx.y; n < N; n += 8) {
            float dy = dout[(size_t)n * C + c];
            sw += dy * (inp[(size_t)n * C + c] - mean[n]) * rstd[n];
            sb += dy;
        }
    pw[threadIdx.y][threadIdx.x] = sw;
    pb[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int j = 1; j < 8; j++) { sw += pw[j][threadIdx.x]; sb += pb[j][threadIdx.x]; }
        if (dw) dw[c] += sw;
        if (db) db[c] += sb;
    }
}

extern "C" void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                       const float *bias, int N, int C, float eps) {
    if (!cuda_live_("layernorm_forward_cuda") || N <= 0) return;
    CUDA_LAUNCH("layernorm_forward", layernorm_forward_kernel, (N + 7) / 8, 256, 0, out, mean, rstd, inp, weight,
                bias, N, C, eps);
}

extern "C" void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                                        const float *inp, const float *weight, const float *mean, const float *rstd,
                                        int N, int C) {
    if (!cuda_live_("layernorm_backward_cuda") || N <= 0) return;
    if (dinp)
        CUDA_LAUNCH("layernorm_backward", layernorm_dinp_kernel, (N + 7) / 8, 256, 0, dinp, dout, inp, weight, mean,
                    rstd, N, C);
    if (dweight || dbias)
        CUDA_LAUNCH("layernorm_backward params", layernorm_dparams_kernel, (C + 31) / 32, dim3(32, 8), 0, dweight,
                    dbias, dout, inp, mean, rstd, N, C);
}

// ---------------------------------------------------------------------------------------------------------------
// attention through cuBLAS: scores (strided-batched over heads), a row softmax kernel, probabilities · V

// rows of att (R = B*H*Tq rows of Tk), already scaled: softmax over the first n keys (n = i+1 when causal,
// i the query index), zero beyond.
__global__ void softmax_att_kernel(float *att, long R, int Tq, int Tk, int causal) {
    long row = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= R) return;
    float *p = att + row * Tk;
    int n = causal ? (int)(row % Tq) + 1 : Tk;
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, p[j]);
    mx = warp_max(mx);
    float s = 0.0f;
    for (int j = lane; j < n; j += 32) { float e = expf(p[j] - mx); p[j] = e; s += e; }
    float inv = 1.0f / warp_sum(s);
    for (int j = lane; j < Tk; j += 32) p[j] = j < n ? p[j] * inv : 0.0f;
}

// dp (R rows of Tk) = p ∘ (dp - Σ_j p dp), per row.
__global__ void softmax_att_backward_kernel(float *dp, const float *p, long R, int Tk) {
    long row = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= R) return;
    float *d = dp + row * Tk;
    const float *pr = p + row * Tk;
    float dot = 0.0f;
    for (int j = lane; j < Tk; j += 32) dot += pr[j] * d[j];
    dot = warp_sum(dot);
    for (int j = lane; j < Tk; j += 32) d[j] = pr[j] * (d[j] - dot);
}

// att (Bc,H,Tq,Tk) for Bc images starting at image b0; the softmax'd probabilities; then out = att · V.
static void attention_chunk(float *out, float *att, const float *q, const float *k, const float *v, int b0, int Bc,
                            int Tq, int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale) {
    long tt = (long)Tq * Tk;
    for (int b = 0; b < Bc; b++) {
        const float *qb = q + (size_t)(b0 + b) * Tq * ldq, *kb = k + (size_t)(b0 + b) * Tk * ldkv;
        gemm_cuda(0, 1, Tq, Tk, hd, scale, qb, ldq, hd, kb, ldkv, hd, 0.0f, att + b * H * tt, Tk, tt, H);
    }
    long R = (long)Bc * H * Tq;
    CUDA_LAUNCH("attention softmax", softmax_att_kernel, (unsigned)((R + 7) / 8), 256, 0, att, R, Tq, Tk, causal);
    for (int b = 0; b < Bc; b++) {
        const float *vb = v + (size_t)(b0 + b) * Tk * ldkv;
        gemm_cuda(0, 0, Tq, hd, Tk, 1.0f, att + b * H * tt, Tk, tt, vb, ldkv, hd, 0.0f,
                  out + (size_t)(b0 + b) * Tq * ldo, ldo, hd, H);
    }
}

extern "C" void attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v, int B,
                                       int Tq, int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal,
                                       float scale) {
    if (!cuda_live_("attention_forward_cuda")) return;
    attention_chunk(out, att, q, k, v, 0, B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, scale);
}

extern "C" void attention_backward_cuda(float *dq, float *dk, float *dv, float *datt, const float *dout,
                                        const float *att, const float *q, const float *k, const float *v, int B,
                                        int Tq, int Tk, int H, int hd, int ldq, int ldkv, int ldo, float scale) {
    if (!cuda_live_("attention_backward_cuda")) return;
    long tt = (long)Tq * Tk;
    for (int b = 0; b < B; b++) {
        size_t ko = (size_t)b * Tk * ldkv, oo = (size_t)b * Tq * ldo;
        const float *p = att + b * H * tt;
        float *dp = datt + b * H * tt;
        // dv += pᵀ dout; dp = dout vᵀ
        if (dv) gemm_cuda(1, 0, Tk, hd, Tq, 1.0f, p, Tk, tt, dout + oo, ldo, hd, 1.0f, dv + ko, ldkv, hd, H);
        gemm_cuda(0, 1, Tq, Tk, hd, 1.0f, dout + oo, ldo, hd, v + ko, ldkv, hd, 0.0f, dp, Tk, tt, H);
    }
    long R = (long)B * H * Tq;
    CUDA_LAUNCH("attention softmax backward", softmax_att_backward_kernel, (unsigned)((R + 7) / 8), 256, 0, datt, att,
                R, Tk);
    for (int b = 0; b < B; b++) {
        size_t qo = (size_t)b * Tq * ldq, ko = (size_t)b * Tk * ldkv;
        const float *ds = datt + b * H * tt;
        // dq += scale ds k; dk += scale dsᵀ q
        if (dq) gemm_cuda(0, 0, Tq, hd, Tk, scale, ds, Tk, tt, k + ko, ldkv, hd, 1.0f, dq + qo, ldq, hd, H);
        if (dk) gemm_cuda(1, 0, Tk, hd, Tq, scale, ds, Tk, tt, q + qo, ldq, hd, 1.0f, dk + ko, ldkv, hd, H);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// attention for inference: no (B,H,Tq,Tk) matrix kept

// Fused: one thread per query, QB queries of one head per block; K and V tiles of KT keys in shared memory
// (every thread reads the same key row: a broadcast); online softmax rescaling once per tile. HDMAX >= hd,
// padded lanes are zero. fp32 on CUDA cores whatever the GEMM precision.
enum { FUSED_QB = 64, FUSED_KT = 32 };

template <int HDMAX>
__global__ void __launch_bounds__(FUSED_QB) attention_fused_kernel(float *out, const float *q, const float *k,
                                                                   const float *v, int Tq, int Tk, int H, int hd,
                                                                   int ldq, int ldkv, int ldo, int causal,
                                                                   float scale) {
    __shared__ float ks[FUSED_KT][HDMAX], vs[FUSED_KT][HDMAX];
    int b = blockIdx.z, h = blockIdx.y, qi = blockIdx.x * FUSED_QB + threadIdx.x;
    int valid = qi < Tq;
    float qr[HDMAX], acc[HDMAX];
    const float *qp = q + ((size_t)b * Tq + (valid ? qi : 0)) * ldq + h * hd;
#pragma unroll
    for (int d = 0; d < HDMAX; d++) {
        qr[d] = d < hd && valid ? qp[d] * scale : 0.0f;
        acc[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    int kend = causal ? min(Tk, blockIdx.x * FUSED_QB + FUSED_QB) : Tk;  // keys any query of the block sees
    const float *kb = k + (size_t)b * Tk * ldkv + h * hd, *vb = v + (size_t)b * Tk * ldkv + h * hd;
    for (int k0 = 0; k0 < kend; k0 += FUSED_KT) {
        __syncthreads();  // the previous tile is no longer read
        for (int i = threadIdx.x; i < FUSED_KT * HDMAX; i += FUSED_QB) {
            int j = i / HDMAX, d = i % HDMAX, key = k0 + j;
            bool in = key < Tk && d < hd;
            ks[j][d] = in ? kb[(size_t)key * ldkv + d] : 0.0f;
            vs[j][d] = in ? vb[(size_t)key * ldkv + d] : 0.0f;
        }
        __syncthreads();
        if (!valid) continue;
        float s[FUSED_KT], tmax = -INFINITY;
#pragma unroll
        for (int j = 0; j < FUSED_KT; j++) {
            float dot = 0.0f;
#pragma unroll
            for (int d = 0; d < HDMAX; d++) dot += qr[d] * ks[j][d];
            int key = k0 + j;
            s[j] = key < Tk && (!causal || key <= qi) ? dot : -INFINITY;
            tmax = fmaxf(tmax, s[j]);
        }
        float mnew = fmaxf(m, tmax);
        if (mnew == -INFINITY) continue;  // every key of this tile is masked for this query
        float corr = expf(m - mnew);
        l *= corr;
#pragma unroll
        for (int d = 0; d < HDMAX; d++) acc[d] *= corr;
#pragma unroll
        for (int j = 0; j < FUSED_KT; j++) {
            float p = expf(s[j] - mnew);
            l += p;
#pragma unroll
            for (int d = 0; d < HDMAX; d++) acc[d] += p * vs[j][d];
        }
        m = mnew;
    }
    if (!valid) return;
    float inv = 1.0f / l;
    float *op = out + ((size_t)b * Tq + qi) * ldo + h * hd;
#pragma unroll
    for (int d = 0; d < HDMAX; d++)
        if (d < hd) op[d] = acc[d] * inv;
}

enum { SCORES_BUDGET_FLOATS = 1 << 30 };  // 4 GB of scores at most for the unfused path

extern "C" void attention_infer_forward_cuda(float *out, const float *q, const float *k, const float *v, int B,
                                             int Tq, int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal,
                                             float scale) {
    if (!cuda_live_("attention_infer_forward_cuda") || B <= 0) return;
    CudaAttentionMode mode = G.attn_mode;
    if (mode == CUDA_ATTN_AUTO) mode = G.precision == GEMM_BF16 ? CUDA_ATTN_CUDNN : CUDA_ATTN_UNFUSED;
    if (mode == CUDA_ATTN_FUSED_FP32 && hd > 128) mode = CUDA_ATTN_UNFUSED;
    if (mode == CUDA_ATTN_CUDNN || mode == CUDA_ATTN_CUDNN_FP16) {
        // a shape cuDNN cannot run falls back (attention_cudnn.cu logs why, once per shape)
        if (attention_cudnn_forward(out, q, k, v, B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, scale,
                                    mode == CUDA_ATTN_CUDNN_FP16) != 0)
            mode = CUDA_ATTN_UNFUSED;
    }
    G.attn_last = mode;
    static unsigned logged;  // once per path and process
    if (!(logged & 1u << mode)) {
        logged |= 1u << mode;
        if (mode == CUDA_ATTN_CUDNN || mode == CUDA_ATTN_CUDNN_FP16)
            fprintf(stderr, "kanoclip: CUDA attention: %s, cuDNN %ld (first: B %d, T %d, %d heads of %d)\n",
                    cuda_attention_mode_name(mode), attention_cudnn_version(), B, Tq, H, hd);
        else if (mode == CUDA_ATTN_UNFUSED)
            fprintf(stderr, "kanoclip: CUDA attention: %s, %s\n", cuda_attention_mode_name(mode),
                    gemm_precision_name(G.precision));
        else
            fprintf(stderr, "kanoclip: CUDA attention: %s\n", cuda_attention_mode_name(mode));
    }
    if (mode == CUDA_ATTN_CUDNN || mode == CUDA_ATTN_CUDNN_FP16) return;
    if (mode == CUDA_ATTN_FUSED_FP32) {
        dim3 grid((Tq + FUSED_QB - 1) / FUSED_QB, H, B);
#define FUSED(HD) CUDA_LAUNCH("attention fused", attention_fused_kernel<HD>, grid, FUSED_QB, 0, out, q, k, v, Tq, \
                              Tk, H, hd, ldq, ldkv, ldo, causal, scale)
        if (hd <= 16) FUSED(16);
        else if (hd <= 32) FUSED(32);
        else if (hd <= 64) FUSED(64);
        else FUSED(128);
#undef FUSED
        return;
    }
    size_t per_image = (size_t)H * Tq * Tk;
    int Bc = (int)(SCORES_BUDGET_FLOATS / per_image);
    Bc = Bc < 1 ? 1 : Bc > B ? B : Bc;
    float *att = cuda_scratch_(0, per_image * Bc);
    if (!att) return;
    for (int b0 = 0; b0 < B; b0 += Bc)
        attention_chunk(out, att, q, k, v, b0, B - b0 < Bc ? B - b0 : Bc, Tq, Tk, H, hd, ldq, ldkv, ldo, causal,
                        scale);
}
