// CPU reference of DAT's sampling positions and relative-position bias (see ops_heads.h; the layer is
// model/deform_attn.c).
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops_extra.h"
#include "model/ops_heads.h"

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

void dat_positions_forward(float *pos, const float *off, int Hg, int Wg, float range) {
    for (int n = 0; n < Hg * Wg; n++) {
        float rx, ry;
        ref_point(n, Hg, Wg, &rx, &ry);
        pos[2 * n] = rx + range * tanhf(off[2 * n + 1]) / Wg;
        pos[2 * n + 1] = ry + range * tanhf(off[2 * n]) / Hg;
    }
}

void dat_positions_backward(float *doff, const float *dpos, const float *off, int Hg, int Wg, float range) {
    for (int n = 0; n < Hg * Wg; n++) {
        float ty = tanhf(off[2 * n]), tx = tanhf(off[2 * n + 1]);
        doff[2 * n] = dpos[2 * n + 1] * range / Hg * (1.0f - ty * ty);
        doff[2 * n + 1] = dpos[2 * n] * range / Wg * (1.0f - tx * tx);
    }
}

void dat_rpe_softmax_forward(float *att, const float *rpe, const float *pos, int heads, int Hg, int Wg) {
    int N = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1;
    // The taps as flat arrays, so the key loop is a vector loop of gathers.
    size_t nx = (size_t)Wg * N, ny = (size_t)Hg * N;
    int *ix = malloc(sizeof(int) * 2 * (nx + ny)), *iy = ix + 2 * nx;
    float *wx = malloc(sizeof(float) * 2 * (nx + ny)), *wy = wx + 2 * nx;
    flat_taps(ix, wx, iy, wy, pos, Hg, Wg);
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        size_t xo = (size_t)2 * (i % Wg) * N, yo = (size_t)2 * (i / Wg) * N;
        const int *cx0 = ix + xo, *cx1 = cx0 + N, *ry0 = iy + yo, *ry1 = ry0 + N;
        const float *wx0 = wx + xo, *wx1 = wx0 + N, *wy0 = wy + yo, *wy1 = wy0 + N;
        for (int hh = 0; hh < heads; hh++) {
            const float *tab = rpe + (size_t)hh * RH * RW;
            float *row = att + ((size_t)hh * N + i) * N;
            #pragma omp simd
            for (int j = 0; j < N; j++)
                row[j] += wy0[j] * (wx0[j] * tab[ry0[j] + cx0[j]] + wx1[j] * tab[ry0[j] + cx1[j]]) +
                          wy1[j] * (wx0[j] * tab[ry1[j] + cx0[j]] + wx1[j] * tab[ry1[j] + cx1[j]]);
            // row i of this head is complete: its softmax now, while it is still in cache
            softmax_row_scaled(row, row, N, 1.0f);
        }
    }
    free(ix);
    free(wx);
}

// bias B_h[i,j] = rpe_h sampled at (ref_i − pos_j)/2: gradients to the tables and to pos_j, one tap per (i, j)
// for all heads; per-thread accumulators, summed after.
void dat_rpe_backward(float *drpe, float *dpos, const float *datt, const float *rpe, const float *pos, int heads,
                      int Hg, int Wg) {
    int N = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1, RS = RH * RW, nth = omp_get_max_threads();
    float *priv = calloc((size_t)nth * (heads * RS + 2 * N), sizeof(float));
    AxisTap *xt = malloc(sizeof(AxisTap) * (size_t)N * (Hg + Wg)), *yt = xt + (size_t)N * Wg;
    axis_taps(xt, yt, pos, Hg, Wg);
    float sx = 0.5f * (RW - 1), sy = 0.5f * (RH - 1);
    #pragma omp parallel
    {
        float *dtab = priv + (size_t)omp_get_thread_num() * (heads * RS + 2 * N), *dp = dtab + heads * RS;
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
                for (int hh = 0; hh < heads; hh++) {
                    const float *tab = rpe + (size_t)hh * RS;
                    float *dt = dtab + (size_t)hh * RS;
                    float d = datt[((size_t)hh * N + i) * N + j];
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
    for (int t = 0; t < nth; t++) {
        const float *dtab = priv + (size_t)t * (heads * RS + 2 * N), *dp = dtab + heads * RS;
        for (int r = 0; r < heads * RS; r++) drpe[r] += dtab[r];
        for (int r = 0; r < 2 * N; r++) dpos[r] += dp[r];
    }
    free(priv);
    free(xt);
}
