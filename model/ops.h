// The op table's CPU reference: forward/backward pairs over plain float buffers (llm.c style).
// Row-major throughout. A backward accumulates (+=) into every gradient it is given; a NULL gradient
// pointer skips that part (frozen weights need no dweight; the prompt path needs only dinp).
#ifndef MODEL_OPS_H
#define MODEL_OPS_H

#include <stddef.h>

// out (N,OC) = inp (N,C) · weight (OC,C)ᵀ + bias (OC); bias may be NULL (nn.Linear convention).
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
// dinp (N,C) += dout (N,OC) · weight; dweight (OC,C) += doutᵀ · inp; dbias (OC) += Σ_n dout.
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);

// out (N,C) = (inp - mean) * rstd * weight + bias, per row; mean/rstd (N) saved for the backward (may be NULL).
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C);

// Multi-head scaled dot-product attention with explicit row strides, so packed q|k|v buffers work:
// q (B,Tq,·) with row stride ldq, head h at columns [h*hd, (h+1)*hd); k, v (B,Tk,·) with row stride ldkv;
// out (B,Tq,·) with row stride ldo. att (B,H,Tq,Tk) receives the softmax probabilities (kept for the backward).
// causal: position i attends to j <= i (requires Tq == Tk). scale is usually 1/sqrt(hd).
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int Tq,
                       int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale);
// dq, dk, dv (same layouts and strides as q, k, v; any may be NULL); datt (B,H,Tq,Tk) is scratch.
void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H, int hd,
                        int ldq, int ldkv, int ldo, float scale);

// QuickGELU (CLIP): x * sigmoid(1.702 x), elementwise over N values.
void quickgelu_forward(float *out, const float *inp, size_t N);
void quickgelu_backward(float *dinp, const float *inp, const float *dout, size_t N);

// out (N) = a + b (residual connections); out may alias a.
void residual_forward(float *out, const float *a, const float *b, size_t N);

#endif
