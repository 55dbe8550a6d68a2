// Ops the heads' orchestration needs beside the layers (model/ops.h, ops_extra.h): batched GEMM, the small
// elementwise steps between layers, the losses' reductions into backend memory, and the deformable attentions'
// sampling and relative-position bias. CPU reference; model/cuda/ops_cuda.h has each as name##_cuda, and both
// are reached through the op table (model/backend.h). A backward accumulates (+=) unless it says otherwise.
#ifndef MODEL_OPS_HEADS_H
#define MODEL_OPS_HEADS_H

#include <stddef.h>

// Row-major C (M,N) = alpha·op(A)·op(B) + beta·C (op(X) = Xᵀ when trans_X; lda/ldb/ldc row strides), for `batch`
// problems stride_a/b/c floats apart; beta = 0 never reads C.
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, long stride_a,
          const float *B, int ldb, long stride_b, float beta, float *C, int ldc, long stride_c, int batch);

// y (n) += a·x; out (n) = a·inp (out may alias inp).
void axpy(float *y, const float *x, float a, size_t n);
void scale_copy(float *out, const float *inp, float a, size_t n);
// a, b (n) = the even and odd entries of ab (n,2); ab (n,2) = [a | b] interleaved (overwrites).
void deinterleave2(float *a, float *b, const float *ab, int n);
void interleave2(float *ab, const float *a, const float *b, int n);
// gt (n) = mask > 0.5, ngt (n) = 1 − gt.
void mask_binarize(float *gt, float *ngt, const float *mask, int n);

// Softmax over the 2 rows of (2,n), per column: out (2,n) may alias inp. The backward: dinp (2,n) +=.
void softmax_pair_forward(float *out, const float *inp, int n);
void softmax_pair_backward(float *dinp, const float *dout, const float *out, int n);
// d (R,C) = out ⊙ (d − Σ_c out·d) in place: softmax_rows_backward (scale 1) overwriting its input.
void softmax_rows_backward_inplace(float *d, const float *out, int R, int C);

// Losses into backend memory (model/kanoclip_losses.h has the math): loss[0] = the focal sum; D[0] = the dice
// ratio. Their backwards are kanoclip_losses.h's focal_sum_backward and dice_backward.
void focal_sum_op_forward(float *loss, const float *pn, const float *pa, const float *g, int n);
void dice_op_forward(float *D, const float *p, const float *g, int n);

// Min-max normalisation of x (n) in place (a constant map becomes 0). The backward, given y and the x before:
// dx += dy / d plus the gradients of min and max shared by the tied extremes, as torch's amin/amax.
void minmax_forward(float *x, int n);
void minmax_backward(float *dx, const float *dy, const float *x, const float *y, int n);
// out[0] = max of x (n); dx (n) += g / (number of maxima) at each maximum (torch's max backward over ties).
void max_value(float *out, const float *x, int n);
void max_ties_backward(float *dx, const float *x, int n, float g);

// DAT (model/deform_attn.h): pos (N,2) = ref + range·tanh(off)·(1/Wg, 1/Hg), off (N,2) = (dy, dx), pos (x, y);
// the backward writes doff (N,2) (no accumulation).
void dat_positions_forward(float *pos, const float *off, int Hg, int Wg, float range);
void dat_positions_backward(float *doff, const float *dpos, const float *off, int Hg, int Wg, float range);
// att (heads,N,N): scores in, probabilities out: += the relative-position bias rpe (heads, 2Hg−1, 2Wg−1) sampled
// at (ref_i − pos_j)/2 (align_corners, zeros), then softmax over keys. N = Hg·Wg; the heads share pos.
void dat_rpe_softmax_forward(float *att, const float *rpe, const float *pos, int heads, int Hg, int Wg);
// From the bias's gradient datt (heads,N,N): drpe (heads, 2Hg−1, 2Wg−1) +=, dpos (N,2) +=.
void dat_rpe_backward(float *drpe, float *dpos, const float *datt, const float *rpe, const float *pos, int heads,
                      int Hg, int Wg);

// MSDA (model/msda_attn.h), head h of M with K points: grid (N,K,2) = 2·(ref + off/(Wg,Hg)) − 1 from off
// (N, M·K·2); the backward writes head h's entries of doff from dgrid (N,K,2).
void msda_grid_forward(float *grid, const float *off, int h, int M, int K, int Hg, int Wg);
void msda_grid_backward(float *doff, const float *dgrid, int h, int M, int K, int Hg, int Wg);
// ao (N,P) columns [h·hd, (h+1)·hd) = Σ_k att (N, M·K)[q, h·K + k] · samp (N,K,hd)[q,k]; the backward writes
// head h's entries of datt and dsamp (N,K,hd).
void msda_combine_forward(float *ao, const float *att, const float *samp, int h, int N, int M, int K, int hd, int P);
void msda_combine_backward(float *datt, float *dsamp, const float *dao, const float *att, const float *samp, int h,
                           int N, int M, int K, int hd, int P);

#endif
