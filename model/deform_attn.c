// DAT v1 deformable self-attention (see deform_attn.h for the math). GEMMs through sgemm (model/gemm.h) per head; the
// relative-position bias is sampled on the fly in the forward and again in the backward rather than stored.
#include "model/deform_attn.h"

#include "model/gemm.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

size_t dattn_param_count(const DattnShape *s) {
    size_t P = s->P, Cg = P / s->G;
    size_t n = 4 * (P * P + P) + Cg * s->k * s->k + Cg + 2 * Cg + 2 * Cg;
    if (s->rpe) n += (size_t)s->H * (2 * s->Hg - 1) * (2 * s->Wg - 1);
    return n;
}

int dattn_acts_alloc(DattnActs *a, const DattnShape *s) {
    size_t N = (size_t)s->Hg * s->Wg, P = s->P, G = s->G, Cg = P / G;
    size_t sizes[] = {N * P, G * N * Cg, G * N * Cg, G * N * Cg, G * N, G * N, G * N * 2, G * N * 2, N * P, N * P,
                      N * P, (size_t)s->H * N * N, N * P, N * P, N * P, N * P, N * P, N * P, (size_t)(s->H / G) * N * N,
                      G * N * Cg, G * N * Cg, G * N * Cg, G * N * 2, G * N * 2};
    float **ptrs[] = {&a->q, &a->dw, &a->ln, &a->ge, &a->ln_mean, &a->ln_rstd, &a->off, &a->pos, &a->xs, &a->k,
                      &a->v, &a->att, &a->ao, &a->dao, &a->dq, &a->dxs, &a->dk, &a->dv, &a->datt,
                      &a->dge, &a->dln, &a->ddw, &a->dpos, &a->doff};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += sizes[i];
    a->mem = malloc(total * sizeof(float));
    if (!a->mem) return err_set("deformable attention: out of memory (%zu MB)", total * 4 >> 20);
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = at; at += sizes[i]; }
    return 0;
}

void dattn_acts_free(DattnActs *a) { free(a->mem); a->mem = NULL; }

// Pixel centre of cell i of n along one axis, normalised to [-1, 1] (DAT _get_ref_points).
static inline float ref_coord(int i, int n) { return (i + 0.5f) / n * 2.0f - 1.0f; }

// Reference point of grid cell n.
static inline void ref_point(int n, int Hg, int Wg, float *rx, float *ry) {
    *rx = ref_coord(n % Wg, Wg);
    *ry = ref_coord(n / Wg, Hg);
}

// The relative-position bias samples the table (align_corners = True) at (ref_i − pos_j)/2, whose x part depends
// only on the query column and key j, and whose y part only on the query row and key j: the bilinear tap
// factorises into one tap per axis, computed once per (query column, key) and (query row, key).
typedef struct { int i0, i1; float f, m0, m1; } AxisTap;  // corners (clamped), fraction, corner validity

static inline AxisTap axis_tap(float ref, float pk, int R) {
    float x = ((ref - pk) * 0.5f + 1.0f) * 0.5f * (R - 1);  // as bilinear_unnormalise(align_corners = 1)
    float x0f = floorf(x);
    int x0 = (int)x0f;
    AxisTap t;
    t.f = x - x0f;
    t.m0 = (x0 >= 0 && x0 < R) ? 1.0f : 0.0f;
    t.m1 = (x0 + 1 >= 0 && x0 + 1 < R) ? 1.0f : 0.0f;
    t.i0 = t.m0 > 0 ? x0 : 0;
    t.i1 = t.m1 > 0 ? x0 + 1 : 0;
    return t;
}

// xt (Wg, N): taps along x for query column c and key j; yt (Hg, N) along y. pos (N, 2) of one group.
static void axis_taps(AxisTap *xt, AxisTap *yt, const float *pos, int Hg, int Wg) {
    int N = Hg * Wg;
    #pragma omp parallel for
    for (int j = 0; j < N; j++) {
        for (int c = 0; c < Wg; c++) xt[(size_t)c * N + j] = axis_tap(ref_coord(c, Wg), pos[2 * j], 2 * Wg - 1);
        for (int r = 0; r < Hg; r++) yt[(size_t)r * N + j] = axis_tap(ref_coord(r, Hg), pos[2 * j + 1], 2 * Hg - 1);
    }
}

// Tap t as two table offsets (times mul: 1 along x, the table's row length along y) and two weights with the zero
// padding folded in, at rows 2·row and 2·row + 1 of (.., N) arrays.
static inline void put_flat(int *idx, float *w, size_t row, int j, int N, AxisTap t, int mul) {
    size_t a = 2 * row * N + j, b = (2 * row + 1) * N + j;
    idx[a] = t.i0 * mul, idx[b] = t.i1 * mul;
    w[a] = (1.0f - t.f) * t.m0, w[b] = t.f * t.m1;
}

// The taps of axis_taps in the flat form the forward's vector gather loop reads: ix/wx (2·Wg, N) per query
// column, iy/wy (2·Hg, N) per query row (iy as offsets of table rows).
static void flat_taps(int *ix, float *wx, int *iy, float *wy, const float *pos, int Hg, int Wg) {
    int N = Hg * Wg;
    #pragma omp parallel for
    for (int j = 0; j < N; j++) {
        for (int c = 0; c < Wg; c++)
            put_flat(ix, wx, c, j, N, axis_tap(ref_coord(c, Wg), pos[2 * j], 2 * Wg - 1), 1);
        for (int r = 0; r < Hg; r++)
            put_flat(iy, wy, r, j, N, axis_tap(ref_coord(r, Hg), pos[2 * j + 1], 2 * Hg - 1), 2 * Wg - 1);
    }
}

void dattn_forward(float *out, DattnActs *a, const DattnParams *p, const float *x, const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    int RH = 2 * Hg - 1, RW = 2 * Wg - 1;
    float scale = 1.0f / sqrtf((float)hd);
    matmul_forward(a->q, x, p->q_w, p->q_b, N, P, P);
    for (int g = 0; g < G; g++) {
        size_t go = (size_t)g * N * Cg;
        dwconv_forward(a->dw + go, a->q + g * Cg, p->off_dw_w, p->off_dw_b, Hg, Wg, Cg, P, s->k);
        layernorm_forward(a->ln + go, a->ln_mean + (size_t)g * N, a->ln_rstd + (size_t)g * N, a->dw + go,
                          p->off_ln_w, p->off_ln_b, N, Cg, 1e-5f);
        gelu_forward(a->ge + go, a->ln + go, (size_t)N * Cg);
        float *off = a->off + (size_t)g * N * 2, *pos = a->pos + (size_t)g * N * 2;
        matmul_forward(off, a->ge + go, p->off_pw_w, NULL, N, Cg, 2);
        for (int n = 0; n < N; n++) {
            float rx, ry;
            ref_point(n, Hg, Wg, &rx, &ry);
            pos[2 * n] = rx + s->range * tanhf(off[2 * n + 1]) / Wg;
            pos[2 * n + 1] = ry + s->range * tanhf(off[2 * n]) / Hg;
        }
        grid_sample_forward(a->xs + g * Cg, x + g * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
    }
    matmul_forward(a->k, a->xs, p->k_w, p->k_b, N, P, P);
    matmul_forward(a->v, a->xs, p->v_w, p->v_b, N, P, P);
    for (int h = 0; h < H; h++)
        sgemm(CblasNoTrans, CblasTrans, N, N, hd, scale, a->q + h * hd, P, a->k + h * hd, P,
                    0.0f, a->att + (size_t)h * N * N, N);
    if (s->rpe) {
        // The taps as flat arrays, so the key loop is a vector loop of gathers.
        size_t nx = (size_t)Wg * N, ny = (size_t)Hg * N;
        int *ix = malloc(sizeof(int) * 2 * (nx + ny)), *iy = ix + 2 * nx;
        float *wx = malloc(sizeof(float) * 2 * (nx + ny)), *wy = wx + 2 * nx;
        for (int g = 0; g < G; g++) {
            flat_taps(ix, wx, iy, wy, a->pos + (size_t)g * N * 2, Hg, Wg);
            #pragma omp parallel for
            for (int i = 0; i < N; i++) {
                size_t xo = (size_t)2 * (i % Wg) * N, yo = (size_t)2 * (i / Wg) * N;
                const int *cx0 = ix + xo, *cx1 = cx0 + N, *ry0 = iy + yo, *ry1 = ry0 + N;
                const float *wx0 = wx + xo, *wx1 = wx0 + N, *wy0 = wy + yo, *wy1 = wy0 + N;
                for (int hh = 0; hh < hpg; hh++) {
                    const float *tab = p->rpe + (size_t)(g * hpg + hh) * RH * RW;
                    float *row = a->att + ((size_t)(g * hpg + hh) * N + i) * N;
                    #pragma omp simd
                    for (int j = 0; j < N; j++)
                        row[j] += wy0[j] * (wx0[j] * tab[ry0[j] + cx0[j]] + wx1[j] * tab[ry0[j] + cx1[j]]) +
                                  wy1[j] * (wx0[j] * tab[ry1[j] + cx0[j]] + wx1[j] * tab[ry1[j] + cx1[j]]);
                    // row i of this head is complete: its softmax now, while it is still in cache
                    softmax_row_scaled(row, row, N, 1.0f);
                }
            }
        }
        free(ix);
        free(wx);
    } else {
        softmax_rows_forward(a->att, a->att, H * N, N, 1.0f);
    }
    for (int h = 0; h < H; h++)
        sgemm(CblasNoTrans, CblasNoTrans, N, hd, N, 1.0f, a->att + (size_t)h * N * N, N,
                    a->v + h * hd, P, 0.0f, a->ao + h * hd, P);
    matmul_forward(out, a->ao, p->o_w, p->o_b, N, P, P);
}

void dattn_backward(float *dx, DattnParams *gr, const float *dout, DattnActs *a, const DattnParams *p,
                    const float *x, const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    int RH = 2 * Hg - 1, RW = 2 * Wg - 1, RS = RH * RW;
    float scale = 1.0f / sqrtf((float)hd);
    size_t NP = (size_t)N * P;
    memset(a->dao, 0, NP * 4); memset(a->dq, 0, NP * 4); memset(a->dxs, 0, NP * 4);
    memset(a->dk, 0, NP * 4); memset(a->dv, 0, NP * 4);
    memset(a->dpos, 0, sizeof(float) * G * N * 2);
    matmul_backward(a->dao, gr->o_w, gr->o_b, dout, a->ao, p->o_w, N, P, P);
    int nth = omp_get_max_threads();
    float *priv = s->rpe ? calloc((size_t)nth * (hpg * RS + 2 * N), sizeof(float)) : NULL;
    AxisTap *xt = s->rpe ? malloc(sizeof(AxisTap) * (size_t)N * (Hg + Wg)) : NULL, *yt = xt ? xt + (size_t)N * Wg : NULL;
    for (int g = 0; g < G; g++) {
        for (int hh = 0; hh < hpg; hh++) {
            int h = g * hpg + hh;
            const float *att = a->att + (size_t)h * N * N;
            float *datt = a->datt + (size_t)hh * N * N;
            // datt = dao_h v_hᵀ; dv_h += att_hᵀ dao_h
            sgemm(CblasNoTrans, CblasTrans, N, N, hd, 1.0f, a->dao + h * hd, P, a->v + h * hd, P,
                        0.0f, datt, N);
            sgemm(CblasTrans, CblasNoTrans, N, hd, N, 1.0f, att, N, a->dao + h * hd, P, 1.0f,
                        a->dv + h * hd, P);
            // softmax backward in place: dlogits = att ⊙ (datt − Σ att·datt)
            #pragma omp parallel for
            for (int i = 0; i < N; i++) {
                const float *pr = att + (size_t)i * N;
                float *d = datt + (size_t)i * N;
                float dot = 0.0f;  // float vector lanes (a double reduction would not vectorise)
                #pragma omp simd reduction(+ : dot)
                for (int j = 0; j < N; j++) dot += pr[j] * d[j];
                #pragma omp simd
                for (int j = 0; j < N; j++) d[j] = pr[j] * (d[j] - dot);
            }
        }
        if (s->rpe) {
            // bias B_h[i,j] = rpe_h sampled at (ref_i − pos_j)/2: gradients to the group's tables and to pos_j,
            // one tap per (i, j) for all heads of the group; per-thread accumulators, summed after
            axis_taps(xt, yt, a->pos + (size_t)g * N * 2, Hg, Wg);
            memset(priv, 0, sizeof(float) * nth * (hpg * RS + 2 * N));
            float sx = 0.5f * (RW - 1), sy = 0.5f * (RH - 1);
            #pragma omp parallel
            {
                float *dtab = priv + (size_t)omp_get_thread_num() * (hpg * RS + 2 * N), *dp = dtab + hpg * RS;
                #pragma omp for
                for (int i = 0; i < N; i++) {
                    const AxisTap *tx = xt + (size_t)(i % Wg) * N, *ty = yt + (size_t)(i / Wg) * N;
                    for (int j = 0; j < N; j++) {
                        AxisTap ax = tx[j], ay = ty[j];
                        float wx0 = (1.0f - ax.f) * ax.m0, wx1 = ax.f * ax.m1;
                        float wy0 = (1.0f - ay.f) * ay.m0, wy1 = ay.f * ay.m1;
                        int c00 = ay.i0 * RW + ax.i0, c01 = ay.i0 * RW + ax.i1, c10 = ay.i1 * RW + ax.i0,
                            c11 = ay.i1 * RW + ax.i1;
                        float gx = 0.0f, gy = 0.0f;
                        for (int hh = 0; hh < hpg; hh++) {
                            const float *tab = p->rpe + (size_t)(g * hpg + hh) * RS;
                            float *dt = dtab + (size_t)hh * RS;
                            float d = a->datt[((size_t)hh * N + i) * N + j];
                            // corner values with zero padding (invalid corners read as 0)
                            float v00 = ay.m0 * ax.m0 * tab[c00], v01 = ay.m0 * ax.m1 * tab[c01];
                            float v10 = ay.m1 * ax.m0 * tab[c10], v11 = ay.m1 * ax.m1 * tab[c11];
                            dt[c00] += wy0 * wx0 * d; dt[c01] += wy0 * wx1 * d;
                            dt[c10] += wy1 * wx0 * d; dt[c11] += wy1 * wx1 * d;
                            gx += d * ((1.0f - ay.f) * (v01 - v00) + ay.f * (v11 - v10));
                            gy += d * ((1.0f - ax.f) * (v10 - v00) + ax.f * (v11 - v01));
                        }
                        dp[2 * j] -= 0.5f * gx * sx;
                        dp[2 * j + 1] -= 0.5f * gy * sy;
                    }
                }
            }
            float *gtab = gr->rpe + (size_t)g * hpg * RS, *gpos = a->dpos + (size_t)g * N * 2;
            for (int t = 0; t < nth; t++) {
                const float *dtab = priv + (size_t)t * (hpg * RS + 2 * N), *dp = dtab + hpg * RS;
                for (int r = 0; r < hpg * RS; r++) gtab[r] += dtab[r];
                for (int r = 0; r < 2 * N; r++) gpos[r] += dp[r];
            }
        }
        for (int hh = 0; hh < hpg; hh++) {
            int h = g * hpg + hh;
            const float *datt = a->datt + (size_t)hh * N * N;
            // dq_h += scale dlogits k_h; dk_h += scale dlogitsᵀ q_h
            sgemm(CblasNoTrans, CblasNoTrans, N, hd, N, scale, datt, N, a->k + h * hd, P, 1.0f,
                        a->dq + h * hd, P);
            sgemm(CblasTrans, CblasNoTrans, N, hd, N, scale, datt, N, a->q + h * hd, P, 1.0f,
                        a->dk + h * hd, P);
        }
    }
    free(priv);
    free(xt);
    matmul_backward(a->dxs, gr->k_w, gr->k_b, a->dk, a->xs, p->k_w, N, P, P);
    matmul_backward(a->dxs, gr->v_w, gr->v_b, a->dv, a->xs, p->v_w, N, P, P);
    for (int gi = 0; gi < G; gi++) {
        size_t go = (size_t)gi * N * Cg;
        float *pos = a->pos + (size_t)gi * N * 2, *dpos = a->dpos + (size_t)gi * N * 2;
        float *off = a->off + (size_t)gi * N * 2, *doff = a->doff + (size_t)gi * N * 2;
        grid_sample_backward(dx + gi * Cg, dpos, a->dxs + gi * Cg, x + gi * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
        for (int n = 0; n < N; n++) {
            float ty = tanhf(off[2 * n]), tx = tanhf(off[2 * n + 1]);
            doff[2 * n] = dpos[2 * n + 1] * s->range / Hg * (1.0f - ty * ty);
            doff[2 * n + 1] = dpos[2 * n] * s->range / Wg * (1.0f - tx * tx);
        }
        memset(a->dge + go, 0, sizeof(float) * N * Cg);
        memset(a->dln + go, 0, sizeof(float) * N * Cg);
        memset(a->ddw + go, 0, sizeof(float) * N * Cg);
        matmul_backward(a->dge + go, gr->off_pw_w, NULL, doff, a->ge + go, p->off_pw_w, N, Cg, 2);
        gelu_backward(a->dln + go, a->ln + go, a->dge + go, (size_t)N * Cg);
        layernorm_backward(a->ddw + go, gr->off_ln_w, gr->off_ln_b, a->dln + go, a->dw + go, p->off_ln_w,
                           a->ln_mean + (size_t)gi * N, a->ln_rstd + (size_t)gi * N, N, Cg);
        dwconv_backward(a->dq + gi * Cg, gr->off_dw_w, gr->off_dw_b, a->ddw + go, a->q + gi * Cg, p->off_dw_w, Hg, Wg,
                        Cg, P, s->k);
    }
    matmul_backward(dx, gr->q_w, gr->q_b, a->dq, x, p->q_w, N, P, P);
}
