// CPU reference of the heads' small ops (see ops_heads.h); the deformable attentions' ops are in ops_dat.c and
// ops_msda.c.
#include "model/ops_heads.h"

#include <math.h>

#include "model/gemm.h"
#include "model/kanoclip_losses.h"

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, long stride_a,
          const float *B, int ldb, long stride_b, float beta, float *C, int ldc, long stride_c, int batch) {
    for (int i = 0; i < batch; i++)
        sgemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
              A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
}

void axpy(float *y, const float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void scale_copy(float *out, const float *inp, float a, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a * inp[i];
}

void deinterleave2(float *a, float *b, const float *ab, int n) {
    for (int i = 0; i < n; i++) { a[i] = ab[2 * i]; b[i] = ab[2 * i + 1]; }
}

void interleave2(float *ab, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) { ab[2 * i] = a[i]; ab[2 * i + 1] = b[i]; }
}

void mask_binarize(float *gt, float *ngt, const float *mask, int n) {
    for (int i = 0; i < n; i++) { gt[i] = mask[i] > 0.5f ? 1.0f : 0.0f; ngt[i] = 1.0f - gt[i]; }
}

void softmax_pair_forward(float *out, const float *inp, int n) {
    for (int i = 0; i < n; i++) {
        float m = fmaxf(inp[i], inp[n + i]), e0 = expf(inp[i] - m), e1 = expf(inp[n + i] - m);
        out[i] = e0 / (e0 + e1);
        out[n + i] = e1 / (e0 + e1);
    }
}

void softmax_pair_backward(float *dinp, const float *dout, const float *out, int n) {
    for (int i = 0; i < n; i++) {
        float dot = out[i] * dout[i] + out[n + i] * dout[n + i];
        dinp[i] += out[i] * (dout[i] - dot);
        dinp[n + i] += out[n + i] * (dout[n + i] - dot);
    }
}

void softmax_rows_backward_inplace(float *d, const float *out, int R, int C) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *pr = out + (size_t)r * C;
        float *dr = d + (size_t)r * C;
        float dot = 0.0f;  // float vector lanes (a double reduction would not vectorise)
        #pragma omp simd reduction(+ : dot)
        for (int j = 0; j < C; j++) dot += pr[j] * dr[j];
        #pragma omp simd
        for (int j = 0; j < C; j++) dr[j] = pr[j] * (dr[j] - dot);
    }
}

void focal_sum_op_forward(float *loss, const float *pn, const float *pa, const float *g, int n) {
    loss[0] = (float)focal_sum_forward(pn, pa, g, n);
}

void dice_op_forward(float *D, const float *p, const float *g, int n) { D[0] = (float)dice_forward(p, g, n); }

void minmax_forward(float *x, int n) {
    float lo = x[0], hi = x[0];
    for (int q = 1; q < n; q++) lo = fminf(lo, x[q]), hi = fmaxf(hi, x[q]);
    float d = hi - lo;
    for (int q = 0; q < n; q++) x[q] = d > 0 ? (x[q] - lo) / d : 0.0f;
}

void minmax_backward(float *dx, const float *dy, const float *x, const float *y, int n) {
    float lo = x[0], hi = x[0];
    for (int q = 1; q < n; q++) lo = fminf(lo, x[q]), hi = fmaxf(hi, x[q]);
    float d = hi - lo;
    if (!(d > 0)) return;
    double glo = 0, ghi = 0;
    int nlo = 0, nhi = 0;
    for (int q = 0; q < n; q++) {
        dx[q] += dy[q] / d;
        glo += (double)dy[q] * (y[q] - 1.0) / d;
        ghi -= (double)dy[q] * y[q] / d;
        nlo += x[q] == lo;
        nhi += x[q] == hi;
    }
    for (int q = 0; q < n; q++) {
        if (x[q] == lo) dx[q] += (float)(glo / nlo);
        if (x[q] == hi) dx[q] += (float)(ghi / nhi);
    }
}

void max_value(float *out, const float *x, int n) {
    float mx = -INFINITY;
    for (int q = 0; q < n; q++) mx = fmaxf(mx, x[q]);
    out[0] = mx;
}

void max_ties_backward(float *dx, const float *x, int n, float g) {
    float mx = -INFINITY;
    for (int q = 0; q < n; q++) mx = fmaxf(mx, x[q]);
    int nmax = 0;
    for (int q = 0; q < n; q++) nmax += x[q] == mx;
    for (int q = 0; q < n; q++)
        if (x[q] == mx) dx[q] += g / nmax;
}
