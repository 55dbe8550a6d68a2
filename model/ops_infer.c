// CPU kernels for the CLIP towers beyond the core op table: exact GELU, fused bias + activation, and an
// attention that streams over query blocks instead of materialising (B,H,T,T) probabilities.
#include "model/ops_infer.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "model/task_pool.h"
#include "model/gemm_avx512.h"

#include "model/gemm.h"
#include <math.h>
#include <omp.h>
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

// One tile: rows [r0, r0+m), columns [c0, c0+n).
static void linear_tile(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *bias,
                        int C, int r0, int m, int c0, int n, LinearMode mode) {
    float *o = out + (size_t)r0 * ldo + c0;
    const float *b = bias ? bias + c0 : NULL;
    if (mode == LINEAR_ACCUM && b)
        for (int i = 0; i < m; i++) {
            float *row = o + (size_t)i * ldo;
            #pragma omp simd
            for (int j = 0; j < n; j++) row[j] += b[j];
        }
    sgemm(CblasNoTrans, CblasTrans, m, n, C, 1.0f, inp + (size_t)r0 * ldi, ldi,
                weight + (size_t)c0 * C, C, mode == LINEAR_ACCUM ? 1.0f : 0.0f, o, ldo);
    if (mode == LINEAR_ACCUM) return;
    for (int i = 0; i < m; i++) {
        float *row = o + (size_t)i * ldo;
        if (b) {
            #pragma omp simd
            for (int j = 0; j < n; j++) row[j] += b[j];
        }
        if (mode == LINEAR_QUICKGELU) {
            #pragma omp simd
            for (int j = 0; j < n; j++) row[j] = row[j] / (1.0f + exp_fast(-1.702f * row[j]));
        } else if (mode == LINEAR_GELU) {
            for (int j = 0; j < n; j++) row[j] = 0.5f * row[j] * (1.0f + erff(row[j] * (float)M_SQRT1_2));
        }
    }
}

typedef struct {
    float *out;
    const float *inp, *weight, *bias;
    int ldo, ldi, N, C, OC, rb, ng, cols;
    LinearMode mode;
} LinearJob;

static void linear_task(void *ctx, int t) {
    const LinearJob *j = ctx;
    int r0 = (t / j->ng) * j->rb, c0 = (t % j->ng) * j->cols;
    int m = j->N - r0 < j->rb ? j->N - r0 : j->rb, n = j->OC - c0 < j->cols ? j->OC - c0 : j->cols;
    linear_tile(j->out, j->ldo, j->inp, j->ldi, j->weight, j->bias, j->C, r0, m, c0, n, j->mode);
}

// KANOCLIP_GEMM=openblas forces the OpenBLAS tiles where the AVX-512 kernel is built (for comparisons, tests).
__attribute__((unused)) static int use_openblas(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("KANOCLIP_GEMM");
        v = e && !strcmp(e, "openblas");
    }
    return v;
}

void linear_forward(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *bias, int N,
                    int C, int OC, LinearMode mode) {
#if defined(__AVX512F__)
    if (!use_openblas()) {
        gemm_avx512_forward(out, ldo, inp, ldi, weight, bias, N, C, OC, mode);
        return;
    }
#endif
    int threads = task_pool_threads();
    // Row blocks of 256 keep OpenBLAS's re-packing of the weights small; column groups (multiples of 64) make
    // at least 4 tiles per thread so that the dynamic claiming can even out.
    int rb = N >= 512 ? 256 : N, nr = (N + rb - 1) / rb;
    int ng = threads > 1 ? (4 * threads + nr - 1) / nr : 1, col_units = (OC + 63) / 64;
    if (ng > col_units) ng = col_units;
    if (ng < 1) ng = 1;
    int units_per = (col_units + ng - 1) / ng;
    ng = (col_units + units_per - 1) / units_per;
    LinearJob j = {out, inp, weight, bias, ldo, ldi, N, C, OC, rb, ng, units_per * 64, mode};
    task_pool_run(nr * ng, linear_task, &j);
}

size_t linear_packed_floats(int OC, int C) {
#if defined(__AVX512F__)
    if (!use_openblas()) return gemm_avx512_packed_floats(OC, C);
#endif
    (void)OC, (void)C;
    return 0;
}

void linear_pack(float *dst, const float *weight, int OC, int C) {
#if defined(__AVX512F__)
    gemm_avx512_pack(dst, weight, OC, C);
#else
    (void)dst, (void)weight, (void)OC, (void)C;
#endif
}

void linear_forward_packed(float *out, int ldo, const float *inp, int ldi, const float *weight, const float *packed,
                           const float *bias, int N, int C, int OC, LinearMode mode) {
#if defined(__AVX512F__)
    if (packed) {
        gemm_avx512_forward_packed(out, ldo, inp, ldi, packed, bias, N, C, OC, mode);
        return;
    }
#endif
    linear_forward(out, ldo, inp, ldi, weight, bias, N, C, OC, mode);
}

typedef struct {
    float *out, *mean, *rstd;
    const float *inp, *weight, *bias, *dout;
    const float *cmean, *crstd;
    int N, C, rows;
    float eps;
} LayerNormJob;

enum { LN_ROWS = 32 };

static void layernorm_task(void *ctx, int t) {
    const LayerNormJob *j = ctx;
    size_t n0 = (size_t)t * LN_ROWS;
    int n = j->N - (int)n0 < LN_ROWS ? j->N - (int)n0 : LN_ROWS;
    layernorm_forward(j->out + n0 * j->C, j->mean ? j->mean + n0 : NULL, j->rstd ? j->rstd + n0 : NULL,
                      j->inp + n0 * j->C, j->weight, j->bias, n, j->C, j->eps);
}

void layernorm_rows_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, int N, int C, float eps) {
    LayerNormJob j = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight, .bias = bias, .N = N,
                      .C = C, .eps = eps};
    task_pool_run((N + LN_ROWS - 1) / LN_ROWS, layernorm_task, &j);
}

static void layernorm_back_task(void *ctx, int t) {
    const LayerNormJob *j = ctx;
    size_t n0 = (size_t)t * LN_ROWS;
    int n = j->N - (int)n0 < LN_ROWS ? j->N - (int)n0 : LN_ROWS;
    layernorm_backward(j->out + n0 * j->C, NULL, NULL, j->dout + n0 * j->C, j->inp + n0 * j->C, j->weight,
                       j->cmean + n0, j->crstd + n0, n, j->C);
}

void layernorm_rows_backward(float *dinp, const float *dout, const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C) {
    LayerNormJob j = {.out = dinp, .dout = dout, .inp = inp, .weight = weight, .cmean = mean, .crstd = rstd, .N = N,
                      .C = C};
    task_pool_run((N + LN_ROWS - 1) / LN_ROWS, layernorm_back_task, &j);
}

typedef struct {
    float *dinp;
    const float *dout, *weight;
    int N, C, OC, rb, ng, cols;
} BackJob;

static void linear_back_task(void *ctx, int t) {
    const BackJob *j = ctx;
    int r0 = (t / j->ng) * j->rb, c0 = (t % j->ng) * j->cols;
    int m = j->N - r0 < j->rb ? j->N - r0 : j->rb, n = j->C - c0 < j->cols ? j->C - c0 : j->cols;
    sgemm(CblasNoTrans, CblasNoTrans, m, n, j->OC, 1.0f, j->dout + (size_t)r0 * j->OC, j->OC,
                j->weight + c0, j->C, 0.0f, j->dinp + (size_t)r0 * j->C + c0, j->C);
}

void linear_backward_inp(float *dinp, const float *dout, const float *weight, int N, int C, int OC) {
    int threads = task_pool_threads();
    int rb = N >= 512 ? 256 : N, nr = (N + rb - 1) / rb;
    int ng = threads > 1 ? (4 * threads + nr - 1) / nr : 1, col_units = (C + 63) / 64;
    if (ng > col_units) ng = col_units;
    if (ng < 1) ng = 1;
    int units_per = (col_units + ng - 1) / ng;
    ng = (col_units + units_per - 1) / units_per;
    BackJob j = {dinp, dout, weight, N, C, OC, rb, ng, units_per * 64};
    task_pool_run(nr * ng, linear_back_task, &j);
}

typedef struct {
    float *out;
    const float *pre;
    size_t n;
    int act;
} ActJob;

enum { ACT_CHUNK = 16384 };

static void act_task(void *ctx, int t) {
    const ActJob *j = ctx;
    size_t i0 = (size_t)t * ACT_CHUNK, i1 = i0 + ACT_CHUNK < j->n ? i0 + ACT_CHUNK : j->n;
    float *o = j->out;
    const float *x = j->pre;
    if (j->act == 1) {
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) o[i] = x[i] / (1.0f + exp_fast(-1.702f * x[i]));
    } else {
        for (size_t i = i0; i < i1; i++) o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
    }
}

static void act_back_task(void *ctx, int t) {
    const ActJob *j = ctx;
    size_t i0 = (size_t)t * ACT_CHUNK, i1 = i0 + ACT_CHUNK < j->n ? i0 + ACT_CHUNK : j->n;
    float *d = j->out;
    const float *x = j->pre;
    if (j->act == 1) {  // d/dx x σ(1.702x) = σ + 1.702 x σ (1 - σ)
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) {
            float sg = 1.0f / (1.0f + exp_fast(-1.702f * x[i]));
            d[i] *= sg + 1.702f * x[i] * sg * (1.0f - sg);
        }
    } else {  // d/dx x Φ(x) = Φ(x) + x φ(x)
        for (size_t i = i0; i < i1; i++)
            d[i] *= 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2)) +
                    x[i] * 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
    }
}

void act_forward(float *out, const float *pre, size_t n, int act) {
    ActJob j = {out, pre, n, act};
    task_pool_run((int)((n + ACT_CHUNK - 1) / ACT_CHUNK), act_task, &j);
}

void act_backward_inplace(float *d, const float *pre, size_t n, int act) {
    ActJob j = {d, pre, n, act};
    task_pool_run((int)((n + ACT_CHUNK - 1) / ACT_CHUNK), act_back_task, &j);
}

typedef struct {
    float *out, *att, *dq, *dk, *dv, *datt;
    const float *q, *k, *v, *dout, *catt;
    int Tq, Tk, H, hd, ldq, ldkv, ldo, causal;
    float scale;
} KeepJob;

// One (item b, head h) through ops.h's attention (its OpenMP loop runs one thread inside a pool task).
static void keep_forward_task(void *ctx, int t) {
    const KeepJob *j = ctx;
    int b = t / j->H, h = t % j->H;
    size_t qo = (size_t)b * j->Tq * j->ldq + h * j->hd, ko = (size_t)b * j->Tk * j->ldkv + h * j->hd;
    attention_forward(j->out + (size_t)b * j->Tq * j->ldo + h * j->hd, j->att + (size_t)t * j->Tq * j->Tk,
                      j->q + qo, j->k + ko, j->v + ko, 1, j->Tq, j->Tk, 1, j->hd, j->ldq, j->ldkv, j->ldo, j->causal,
                      j->scale);
}

static void keep_backward_task(void *ctx, int t) {
    const KeepJob *j = ctx;
    int b = t / j->H, h = t % j->H;
    size_t qo = (size_t)b * j->Tq * j->ldq + h * j->hd, ko = (size_t)b * j->Tk * j->ldkv + h * j->hd;
    size_t ao = (size_t)t * j->Tq * j->Tk;
    attention_backward(j->dq ? j->dq + qo : NULL, j->dk ? j->dk + ko : NULL, j->dv ? j->dv + ko : NULL,
                       j->datt + ao, j->dout + (size_t)b * j->Tq * j->ldo + h * j->hd, j->catt + ao, j->q + qo,
                       j->k + ko, j->v + ko, 1, j->Tq, j->Tk, 1, j->hd, j->ldq, j->ldkv, j->ldo, j->scale);
}

void attention_keep_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int Tq,
                            int Tk, int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale) {
    KeepJob j = {.out = out, .att = att, .q = q, .k = k, .v = v, .Tq = Tq, .Tk = Tk, .H = H, .hd = hd, .ldq = ldq,
                 .ldkv = ldkv, .ldo = ldo, .causal = causal, .scale = scale};
    task_pool_run(B * H, keep_forward_task, &j);
}

void attention_keep_backward(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                             const float *q, const float *k, const float *v, int B, int Tq, int Tk, int H, int hd,
                             int ldq, int ldkv, int ldo, float scale) {
    KeepJob j = {.dq = dq, .dk = dk, .dv = dv, .datt = datt, .dout = dout, .catt = att, .q = q, .k = k, .v = v,
                 .Tq = Tq, .Tk = Tk, .H = H, .hd = hd, .ldq = ldq, .ldkv = ldkv, .ldo = ldo, .scale = scale};
    task_pool_run(B * H, keep_backward_task, &j);
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
    softmax_row_scaled(s, s, n, 1.0f);
    for (int j = n; j < len; j++) s[j] = 0.0f;
}

enum { QUERY_BLOCK = 128 };

typedef struct {
    float *out;
    const float *q, *k, *v;
    int B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, nqb;
    float scale;
} AttentionJob;

// One block of at most QUERY_BLOCK queries of one head of one item.
static void attention_task(void *ctx, int t) {
    const AttentionJob *j = ctx;
    int qb = t % j->nqb, h = (t / j->nqb) % j->H, b = t / (j->nqb * j->H);
    int i0 = qb * QUERY_BLOCK, m = j->Tq - i0 < QUERY_BLOCK ? j->Tq - i0 : QUERY_BLOCK;
    int nk = j->causal ? i0 + m : j->Tk;  // keys any query of this block may see
    const float *qp = j->q + ((size_t)b * j->Tq + i0) * j->ldq + h * j->hd;
    const float *kp = j->k + (size_t)b * j->Tk * j->ldkv + h * j->hd;
    const float *vp = j->v + (size_t)b * j->Tk * j->ldkv + h * j->hd;
    float *s = task_scratch((size_t)QUERY_BLOCK * j->Tk);  // (m, nk) scores
    // s = scale · q kᵀ; row softmax; out (m,hd) = s v
    sgemm(CblasNoTrans, CblasTrans, m, nk, j->hd, j->scale, qp, j->ldq, kp, j->ldkv, 0.0f, s,
                nk);
    for (int i = 0; i < m; i++) softmax_row(s + (size_t)i * nk, j->causal ? i0 + i + 1 : nk, nk);
    sgemm(CblasNoTrans, CblasNoTrans, m, j->hd, nk, 1.0f, s, nk, vp, j->ldkv, 0.0f,
                j->out + ((size_t)b * j->Tq + i0) * j->ldo + h * j->hd, j->ldo);
}

void attention_infer_forward(float *out, const float *q, const float *k, const float *v, int B, int Tq, int Tk,
                             int H, int hd, int ldq, int ldkv, int ldo, int causal, float scale) {
    int nqb = (Tq + QUERY_BLOCK - 1) / QUERY_BLOCK;
    AttentionJob j = {out, q, k, v, B, Tq, Tk, H, hd, ldq, ldkv, ldo, causal, nqb, scale};
    task_pool_run(B * H * nqb, attention_task, &j);
}
