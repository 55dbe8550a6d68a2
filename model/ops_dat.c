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

// Four heads' values side by side (GCC's vector extension: SSE on x86, plain code elsewhere); the backward keeps
// the tables and their gradients as [cell][head], so one bilinear tap serves four heads with one vector.
typedef float v4 __attribute__((vector_size(16)));
enum { RPE_BLOCKS = 16 };  // fixed row blocks: the sums do not depend on the thread count

// Query rows [i0, i1) into one block's accumulators: dtab (RS·HV v4s) and dp ((gx, gy) per key). tab: the tables
// as [cell][head] (HV vectors of four heads per cell).
static void rpe_backward_rows(v4 *dtab, v4 *dp, const float *datt, const v4 *tab, const AxisTap *xt,
                              const AxisTap *yt, int heads, int Hg, int Wg, int i0, int i1) {
    int N = Hg * Wg, RW = 2 * Wg - 1, HV = (heads + 3) / 4;
    for (int i = i0; i < i1; i++) {
        const AxisTap *tx = xt + (size_t)(i % Wg) * N, *ty = yt + (size_t)(i / Wg) * N;
        for (int q = 0; q < HV; q++) {
            const float *d[4];
            for (int l = 0; l < 4; l++)  // the block's heads past the last read head 0's row, weighted 0
                d[l] = datt + ((size_t)(4 * q + l < heads ? 4 * q + l : 0) * N + i) * N;
            v4 live = {1.0f, 4 * q + 1 < heads, 4 * q + 2 < heads, 4 * q + 3 < heads};
            for (int j = 0; j < N; j++) {
                AxisTap ax = tx[j], ay = ty[j];
                float wx0 = (1.0f - ax.f) * ax.m0, wx1 = ax.f * ax.m1;
                float wy0 = (1.0f - ay.f) * ay.m0, wy1 = ay.f * ay.m1;
                size_t c00 = (size_t)(ay.i0 * RW + ax.i0) * HV + q, c01 = (size_t)(ay.i0 * RW + ax.i1) * HV + q,
                       c10 = (size_t)(ay.i1 * RW + ax.i0) * HV + q, c11 = (size_t)(ay.i1 * RW + ax.i1) * HV + q;
                v4 dv = (v4){d[0][j], d[1][j], d[2][j], d[3][j]} * live;
                v4 t00 = tab[c00], t01 = tab[c01], t10 = tab[c10], t11 = tab[c11];
                dtab[c00] += (wy0 * wx0) * dv; dtab[c01] += (wy0 * wx1) * dv;
                dtab[c10] += (wy1 * wx0) * dv; dtab[c11] += (wy1 * wx1) * dv;
                // zero padding: a corner outside the table reads as 0 (its mask), its weight is already 0
                dp[2 * j] += dv * (wy0 * (ax.m1 * t01 - ax.m0 * t00) + wy1 * (ax.m1 * t11 - ax.m0 * t10));
                dp[2 * j + 1] += dv * (wx0 * (ay.m1 * t10 - ay.m0 * t00) + wx1 * (ay.m1 * t11 - ay.m0 * t01));
            }
        }
    }
}

// bias B_h[i,j] = rpe_h sampled at (ref_i − pos_j)/2: gradients to the tables and to pos_j, one tap per (i, j)
// for all heads. Query rows are split into RPE_BLOCKS blocks, each summing into its own tables and position
// gradients; the blocks are added in order after, so the result is the same on any number of threads.
void dat_rpe_backward(float *drpe, float *dpos, const float *datt, const float *rpe, const float *pos, int heads,
                      int Hg, int Wg) {
    int N = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1, RS = RH * RW, HV = (heads + 3) / 4;
    size_t tab_n = (size_t)RS * HV, part_n = tab_n + 2 * (size_t)N;  // v4s per block: tables, then (gx, gy) per key
    v4 *tab = aligned_alloc(16, sizeof(v4) * tab_n), *part = aligned_alloc(16, sizeof(v4) * part_n * RPE_BLOCKS);
    AxisTap *xt = malloc(sizeof(AxisTap) * (size_t)N * (Hg + Wg)), *yt = xt + (size_t)N * Wg;
    if (!tab || !part || !xt) abort();
    memset(part, 0, sizeof(v4) * part_n * RPE_BLOCKS);
    for (int r = 0; r < RS; r++)
        for (int q = 0; q < HV; q++)
            for (int l = 0; l < 4; l++) tab[(size_t)r * HV + q][l] = 4 * q + l < heads ? rpe[(size_t)(4 * q + l) * RS + r] : 0.0f;
    axis_taps(xt, yt, pos, Hg, Wg);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < RPE_BLOCKS; b++) {
        v4 *dtab = part + (size_t)b * part_n;
        rpe_backward_rows(dtab, dtab + tab_n, datt, tab, xt, yt, heads, Hg, Wg, (int)((long)N * b / RPE_BLOCKS),
                          (int)((long)N * (b + 1) / RPE_BLOCKS));
    }
    float sx = 0.5f * (RW - 1), sy = 0.5f * (RH - 1);
    #pragma omp parallel for
    for (int r = 0; r < RS; r++)
        for (int q = 0; q < HV; q++) {
            v4 s = {0};
            for (int b = 0; b < RPE_BLOCKS; b++) s += part[(size_t)b * part_n + (size_t)r * HV + q];
            for (int l = 0; l < 4 && 4 * q + l < heads; l++) drpe[(size_t)(4 * q + l) * RS + r] += s[l];
        }
    #pragma omp parallel for
    for (int j = 0; j < N; j++) {
        v4 gx = {0}, gy = {0};
        for (int b = 0; b < RPE_BLOCKS; b++) {
            const v4 *dp = part + (size_t)b * part_n + tab_n;
            gx += dp[2 * j], gy += dp[2 * j + 1];
        }
        dpos[2 * j] -= 0.5f * sx * (gx[0] + gx[1] + gx[2] + gx[3]);
        dpos[2 * j + 1] -= 0.5f * sy * (gy[0] + gy[1] + gy[2] + gy[3]);
    }
    free(tab);
    free(part);
    free(xt);
}
