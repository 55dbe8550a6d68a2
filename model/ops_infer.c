// CPU kernels for the CLIP towers beyond the core op table: exact GELU, fused bias + activation, and an
// attention that streams over query blocks instead of materialising (B,H,T,T) probabilities.
#include "model/ops_infer.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gelu_forward(float *out, const float *inp, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * (float)M_SQRT1_2));
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t N) {
    // d/dx x Φ(x) = Φ(x) + x φ(x)
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void bias_act_forward(float *x, float *pre, const float *bias, int N, int C, int act) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * C;
        float *prow = pre ? pre + (size_t)n * C : NULL;
        if (bias) {
            #pragma omp simd
            for (int c = 0; c < C; c++) row[c] += bias[c];
        }
        if (prow) memcpy(prow, row, sizeof(float) * C);
        if (act == 1) {
            #pragma omp simd
            for (int c = 0; c < C; c++) row[c] = row[c] / (1.0f + exp_fast(-1.702f * row[c]));
        } else if (act == 2) {
            for (int c = 0; c < C; c++) row[c] = 0.5f * row[c] * (1.0f + erff(row[c] * (float)M_SQRT1_2));
        }
    }
}

void add_bias_rows(float *x, const float *bias, int N, int C) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) row[c] += bias[c];
    }
}

// Row softmax of s[0..n) in place; s[n..len) is set to 0 (masked keys).
static void softmax_row(float *s, int n, int len) {
    float mx = -INFINITY;
    #pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        s[j] = exp_fast(s[j] - mx);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j < n; j++) s[j] *= inv;
    for (int j = n; j < len; j++) s[j] = 0.0f;
}

enum { QUERY_BLOCK = 128 };

void attention_infer_forward(float *out, const float *q, const float *k, const float *v, int B, int Tq, int Tk,
                             int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale) {
    int nqb = (Tq + QUERY_BLOCK - 1) / QUERY_BLOCK;
    #pragma omp parallel
    {
        float *s = malloc(sizeof(float) * QUERY_BLOCK * (size_t)Tk);  // (QUERY_BLOCK, Tk) scores of one block
        #pragma omp for collapse(3) schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                for (int qb = 0; qb < nqb; qb++) {
                    int i0 = qb * QUERY_BLOCK, m = Tq - i0 < QUERY_BLOCK ? Tq - i0 : QUERY_BLOCK;
                    int nk = causal ? i0 + m : Tk;  // keys any query of this block may see
                    const float *qp = q + ((size_t)b * Tq + i0) * ldq + h * hd;
                    const float *kp = k + (size_t)b * Tk * ldkv + h * hd;
                    const float *vp = v + (size_t)b * Tk * ldkv + h * hd;
                    // s (m,nk) = scale · q kᵀ; row softmax; out (m,hd) = s v
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hd, scale, qp, ldq, kp, ldkv, 0.0f,
                                s, nk);
                    for (int i = 0; i < m; i++) softmax_row(s + (size_t)i * nk, causal ? i0 + i + 1 : nk, nk);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, nk, 1.0f, s, nk, vp, ldkv, 0.0f,
                                out + ((size_t)b * Tq + i0) * ldo + h * hd, ldo);
                }
            }
        }
        free(s);
    }
}
