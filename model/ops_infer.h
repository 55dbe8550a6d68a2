// CPU kernels beside the op table (model/ops.h) that the CLIP towers need: exact GELU, activations fused with a
// bias add, attention that keeps no probability matrix (inference), and the towers' loops
// (GEMM tiles, LayerNorm rows, attention heads) spread over the task pool (model/task_pool.h).
#ifndef MODEL_OPS_INFER_H
#define MODEL_OPS_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "model/linear_epilogue.h"
#include "model/vec_exp.h"

// Exact (erf) GELU, Hugging Face hidden_act "gelu": x * Φ(x).
void gelu_forward(float *out, const float *inp, size_t N);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N);

// x (N,C) = act(x + bias) in place, bias (C) may be NULL; act 0 = identity, 1 = QuickGELU, 2 = exact GELU.
// When pre (N,C) is given it receives x + bias before the activation (kept for a backward).
void bias_act_forward(float *x, float *pre, const float *bias, int N, int C, int act);

// out (N,OC) (row stride ldo) = epilogue(inp (N,C) (row stride ldi) · weight (OC,C)ᵀ, bias (OC) or NULL):
//   LINEAR_STORE   out = inp·Wᵀ + bias
//   LINEAR_ACCUM   out += inp·Wᵀ + bias (a residual stream)
//   LINEAR_QUICKGELU / LINEAR_GELU   out = act(inp·Wᵀ + bias)
// The work is split into row x column tiles that threads take dynamically (a thread that loses its core
// delays nothing but its own tile), the epilogue running while the tile is still in cache (model/task_pool.h).
// On AVX-512 builds the tiles run model/gemm_avx512.c's kernel on weights packed once per call; elsewhere (or
// with KANOCLIP_GEMM=openblas) each tile is one single-threaded sgemm call (model/gemm.h: our AVX2 kernel where
// the CPU has one, else OpenBLAS; OpenBLAS with KANOCLIP_GEMM=openblas).
void linear_forward(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *bias, int N,
                    int C, int OC, LinearMode mode);

// Frozen weights packed ahead of time for linear_forward_packed: the floats one (OC,C) weight needs (0 when
// this build has no packed kernel, or KANOCLIP_GEMM=openblas) and the packing (dst 64-byte aligned).
size_t linear_packed_floats(int OC, int C);
void linear_pack(float *dst, const float *weight, int OC, int C);
// linear_forward with the weight also given packed (NULL: use weight as linear_forward does).
void linear_forward_packed(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *packed,
                           const float *bias, int N, int C, int OC, LinearMode mode);

// LayerNorm of N rows of C, rows spread over the task pool; out may alias inp; mean/rstd (N) may be NULL.
void layernorm_rows_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, int N, int C, float eps);
// dinp (N,C) += the LayerNorm backward to its input (frozen weight and bias), over the pool.
void layernorm_rows_backward(float *dinp, const float *dout, const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C);
// dinp (N,C) = dout (N,OC) · weight (OC,C), overwriting dinp: the input half of a linear backward (frozen weight),
// in row x column tiles over the pool.
void linear_backward_inp(float *dinp, const float *dout, const float *weight, int N, int C, int OC);
// out (n) = act(pre) (act 1 = QuickGELU, 2 = exact GELU); d (n) *= act'(pre) in place. Over the pool.
void act_forward(float *out, const float *pre, size_t n, int act);
void act_backward_inplace(float *d, const float *pre, size_t n, int act);
// ops.h's attention_forward / attention_backward (probabilities kept), one (item, head) per pool task.
void attention_keep_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int Tq,
                            int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale);
void attention_keep_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                             const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H, int hd,
                             int ldq, int ldkv, int ldo, float scale);

// x (N,C) += bias (C) row-wise (a residual stream that a GEMM then accumulates into with beta = 1).
void add_bias_rows(float *x, const float *bias, int N, int C);

// Multi-head attention that keeps no (B,H,T,T) matrix: each task holds the scores of one block of at most
// 128 queries of one head (128 x Tk floats per thread), so memory stays small at any token count.
// q (B,Tq,·) row stride ldq, head h at columns [h*hd, (h+1)*hd); k, v (B,Tk,·) row stride ldkv;
// out (B,Tq,·) row stride ldo. causal: query i sees keys j <= i (Tq == Tk).
void attention_infer_forward(float *out, const float *q, const float *k, const float *v, int B, int Tq, int Tk,
                             int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale);

#endif
