// The op table on a CUDA device: the same forward/backward pairs as model/ops.h, model/ops_infer.h,
// model/ops_extra.h and model/adam.h, with every buffer a device pointer (same shapes, same row-major layouts,
// same accumulate-into-gradients rule). The CPU ops are the reference; tests/test_cuda_ops.c compares each.
//
// All work is queued on one stream owned by this layer (cuda_ops_stream), so a call returns before the GPU has
// finished; cuda_ops_sync() waits and reports the first failure of any call since the last check (a launch
// error, a cuBLAS status, a fault) as an err_set message. Calls after a failure do nothing until then.
//
// GEMMs go through cuBLAS with fp32 buffers; the precision mode picks the compute type: fp32 (CUDA cores),
// TF32 tensor cores, or bf16 tensor cores with fp32 accumulation (inputs rounded to bf16 inside cuBLAS).
// Only declared when the build has CUDA (KANOCLIP_CUDA); callers guard with #ifdef.
#ifndef MODEL_CUDA_OPS_CUDA_H
#define MODEL_CUDA_OPS_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "model/device.h"

// ---- context -----------------------------------------------------------------------------------------------
// Selects device 0 and creates the stream and the cuBLAS handle (idempotent). -1 with err_set.
int cuda_ops_init(void);
void cuda_ops_shutdown(void);
void cuda_ops_set_precision(GemmPrecision p);
GemmPrecision cuda_ops_precision(void);
void *cuda_ops_stream(void);   // the cudaStream_t every op runs on
// Waits for the stream; 0, or -1 with err_set naming the first failed call since the last sync.
int cuda_ops_sync(void);

// ---- memory (device buffers are allocated once and reused by their owners) -------------------------------
float *cuda_alloc_floats(size_t n);          // NULL with err_set
void *cuda_alloc_bytes(size_t bytes);        // NULL with err_set
void cuda_free(void *p);
void *cuda_host_alloc(size_t bytes);         // pinned host memory (async copies); NULL with err_set
void cuda_host_free(void *p);
// Copies queued on the stream (async when the host side is pinned).
void cuda_upload(float *dst_dev, const float *src_host, size_t n);
void cuda_download(float *dst_host, const float *src_dev, size_t n);
void cuda_copy(float *dst_dev, const float *src_dev, size_t n);
void cuda_upload_bytes(void *dst_dev, const void *src_host, size_t bytes);
void cuda_zero(float *dst_dev, size_t n);
// Copies rows: dst (rows, ld_dst) first `cols` columns = src (rows, ld_src) first `cols` columns, device side.
void cuda_copy_rows(float *dst, int ld_dst, const float *src, int ld_src, int rows, int cols);

// ---- GEMMs ---------------------------------------------------------------------------------------------------
// Row-major C (M,N) = alpha · op(A) · op(B) + beta · C, op(X) = Xᵀ when trans_X; lda/ldb/ldc are row strides.
// batch > 1: stride_a/b/c floats between consecutive problems.
void gemm_cuda(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, long stride_a,
               const float *B, int ldb, long stride_b, float beta, float *C, int ldc, long stride_c, int batch);

// ---- model/ops.h ---------------------------------------------------------------------------------------------
void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int C, int OC);
void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, int N, int C, float eps);
void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, const float *mean, const float *rstd, int N, int C);
void attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v, int B, int Tq,
                            int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale);
void attention_backward_cuda(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                             const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H, int hd,
                             int ldq, int ldkv, int ldo, float scale);
void quickgelu_forward_cuda(float *out, const float *inp, size_t N);
void quickgelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t N);
void residual_forward_cuda(float *out, const float *a, const float *b, size_t N);

// ---- model/ops_infer.h ---------------------------------------------------------------------------------------
void gelu_forward_cuda(float *out, const float *inp, size_t N);
void gelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t N);
void bias_act_forward_cuda(float *x, float *pre, const float *bias, int N, int C, int act);
void add_bias_rows_cuda(float *x, const float *bias, int N, int C);
// dx (N) *= act'(pre) in place (act 1 QuickGELU, 2 exact GELU): the MLP backward of a frozen tower.
void act_backward_inplace_cuda(float *dx, const float *pre, size_t N, int act);
// Attention without a kept probability matrix, by one of three paths:
// - unfused: the scores through cuBLAS (in the GEMM precision) into a bounded workspace, a few images at a time;
// - fused fp32: one kernel, online softmax on CUDA cores, hd <= 128; never writes scores;
// - cuDNN: cuDNN's fused scaled-dot-product attention (flash attention) with bf16 or fp16 inputs and output and
//   fp32 softmax/accumulation (attention_cudnn.cu); q, k, v are rounded into a workspace and the output widened
//   back, so the buffers stay fp32. Where cuDNN cannot run a shape (not built in, library missing at run time,
//   no engine for it), that call falls back to the unfused path; the process logs once which paths run.
// The mode picks: AUTO (the default) is cuDNN (bf16) in bf16 precision and unfused otherwise; the others force
// a path (CUDNN / CUDNN_FP16 whatever the GEMM precision). The benchmark measures each.
typedef enum {
    CUDA_ATTN_AUTO = 0,
    CUDA_ATTN_UNFUSED = 1,
    CUDA_ATTN_FUSED_FP32 = 2,
    CUDA_ATTN_CUDNN = 3,       // bf16 I/O
    CUDA_ATTN_CUDNN_FP16 = 4,  // fp16 I/O
} CudaAttentionMode;
void attention_infer_forward_cuda(float *out, const float *q, const float *k, const float *v, int B, int Tq, int Tk,
                                  int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale);
void cuda_attention_set_mode(CudaAttentionMode mode);
CudaAttentionMode cuda_attention_mode(void);
// The path the last attention_infer_forward_cuda call took (UNFUSED, FUSED_FP32, CUDNN or CUDNN_FP16; AUTO
// before any call), and a name for logs and tables ("cuBLAS + softmax", "cuDNN SDPA (bf16)", ...).
CudaAttentionMode cuda_attention_last_path(void);
const char *cuda_attention_mode_name(CudaAttentionMode mode);
// The earlier switch: 1 forces the fused fp32 kernel, 0 restores the default (AUTO).
void cuda_attention_set_fused(int fused);
int cuda_attention_fused(void);

// ---- cuDNN fused attention (attention_cudnn.cu; the library is opened at run time) -----------------------------
// Queues out = softmax(scale q kᵀ [causal]) v through cuDNN's SDPA graph with bf16 (fp16 = 0) or fp16 (fp16 = 1)
// I/O, same arguments and layouts as attention_infer_forward_cuda. 0 when queued; -1 with err_set when cuDNN
// cannot run it (built without cuDNN, libcudnn.so.9 missing or older than 9, no engine for this shape or GPU);
// then nothing was written and the caller falls back. Execution plans are cached per (B, Tq, Tk, H, hd, causal,
// dtype); a shape that failed to plan is remembered and not retried.
int attention_cudnn_forward(float *out, const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H,
                            int hd, int ldq, int ldkv, int ldo, int causal, float scale, int fp16);
// Plans (or finds in the cache) the graph for a shape without running it: 0, or -1 with err_set saying why.
int attention_cudnn_plan(int B, int Tq, int Tk, int H, int hd, int causal, int fp16);
// 1 when this build has the cuDNN path (cuDNN's headers were found at build time).
int attention_cudnn_built(void);
// 1 when the library is loaded and a cuDNN handle exists (loads it on first call); else 0 with err_set.
int attention_cudnn_available(void);
// The loaded library's version (e.g. 91900), 0 when not loaded.
long attention_cudnn_version(void);
// Frees the plans, the workspace and the handle (cuda_ops_shutdown calls it).
void attention_cudnn_shutdown(void);

// ---- model/ops_extra.h ---------------------------------------------------------------------------------------
void relu_forward_cuda(float *out, const float *inp, size_t N);
void relu_backward_cuda(float *dinp, const float *out, const float *dout, size_t N);
void softmax_rows_forward_cuda(float *out, const float *inp, int R, int C, float scale);
void softmax_rows_backward_cuda(float *dinp, const float *dout, const float *out, int R, int C, float scale);
void l2norm_rows_forward_cuda(float *out, float *norm, const float *inp, int R, int C);
void l2norm_rows_backward_cuda(float *dinp, const float *dout, const float *out, const float *norm, int R, int C);
void grid_sample_forward_cuda(float *out, const float *inp, const float *grid, int H, int W, int C, int ld_in,
                              int Np, int ld_out, int align_corners);
void grid_sample_backward_cuda(float *dinp, float *dgrid, const float *dout, const float *inp, const float *grid,
                               int H, int W, int C, int ld_in, int Np, int ld_out, int align_corners);
void dwconv_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int H, int W, int C,
                         int ld_in, int k);
void dwconv_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int H, int W, int C, int ld_in, int k);
void upsample_bilinear_forward_cuda(float *out, const float *inp, int B, int h, int w, int Ho, int Wo,
                                    int align_corners);
void upsample_bilinear_backward_cuda(float *dinp, const float *dout, int B, int h, int w, int Ho, int Wo,
                                     int align_corners);
void gaussian_filter_forward_cuda(float *out, const float *inp, int B, int H, int W, float sigma, float truncate);
// loss (device, 1 float) = mean(softplus(x) - y x) over N; dx (N) += scale·(σ(x) - y)/N.
void bce_logits_forward_cuda(float *loss, const float *x, const float *y, int N);
void bce_logits_backward_cuda(float *dx, const float *x, const float *y, int N, float scale);

// ---- model/adam.h --------------------------------------------------------------------------------------------
void adam_update_cuda(float *p, const float *g, float *m, float *v, size_t n, long step, float lr, float beta1,
                      float beta2, float eps);

// ---- model/ops_heads.h (ops_cuda_heads.cu) -------------------------------------------------------------------
void axpy_cuda(float *y, const float *x, float a, size_t n);
void scale_copy_cuda(float *out, const float *inp, float a, size_t n);
void deinterleave2_cuda(float *a, float *b, const float *ab, int n);
void interleave2_cuda(float *ab, const float *a, const float *b, int n);
void mask_binarize_cuda(float *gt, float *ngt, const float *mask, int n);
void softmax_pair_forward_cuda(float *out, const float *inp, int n);
void softmax_pair_backward_cuda(float *dinp, const float *dout, const float *out, int n);
void softmax_rows_backward_inplace_cuda(float *d, const float *out, int R, int C);
void focal_sum_op_forward_cuda(float *loss, const float *pn, const float *pa, const float *g, int n);
void focal_sum_backward_cuda(float *dpn, float *dpa, const float *pn, const float *pa, const float *g, int n,
                             float scale);
void dice_op_forward_cuda(float *D, const float *p, const float *g, int n);
void dice_backward_cuda(float *dp, const float *p, const float *g, int n, float scale);
void minmax_forward_cuda(float *x, int n);
void minmax_backward_cuda(float *dx, const float *dy, const float *x, const float *y, int n);
void max_value_cuda(float *out, const float *x, int n);
void max_ties_backward_cuda(float *dx, const float *x, int n, float g);
void dat_positions_forward_cuda(float *pos, const float *off, int Hg, int Wg, float range);
void dat_positions_backward_cuda(float *doff, const float *dpos, const float *off, int Hg, int Wg, float range);
void dat_rpe_softmax_forward_cuda(float *att, const float *rpe, const float *pos, int heads, int Hg, int Wg);
void dat_rpe_backward_cuda(float *drpe, float *dpos, const float *datt, const float *rpe, const float *pos, int heads,
                           int Hg, int Wg);
void msda_grid_forward_cuda(float *grid, const float *off, int h, int M, int K, int Hg, int Wg);
void msda_grid_backward_cuda(float *doff, const float *dgrid, int h, int M, int K, int Hg, int Wg);
void msda_combine_forward_cuda(float *ao, const float *att, const float *samp, int h, int N, int M, int K, int hd,
                               int P);
void msda_combine_backward_cuda(float *datt, float *dsamp, const float *dao, const float *att, const float *samp,
                                int h, int N, int M, int K, int hd, int P);

// ---- model/ops_baseline.h (ops_cuda_baseline.cu) -------------------------------------------------------------
void pair_probs_forward_cuda(float *out, const float *inp, int n);
void pair_prob_add_cuda(float *y, const float *inp, int n);
void ce_pair_forward_backward_cuda(float *loss, float *dlogits, const float *logits, const float *labels, int n,
                                   float scale);

// ---- tower helpers -------------------------------------------------------------------------------------------
// cols (B,T,K), T = g*g+1: row 0 of each image zero, row 1+gy*g+gx the patch (c, ky, kx) of pixels (B,C,S,S).
void im2col_patches_cuda(float *cols, const float *pixels, int B, int C, int S, int p, int g);
// x (B,T,W): row 0 of each image = cls + pos[0]; other rows += pos[t].
void add_class_positions_cuda(float *x, const float *cls, const float *pos, int B, int T, int W);
// x (B,T,W) += rows (T,W) for every b (positions added to a batch).
void add_positions_cuda(float *x, const float *rows, int B, int T, int W);
// dst (B,W) = src rows (b*T + idx[b]) of src (B*T, W); idx (B) a device array.
void gather_rows_cuda(float *dst, const float *src, const int *idx, int B, int T, int W);
// dst rows (b*T + idx[b]) += src (B,W).
void scatter_add_rows_cuda(float *dst, const float *src, const int *idx, int B, int T, int W);

// ---- benchmark helpers ---------------------------------------------------------------------------------------
// x (n) = scale · uniform[-1, 1) from a counter hash of (seed, i): random data without a host round trip.
void fill_uniform_cuda(float *x, size_t n, unsigned long long seed, float scale);
// dst (n bf16, device) = src (n) rounded to nearest even.
void float_to_bf16_cuda(void *dst, const float *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif
