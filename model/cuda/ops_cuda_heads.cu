// The CUDA op table, part 3: the heads' orchestration ops (model/ops_heads.h), each mirroring its CPU loop in
// model/ops_heads.c, ops_dat.c and ops_msda.c. Reductions over one map (losses, min-max, max) run in one block of
// 1024 threads with double partial sums, as the CPU accumulates; scatters use atomicAdd.
#include <cuda_runtime.h>
#include <math.h>

#include "model/cuda/cuda_internal.cuh"
#include "model/cuda/ops_cuda.h"

#define LIVE(op) if (!cuda_live_(op)) return
#define RB 1024  // threads of the one-block reductions

// sum of v over the block (RB threads); every thread gets the total
__device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int o = RB / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    double t = sh[0];
    __syncthreads();
    return t;
}

__device__ float block_minmax(float v, float *sh, int want_max) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int o = RB / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o)
            sh[threadIdx.x] = want_max ? fmaxf(sh[threadIdx.x], sh[threadIdx.x + o]) : fminf(sh[threadIdx.x], sh[threadIdx.x + o]);
        __syncthreads();
    }
    float t = sh[0];
    __syncthreads();
    return t;
}

// ---- elementwise ---------------------------------------------------------------------------------------------

__global__ void axpy_kernel(float *y, const float *x, float a, size_t n) { GRID_STRIDE(i, n) y[i] += a * x[i]; }
__global__ void scale_copy_kernel(float *out, const float *inp, float a, size_t n) { GRID_STRIDE(i, n) out[i] = a * inp[i]; }
__global__ void deinterleave2_kernel(float *a, float *b, const float *ab, int n) {
    GRID_STRIDE(i, (size_t)n) { a[i] = ab[2 * i]; b[i] = ab[2 * i + 1]; }
}
__global__ void interleave2_kernel(float *ab, const float *a, const float *b, int n) {
    GRID_STRIDE(i, (size_t)n) { ab[2 * i] = a[i]; ab[2 * i + 1] = b[i]; }
}
__global__ void mask_binarize_kernel(float *gt, float *ngt, const float *mask, int n) {
    GRID_STRIDE(i, (size_t)n) { float g = mask[i] > 0.5f ? 1.0f : 0.0f; gt[i] = g; ngt[i] = 1.0f - g; }
}
__global__ void softmax_pair_forward_kernel(float *out, const float *inp, int n) {
    GRID_STRIDE(i, (size_t)n) {
        float m = fmaxf(inp[i], inp[n + i]), e0 = expf(inp[i] - m), e1 = expf(inp[n + i] - m);
        out[i] = e0 / (e0 + e1);
        out[n + i] = e1 / (e0 + e1);
    }
}
__global__ void softmax_pair_backward_kernel(float *dinp, const float *dout, const float *out, int n) {
    GRID_STRIDE(i, (size_t)n) {
        float dot = out[i] * dout[i] + out[n + i] * dout[n + i];
        dinp[i] += out[i] * (dout[i] - dot);
        dinp[n + i] += out[n + i] * (dout[n + i] - dot);
    }
}
// one warp per row
__global__ void softmax_rows_backward_inplace_kernel(float *d, const float *out, int R, int C) {
    int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= R) return;
    const float *y = out + (size_t)row * C;
    float *dy = d + (size_t)row * C;
    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) dot += y[c] * dy[c];
    dot = warp_sum(dot);
    for (int c = lane; c < C; c += 32) dy[c] = y[c] * (dy[c] - dot);
}

extern "C" void axpy_cuda(float *y, const float *x, float a, size_t n) {
    LIVE("axpy_cuda");
    CUDA_LAUNCH("axpy", axpy_kernel, blocks_for(n, 256), 256, 0, y, x, a, n);
}
extern "C" void scale_copy_cuda(float *out, const float *inp, float a, size_t n) {
    LIVE("scale_copy_cuda");
    CUDA_LAUNCH("scale_copy", scale_copy_kernel, blocks_for(n, 256), 256, 0, out, inp, a, n);
}
extern "C" void deinterleave2_cuda(float *a, float *b, const float *ab, int n) {
    LIVE("deinterleave2_cuda");
    CUDA_LAUNCH("deinterleave2", deinterleave2_kernel, blocks_for((size_t)n, 256), 256, 0, a, b, ab, n);
}
extern "C" void interleave2_cuda(float *ab, const float *a, const float *b, int n) {
    LIVE("interleave2_cuda");
    CUDA_LAUNCH("interleave2", interleave2_kernel, blocks_for((size_t)n, 256), 256, 0, ab, a, b, n);
}
extern "C" void mask_binarize_cuda(float *gt, float *ngt, const float *mask, int n) {
    LIVE("mask_binarize_cuda");
    CUDA_LAUNCH("mask_binarize", mask_binarize_kernel, blocks_for((size_t)n, 256), 256, 0, gt, ngt, mask, n);
}
extern "C" void softmax_pair_forward_cuda(float *out, const float *inp, int n) {
    LIVE("softmax_pair_forward_cuda");
    CUDA_LAUNCH("softmax_pair_forward", softmax_pair_forward_kernel, blocks_for((size_t)n, 256), 256, 0, out, inp, n);
}
extern "C" void softmax_pair_backward_cuda(float *dinp, const float *dout, const float *out, int n) {
    LIVE("softmax_pair_backward_cuda");
    CUDA_LAUNCH("softmax_pair_backward", softmax_pair_backward_kernel, blocks_for((size_t)n, 256), 256, 0, dinp, dout,
                out, n);
}
extern "C" void softmax_rows_backward_inplace_cuda(float *d, const float *out, int R, int C) {
    LIVE("softmax_rows_backward_inplace_cuda");
    CUDA_LAUNCH("softmax_rows_backward_inplace", softmax_rows_backward_inplace_kernel, (unsigned)((R + 7) / 8), 256, 0,
                d, out, R, C);
}

// ---- losses and map reductions (one block) -------------------------------------------------------------------

#define FOCAL_SMOOTH 1e-5f
__device__ __forceinline__ float focal_pt(float pn, float pa, float g) {
    float ya = g > 0.5f ? 1.0f - FOCAL_SMOOTH : FOCAL_SMOOTH, yn = g > 0.5f ? FOCAL_SMOOTH : 1.0f - FOCAL_SMOOTH;
    return yn * pn + ya * pa + FOCAL_SMOOTH;
}

__global__ void focal_forward_kernel(float *loss, const float *pn, const float *pa, const float *g, int n) {
    __shared__ double sh[RB];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += RB) {
        double pt = focal_pt(pn[i], pa[i], g[i]);
        s += -(1.0 - pt) * (1.0 - pt) * log(pt);
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) *loss = (float)s;
}
__global__ void focal_backward_kernel(float *dpn, float *dpa, const float *pn, const float *pa, const float *g, int n,
                                      float scale) {
    GRID_STRIDE(i, (size_t)n) {
        double pt = focal_pt(pn[i], pa[i], g[i]);
        double d = 2.0 * (1.0 - pt) * log(pt) - (1.0 - pt) * (1.0 - pt) / pt;
        float ya = g[i] > 0.5f ? 1.0f - FOCAL_SMOOTH : FOCAL_SMOOTH;
        dpa[i] += scale * (float)d * ya;
        dpn[i] += scale * (float)d * (1.0f - ya);
    }
}
// D = (2 Σ p·g + 1) / (Σ p + Σ g + 1); with dp: dp += scale · (2 g S − num) / S²
__global__ void dice_kernel(float *D, float *dp, const float *p, const float *g, int n, float scale) {
    __shared__ double sh[RB];
    double inter = 0.0, sp = 0.0, sg = 0.0;
    for (int i = threadIdx.x; i < n; i += RB) { inter += (double)p[i] * g[i]; sp += p[i]; sg += g[i]; }
    inter = block_sum(inter, sh);
    sp = block_sum(sp, sh);
    sg = block_sum(sg, sh);
    double S = sp + sg + 1.0, num = 2.0 * inter + 1.0;
    if (D && threadIdx.x == 0) *D = (float)(num / S);
    if (dp)
        for (int i = threadIdx.x; i < n; i += RB) dp[i] += scale * (float)((2.0 * g[i] * S - num) / (S * S));
}
__global__ void minmax_forward_kernel(float *x, int n) {
    __shared__ float sh[RB];
    float lo = INFINITY, hi = -INFINITY;
    for (int i = threadIdx.x; i < n; i += RB) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
    lo = block_minmax(lo, sh, 0);
    hi = block_minmax(hi, sh, 1);
    float d = hi - lo;
    for (int i = threadIdx.x; i < n; i += RB) x[i] = d > 0 ? (x[i] - lo) / d : 0.0f;
}
__global__ void minmax_backward_kernel(float *dx, const float *dy, const float *x, const float *y, int n) {
    __shared__ float shf[RB];
    __shared__ double sh[RB];
    float lo = INFINITY, hi = -INFINITY;
    for (int i = threadIdx.x; i < n; i += RB) { lo = fminf(lo, x[i]); hi = fmaxf(hi, x[i]); }
    lo = block_minmax(lo, shf, 0);
    hi = block_minmax(hi, shf, 1);
    float d = hi - lo;
    if (!(d > 0)) return;
    double glo = 0, ghi = 0, nlo = 0, nhi = 0;
    for (int i = threadIdx.x; i < n; i += RB) {
        dx[i] += dy[i] / d;
        glo += (double)dy[i] * (y[i] - 1.0) / d;
        ghi -= (double)dy[i] * y[i] / d;
        nlo += x[i] == lo;
        nhi += x[i] == hi;
    }
    glo = block_sum(glo, sh); ghi = block_sum(ghi, sh); nlo = block_sum(nlo, sh); nhi = block_sum(nhi, sh);
    for (int i = threadIdx.x; i < n; i += RB) {
        if (x[i] == lo) dx[i] += (float)(glo / nlo);
        if (x[i] == hi) dx[i] += (float)(ghi / nhi);
    }
}
__global__ void max_kernel(float *out, float *dx, const float *x, int n, float g) {
    __shared__ float shf[RB];
    __shared__ double sh[RB];
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += RB) mx = fmaxf(mx, x[i]);
    mx = block_minmax(mx, shf, 1);
    if (out) { if (threadIdx.x == 0) *out = mx; return; }
    double cnt = 0;
    for (int i = threadIdx.x; i < n; i += RB) cnt += x[i] == mx;
    cnt = block_sum(cnt, sh);
    for (int i = threadIdx.x; i < n; i += RB)
        if (x[i] == mx) dx[i] += g / (float)cnt;
}

extern "C" void focal_sum_op_forward_cuda(float *loss, const float *pn, const float *pa, const float *g, int n) {
    LIVE("focal_sum_op_forward_cuda");
    CUDA_LAUNCH("focal_sum_forward", focal_forward_kernel, 1, RB, 0, loss, pn, pa, g, n);
}
extern "C" void focal_sum_backward_cuda(float *dpn, float *dpa, const float *pn, const float *pa, const float *g, int n,
                                        float scale) {
    LIVE("focal_sum_backward_cuda");
    CUDA_LAUNCH("focal_sum_backward", focal_backward_kernel, blocks_for((size_t)n, 256), 256, 0, dpn, dpa, pn, pa, g, n,
                scale);
}
extern "C" void dice_op_forward_cuda(float *D, const float *p, const float *g, int n) {
    LIVE("dice_op_forward_cuda");
    CUDA_LAUNCH("dice_forward", dice_kernel, 1, RB, 0, D, (float *)NULL, p, g, n, 0.0f);
}
extern "C" void dice_backward_cuda(float *dp, const float *p, const float *g, int n, float scale) {
    LIVE("dice_backward_cuda");
    CUDA_LAUNCH("dice_backward", dice_kernel, 1, RB, 0, (float *)NULL, dp, p, g, n, scale);
}
extern "C" void minmax_forward_cuda(float *x, int n) {
    LIVE("minmax_forward_cuda");
    CUDA_LAUNCH("minmax_forward", minmax_forward_kernel, 1, RB, 0, x, n);
}
extern "C" void minmax_backward_cuda(float *dx, const float *dy, const float *x, const float *y, int n) {
    LIVE("minmax_backward_cuda");
    CUDA_LAUNCH("minmax_backward", minmax_backward_kernel, 1, RB, 0, dx, dy, x, y, n);
}
extern "C" void max_value_cuda(float *out, const float *x, int n) {
    LIVE("max_value_cuda");
    CUDA_LAUNCH("max_value", max_kernel, 1, RB, 0, out, (float *)NULL, x, n, 0.0f);
}
extern "C" void max_ties_backward_cuda(float *dx, const float *x, int n, float g) {
    LIVE("max_ties_backward_cuda");
    CUDA_LAUNCH("max_ties_backward", max_kernel, 1, RB, 0, (float *)NULL, dx, x, n, g);
}

// ---- DAT: sampling positions and the relative-position bias -------------------------------------------------

__device__ __forceinline__ float ref_coord(int i, int n) { return (i + 0.5f) / n * 2.0f - 1.0f; }

// one axis of the bias's bilinear tap (ops_dat.c axis_tap): clamped corners, fraction, corner validity
struct AxisTap { int i0, i1; float f, m0, m1; };
__device__ __forceinline__ AxisTap axis_tap(float ref, float pk, int R) {
    float x = ((ref - pk) * 0.5f + 1.0f) * 0.5f * (R - 1);
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

__global__ void dat_positions_forward_kernel(float *pos, const float *off, int Hg, int Wg, float range) {
    GRID_STRIDE(n, (size_t)Hg * Wg) {
        pos[2 * n] = ref_coord((int)(n % Wg), Wg) + range * tanhf(off[2 * n + 1]) / Wg;
        pos[2 * n + 1] = ref_coord((int)(n / Wg), Hg) + range * tanhf(off[2 * n]) / Hg;
    }
}
__global__ void dat_positions_backward_kernel(float *doff, const float *dpos, const float *off, int Hg, int Wg,
                                              float range) {
    GRID_STRIDE(n, (size_t)Hg * Wg) {
        float ty = tanhf(off[2 * n]), tx = tanhf(off[2 * n + 1]);
        doff[2 * n] = dpos[2 * n + 1] * range / Hg * (1.0f - ty * ty);
        doff[2 * n + 1] = dpos[2 * n] * range / Wg * (1.0f - tx * tx);
    }
}
// one block per (head, query row): the row += bias, then its softmax (the row in shared memory)
__global__ void dat_rpe_softmax_kernel(float *att, const float *rpe, const float *pos, int Hg, int Wg) {
    extern __shared__ float row[];
    __shared__ float red[32];
    int N = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1, i = blockIdx.x, hh = blockIdx.y;
    const float *tab = rpe + (size_t)hh * RH * RW;
    float *a = att + ((size_t)hh * N + i) * N;
    float rx = ref_coord(i % Wg, Wg), ry = ref_coord(i / Wg, Hg), mx = -INFINITY;
    for (int j = threadIdx.x; j < N; j += blockDim.x) {
        AxisTap ax = axis_tap(rx, pos[2 * j], RW), ay = axis_tap(ry, pos[2 * j + 1], RH);
        float wx0 = (1.0f - ax.f) * ax.m0, wx1 = ax.f * ax.m1, wy0 = (1.0f - ay.f) * ay.m0, wy1 = ay.f * ay.m1;
        float v = a[j] + wy0 * (wx0 * tab[ay.i0 * RW + ax.i0] + wx1 * tab[ay.i0 * RW + ax.i1]) +
                  wy1 * (wx0 * tab[ay.i1 * RW + ax.i0] + wx1 * tab[ay.i1 * RW + ax.i1]);
        row[j] = v;
        mx = fmaxf(mx, v);
    }
    mx = warp_max(mx);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)blockDim.x / 32; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float s = 0.0f;
    for (int j = threadIdx.x; j < N; j += blockDim.x) { float e = expf(row[j] - mx); row[j] = e; s += e; }
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = s;
    __syncthreads();
    s = 0.0f;
    for (int w = 0; w < (int)blockDim.x / 32; w++) s += red[w];
    float inv = 1.0f / s;
    for (int j = threadIdx.x; j < N; j += blockDim.x) a[j] = row[j] * inv;
}
// one thread per (query i, key j): the tap once, all heads; atomics into the tables and positions
__global__ void dat_rpe_backward_kernel(float *drpe, float *dpos, const float *datt, const float *rpe,
                                        const float *pos, int heads, int Hg, int Wg) {
    int N = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1, RS = RH * RW;
    GRID_STRIDE(t, (size_t)N * N) {
        int i = (int)(t / N), j = (int)(t % N);
        AxisTap ax = axis_tap(ref_coord(i % Wg, Wg), pos[2 * j], RW), ay = axis_tap(ref_coord(i / Wg, Hg), pos[2 * j + 1], RH);
        float wx0 = (1.0f - ax.f) * ax.m0, wx1 = ax.f * ax.m1, wy0 = (1.0f - ay.f) * ay.m0, wy1 = ay.f * ay.m1;
        int c00 = ay.i0 * RW + ax.i0, c01 = ay.i0 * RW + ax.i1, c10 = ay.i1 * RW + ax.i0, c11 = ay.i1 * RW + ax.i1;
        float gx = 0.0f, gy = 0.0f;
        for (int hh = 0; hh < heads; hh++) {
            const float *tab = rpe + (size_t)hh * RS;
            float *dt = drpe + (size_t)hh * RS;
            float d = datt[((size_t)hh * N + i) * N + j];
            float v00 = ay.m0 * ax.m0 * tab[c00], v01 = ay.m0 * ax.m1 * tab[c01];
            float v10 = ay.m1 * ax.m0 * tab[c10], v11 = ay.m1 * ax.m1 * tab[c11];
            atomicAdd(dt + c00, wy0 * wx0 * d); atomicAdd(dt + c01, wy0 * wx1 * d);
            atomicAdd(dt + c10, wy1 * wx0 * d); atomicAdd(dt + c11, wy1 * wx1 * d);
            gx += d * ((1.0f - ay.f) * (v01 - v00) + ay.f * (v11 - v10));
            gy += d * ((1.0f - ax.f) * (v10 - v00) + ax.f * (v11 - v01));
        }
        atomicAdd(dpos + 2 * j, -0.5f * gx * 0.5f * (RW - 1));
        atomicAdd(dpos + 2 * j + 1, -0.5f * gy * 0.5f * (RH - 1));
    }
}

extern "C" void dat_positions_forward_cuda(float *pos, const float *off, int Hg, int Wg, float range) {
    LIVE("dat_positions_forward_cuda");
    CUDA_LAUNCH("dat_positions_forward", dat_positions_forward_kernel, blocks_for((size_t)Hg * Wg, 256), 256, 0, pos,
                off, Hg, Wg, range);
}
extern "C" void dat_positions_backward_cuda(float *doff, const float *dpos, const float *off, int Hg, int Wg,
                                            float range) {
    LIVE("dat_positions_backward_cuda");
    CUDA_LAUNCH("dat_positions_backward", dat_positions_backward_kernel, blocks_for((size_t)Hg * Wg, 256), 256, 0,
                doff, dpos, off, Hg, Wg, range);
}
extern "C" void dat_rpe_softmax_forward_cuda(float *att, const float *rpe, const float *pos, int heads, int Hg,
                                             int Wg) {
    LIVE("dat_rpe_softmax_forward_cuda");
    int N = Hg * Wg;
    CUDA_LAUNCH("dat_rpe_softmax_forward", dat_rpe_softmax_kernel, dim3((unsigned)N, (unsigned)heads), 256,
                sizeof(float) * N, att, rpe, pos, Hg, Wg);
}
extern "C" void dat_rpe_backward_cuda(float *drpe, float *dpos, const float *datt, const float *rpe, const float *pos,
                                      int heads, int Hg, int Wg) {
    LIVE("dat_rpe_backward_cuda");
    size_t NN = (size_t)Hg * Wg * Hg * Wg;
    CUDA_LAUNCH("dat_rpe_backward", dat_rpe_backward_kernel, blocks_for(NN, 256), 256, 0, drpe, dpos, datt, rpe, pos,
                heads, Hg, Wg);
}

// ---- MSDA: sampling grid and weighted sum --------------------------------------------------------------------

__global__ void msda_grid_kernel(float *grid, float *doff, const float *off, const float *dgrid, int h, int M, int K,
                                 int Hg, int Wg) {
    int N = Hg * Wg, MK = M * K;
    GRID_STRIDE(t, (size_t)N * K) {
        int q = (int)(t / K), k = (int)(t % K);
        size_t o = (size_t)q * MK * 2 + (h * K + k) * 2;
        if (grid) {
            float rx = ((q % Wg) + 0.5f) / Wg, ry = ((q / Wg) + 0.5f) / Hg;
            grid[t * 2] = 2.0f * (rx + off[o] / Wg) - 1.0f;
            grid[t * 2 + 1] = 2.0f * (ry + off[o + 1] / Hg) - 1.0f;
        } else {
            doff[o] = dgrid[t * 2] * 2.0f / Wg;
            doff[o + 1] = dgrid[t * 2 + 1] * 2.0f / Hg;
        }
    }
}
__global__ void msda_combine_forward_kernel(float *ao, const float *att, const float *samp, int h, int N, int M, int K,
                                            int hd, int P) {
    GRID_STRIDE(t, (size_t)N * hd) {
        int q = (int)(t / hd), c = (int)(t % hd);
        float acc = 0.0f;
        for (int k = 0; k < K; k++) acc += att[(size_t)q * M * K + h * K + k] * samp[((size_t)q * K + k) * hd + c];
        ao[(size_t)q * P + h * hd + c] = acc;
    }
}
__global__ void msda_combine_backward_kernel(float *datt, float *dsamp, const float *dao, const float *att,
                                             const float *samp, int h, int N, int M, int K, int hd, int P) {
    GRID_STRIDE(t, (size_t)N * K) {
        int q = (int)(t / K), k = (int)(t % K);
        const float *d = dao + (size_t)q * P + h * hd, *sv = samp + t * hd;
        float w = att[(size_t)q * M * K + h * K + k], *ds = dsamp + t * hd;
        double dw = 0.0;
        for (int c = 0; c < hd; c++) { dw += (double)d[c] * sv[c]; ds[c] = w * d[c]; }
        datt[(size_t)q * M * K + h * K + k] = (float)dw;
    }
}

extern "C" void msda_grid_forward_cuda(float *grid, const float *off, int h, int M, int K, int Hg, int Wg) {
    LIVE("msda_grid_forward_cuda");
    CUDA_LAUNCH("msda_grid_forward", msda_grid_kernel, blocks_for((size_t)Hg * Wg * K, 256), 256, 0, grid,
                (float *)NULL, off, (const float *)NULL, h, M, K, Hg, Wg);
}
extern "C" void msda_grid_backward_cuda(float *doff, const float *dgrid, int h, int M, int K, int Hg, int Wg) {
    LIVE("msda_grid_backward_cuda");
    CUDA_LAUNCH("msda_grid_backward", msda_grid_kernel, blocks_for((size_t)Hg * Wg * K, 256), 256, 0, (float *)NULL,
                doff, (const float *)NULL, dgrid, h, M, K, Hg, Wg);
}
extern "C" void msda_combine_forward_cuda(float *ao, const float *att, const float *samp, int h, int N, int M, int K,
                                          int hd, int P) {
    LIVE("msda_combine_forward_cuda");
    CUDA_LAUNCH("msda_combine_forward", msda_combine_forward_kernel, blocks_for((size_t)N * hd, 256), 256, 0, ao, att,
                samp, h, N, M, K, hd, P);
}
extern "C" void msda_combine_backward_cuda(float *datt, float *dsamp, const float *dao, const float *att,
                                           const float *samp, int h, int N, int M, int K, int hd, int P) {
    LIVE("msda_combine_backward_cuda");
    CUDA_LAUNCH("msda_combine_backward", msda_combine_backward_kernel, blocks_for((size_t)N * K, 256), 256, 0, datt,
                dsamp, dao, att, samp, h, N, M, K, hd, P);
}
