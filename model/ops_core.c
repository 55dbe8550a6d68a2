// CPU reference of the core ops: GEMMs through sgemm (model/gemm.h: our AVX-512 / AVX2 kernels or OpenBLAS),
// the rest as OpenMP loops.
#include "model/ops.h"

#include "model/gemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Column sums (bias and LayerNorm parameter gradients) run over blocks of this many columns.
enum { SUM_COLS = 64 };

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC) {
    if (bias) {
        #pragma omp parallel for
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
    }
    sgemm(CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f,
                out, OC);
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    if (dinp)
        sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight)
        sgemm(CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        // each column summed down the rows in double, as one column at a time would, but a block of SUM_COLS
        // columns per pass so that every cache line of dout is read once, whole, and the sums are vector lanes
        #pragma omp parallel for
        for (int o0 = 0; o0 < OC; o0 += SUM_COLS) {
            int oc = OC - o0 < SUM_COLS ? OC - o0 : SUM_COLS;
            double s[SUM_COLS] = {0};
            for (int n = 0; n < N; n++) {
                const float *r = dout + (size_t)n * OC + o0;
                #pragma omp simd
                for (int o = 0; o < oc; o++) s[o] += r[o];
            }
            for (int o = 0; o < oc; o++) dbias[o0 + o] += (float)s[o];
        }
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps) {
    // two passes in float with vectorised partial sums (16 lanes): mean, then the variance of the deviations
    #pragma omp parallel for schedule(dynamic, 16) if (N > 16)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float m = 0.0f, v = 0.0f;
        #pragma omp simd reduction(+ : m)
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        #pragma omp simd reduction(+ : v)
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        #pragma omp simd
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * s * weight[i] + bias[i];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = s;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (dinp) {
        #pragma omp parallel for
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            // dx = s * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * weight
            double gm = 0.0, gx = 0.0;
            for (int i = 0; i < C; i++) {
                float g = dy[i] * weight[i], xh = (x[i] - m) * s;
                gm += g;
                gx += g * xh;
            }
            gm /= C;
            gx /= C;
            float *dx = dinp + (size_t)n * C;
            for (int i = 0; i < C; i++) {
                float xh = (x[i] - m) * s;
                dx[i] += s * (dy[i] * weight[i] - (float)gm - xh * (float)gx);
            }
        }
    }
    if (dweight || dbias) {  // column sums in blocks of SUM_COLS columns, as in matmul_backward's dbias
        #pragma omp parallel for
        for (int i0 = 0; i0 < C; i0 += SUM_COLS) {
            int ic = C - i0 < SUM_COLS ? C - i0 : SUM_COLS;
            double dw[SUM_COLS] = {0}, db[SUM_COLS] = {0};
            for (int n = 0; n < N; n++) {
                const float *dy = dout + (size_t)n * C + i0, *x = inp + (size_t)n * C + i0;
                float m = mean[n], s = rstd[n];
                #pragma omp simd
                for (int i = 0; i < ic; i++) {
                    dw[i] += dy[i] * (x[i] - m) * s;
                    db[i] += dy[i];
                }
            }
            for (int i = 0; i < ic; i++) {
                if (dweight) dweight[i0 + i] += (float)dw[i];
                if (dbias) dbias[i0 + i] += (float)db[i];
            }
        }
    }
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int Tq,
                       int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *qb = q + (size_t)b * Tq * ldq + h * hd;
            const float *kb = k + (size_t)b * Tk * ldkv + h * hd;
            const float *vb = v + (size_t)b * Tk * ldkv + h * hd;
            float *p = att + ((size_t)b * H + h) * Tq * Tk;
            // p (Tq,Tk) = scale · q kᵀ, then a row softmax (masked above the diagonal when causal)
            sgemm(CblasNoTrans, CblasTrans, Tq, Tk, hd, scale, qb, ldq, kb, ldkv, 0.0f, p, Tk);
            for (int i = 0; i < Tq; i++) {
                float *row = p + (size_t)i * Tk;
                int n = causal ? i + 1 : Tk;
                float mx = -INFINITY;
                for (int j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
                float sum = 0.0f;
                for (int j = 0; j < n; j++) { row[j] = expf(row[j] - mx); sum += row[j]; }
                float inv = 1.0f / sum;
                for (int j = 0; j < n; j++) row[j] *= inv;
                for (int j = n; j < Tk; j++) row[j] = 0.0f;
            }
            sgemm(CblasNoTrans, CblasNoTrans, Tq, hd, Tk, 1.0f, p, Tk, vb, ldkv, 0.0f,
                        out + (size_t)b * Tq * ldo + h * hd, ldo);
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H, int hd,
                        int ldq, int ldkv, int ldo, float scale) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t qo = (size_t)b * Tq * ldq + h * hd, ko = (size_t)b * Tk * ldkv + h * hd;
            const float *p = att + ((size_t)b * H + h) * Tq * Tk;
            const float *dob = dout + (size_t)b * Tq * ldo + h * hd;
            float *dp = datt + ((size_t)b * H + h) * Tq * Tk;
            // dv += pᵀ dout; dp = dout vᵀ; ds = p ∘ (dp - rowsum(dp ∘ p)); dq += scale ds k; dk += scale dsᵀ q
            if (dv)
                sgemm(CblasTrans, CblasNoTrans, Tk, hd, Tq, 1.0f, p, Tk, dob, ldo, 1.0f,
                            dv + ko, ldkv);
            sgemm(CblasNoTrans, CblasTrans, Tq, Tk, hd, 1.0f, dob, ldo, v + ko, ldkv, 0.0f, dp,
                        Tk);
            for (int i = 0; i < Tq; i++) {
                const float *pr = p + (size_t)i * Tk;
                float *dr = dp + (size_t)i * Tk;
                double dot = 0.0;
                for (int j = 0; j < Tk; j++) dot += (double)pr[j] * dr[j];
                for (int j = 0; j < Tk; j++) dr[j] = pr[j] * (dr[j] - (float)dot);
            }
            if (dq)
                sgemm(CblasNoTrans, CblasNoTrans, Tq, hd, Tk, scale, dp, Tk, k + ko, ldkv, 1.0f,
                            dq + qo, ldq);
            if (dk)
                sgemm(CblasTrans, CblasNoTrans, Tk, hd, Tq, scale, dp, Tk, q + qo, ldq, 1.0f,
                            dk + ko, ldkv);
        }
    }
}

void quickgelu_forward(float *out, const float *inp, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = x / (1.0f + expf(-1.702f * x));
    }
}

void quickgelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i], s = 1.0f / (1.0f + expf(-1.702f * x));
        dinp[i] += dout[i] * (s + x * 1.702f * s * (1.0f - s));
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}
