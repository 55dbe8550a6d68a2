// The CUDA op table, part 2: elementwise activations, the heads' extra ops (model/ops_extra.c), Adam, and the
// towers' small helpers (patches, class/positions, row gathers). Each kernel mirrors its CPU loop; scatters
// that the CPU splits by channel use atomicAdd here.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "model/cuda/cuda_internal.cuh"
#include "model/cuda/ops_cuda.h"

#define LIVE(op) if (!cuda_live_(op)) return

// ---------------------------------------------------------------------------------------------------------------
// elementwise

__device__ __forceinline__ float quickgelu_f(float x) { return x / (1.0f + expf(-1.702f * x)); }
__device__ __forceinline__ float quickgelu_d(float x) {
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    return s + x * 1.702f * s * (1.0f - s);
}
__device__ __forceinline__ float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }
__device__ __forceinline__ float gelu_d(float x) {
    return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

__global__ void quickgelu_forward_kernel(float *out, const float *inp, size_t N) {
    GRID_STRIDE(i, N) out[i] = quickgelu_f(inp[i]);
}
__global__ void quickgelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t N) {
    GRID_STRIDE(i, N) dinp[i] += dout[i] * quickgelu_d(inp[i]);
}
__global__ void gelu_forward_kernel(float *out, const float *inp, size_t N) {
    GRID_STRIDE(i, N) out[i] = gelu_f(inp[i]);
}
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t N) {
    GRID_STRIDE(i, N) dinp[i] += dout[i] * gelu_d(inp[i]);
}
__global__ void residual_kernel(float *out, const float *a, const float *b, size_t N) {
    GRID_STRIDE(i, N) out[i] = a[i] + b[i];
}
__global__ void relu_forward_kernel(float *out, const float *inp, size_t N) {
    GRID_STRIDE(i, N) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
__global__ void relu_backward_kernel(float *dinp, const float *out, const float *dout, size_t N) {
    GRID_STRIDE(i, N) if (out[i] > 0.0f) dinp[i] += dout[i];
}
__global__ void bias_act_kernel(float *x, float *pre, const float *bias, int N, int C, int act) {
    GRID_STRIDE(i, (size_t)N * C) {
        float y = x[i] + (bias ? bias[i % C] : 0.0f);
        if (pre) pre[i] = y;
        x[i] = act == 1 ? quickgelu_f(y) : act == 2 ? gelu_f(y) : y;
    }
}
__global__ void act_backward_inplace_kernel(float *dx, const float *pre, size_t N, int act) {
    GRID_STRIDE(i, N) dx[i] *= act == 2 ? gelu_d(pre[i]) : quickgelu_d(pre[i]);
}

extern "C" void quickgelu_forward_cuda(float *out, const float *inp, size_t N) {
    LIVE("quickgelu_forward_cuda");
    CUDA_LAUNCH("quickgelu_forward", quickgelu_forward_kernel, blocks_for(N, 256), 256, 0, out, inp, N);
}
extern "C" void quickgelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t N) {
    LIVE("quickgelu_backward_cuda");
    CUDA_LAUNCH("quickgelu_backward", quickgelu_backward_kernel, blocks_for(N, 256), 256, 0, dinp, inp, dout, N);
}
extern "C" void gelu_forward_cuda(float *out, const float *inp, size_t N) {
    LIVE("gelu_forward_cuda");
    CUDA_LAUNCH("gelu_forward", gelu_forward_kernel, blocks_for(N, 256), 256, 0, out, inp, N);
}
extern "C" void gelu_backward_cuda(float *dinp, const float *inp, const float *dout, size_t N) {
    LIVE("gelu_backward_cuda");
    CUDA_LAUNCH("gelu_backward", gelu_backward_kernel, blocks_for(N, 256), 256, 0, dinp, inp, dout, N);
}
extern "C" void residual_forward_cuda(float *out, const float *a, const float *b, size_t N) {
    LIVE("residual_forward_cuda");
    CUDA_LAUNCH("residual_forward", residual_kernel, blocks_for(N, 256), 256, 0, out, a, b, N);
}
extern "C" void relu_forward_cuda(float *out, const float *inp, size_t N) {
    LIVE("relu_forward_cuda");
    CUDA_LAUNCH("relu_forward", relu_forward_kernel, blocks_for(N, 256), 256, 0, out, inp, N);
}
extern "C" void relu_backward_cuda(float *dinp, const float *out, const float *dout, size_t N) {
    LIVE("relu_backward_cuda");
    CUDA_LAUNCH("relu_backward", relu_backward_kernel, blocks_for(N, 256), 256, 0, dinp, out, dout, N);
}
extern "C" void bias_act_forward_cuda(float *x, float *pre, const float *bias, int N, int C, int act) {
    LIVE("bias_act_forward_cuda");
    CUDA_LAUNCH("bias_act_forward", bias_act_kernel, blocks_for((size_t)N * C, 256), 256, 0, x, pre, bias, N, C, act);
}
extern "C" void add_bias_rows_cuda(float *x, const float *bias, int N, int C) {
    LIVE("add_bias_rows_cuda");
    CUDA_LAUNCH("add_bias_rows", bias_act_kernel, blocks_for((size_t)N * C, 256), 256, 0, x, (float *)NULL, bias, N, C, 0);
}
extern "C" void act_backward_inplace_cuda(float *dx, const float *pre, size_t N, int act) {
    LIVE("act_backward_inplace_cuda");
    CUDA_LAUNCH("act_backward_inplace", act_backward_inplace_kernel, blocks_for(N, 256), 256, 0, dx, pre, N, act);
}

// ---------------------------------------------------------------------------------------------------------------
// row ops: one warp per row

#define ROW_INDEX                                                                                            \
    int row = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;                                   \
    if (row >= R) return

__global__ void softmax_rows_forward_kernel(float *out, const float *inp, int R, int C, float scale) {
    ROW_INDEX;
    const float *x = inp + (size_t)row * C;
    float *y = out + (size_t)row * C;
    float mx = -INFINITY;
    for (int c = lane; c < C; c += 32) mx = fmaxf(mx, x[c] * scale);
    mx = warp_max(mx);
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) { float e = expf(x[c] * scale - mx); y[c] = e; s += e; }
    float inv = 1.0f / warp_sum(s);
    for (int c = lane; c < C; c += 32) y[c] *= inv;
}

__global__ void softmax_rows_backward_kernel(float *dinp, const float *dout, const float *out, int R, int C,
                                             float scale) {
    ROW_INDEX;
    const float *y = out + (size_t)row * C, *dy = dout + (size_t)row * C;
    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) dot += y[c] * dy[c];
    dot = warp_sum(dot);
    for (int c = lane; c < C; c += 32) dinp[(size_t)row * C + c] += scale * y[c] * (dy[c] - dot);
}

__global__ void l2norm_rows_forward_kernel(float *out, float *norm, const float *inp, int R, int C) {
    ROW_INDEX;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c] * x[c];
    float n = fmaxf(sqrtf(warp_sum(s)), 1e-12f), inv = 1.0f / n;
    for (int c = lane; c < C; c += 32) out[(size_t)row * C + c] = x[c] * inv;
    if (norm && lane == 0) norm[row] = n;
}

__global__ void l2norm_rows_backward_kernel(float *dinp, const float *dout, const float *out, const float *norm,
                                            int R, int C) {
    ROW_INDEX;
    const float *y = out + (size_t)row * C, *dy = dout + (size_t)row * C;
    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) dot += y[c] * dy[c];
    dot = warp_sum(dot);
    float inv = 1.0f / norm[row];
    for (int c = lane; c < C; c += 32) dinp[(size_t)row * C + c] += (dy[c] - y[c] * dot) * inv;
}

extern "C" void softmax_rows_forward_cuda(float *out, const float *inp, int R, int C, float scale) {
    LIVE("softmax_rows_forward_cuda");
    CUDA_LAUNCH("softmax_rows_forward", softmax_rows_forward_kernel, (unsigned)((R + 7) / 8), 256, 0, out, inp, R, C, scale);
}
extern "C" void softmax_rows_backward_cuda(float *dinp, const float *dout, const float *out, int R, int C,
                                           float scale) {
    LIVE("softmax_rows_backward_cuda");
    CUDA_LAUNCH("softmax_rows_backward", softmax_rows_backward_kernel, (unsigned)((R + 7) / 8), 256, 0, dinp, dout, out, R, C, scale);
}
extern "C" void l2norm_rows_forward_cuda(float *out, float *norm, const float *inp, int R, int C) {
    LIVE("l2norm_rows_forward_cuda");
    CUDA_LAUNCH("l2norm_rows_forward", l2norm_rows_forward_kernel, (unsigned)((R + 7) / 8), 256, 0, out, norm, inp, R, C);
}
extern "C" void l2norm_rows_backward_cuda(float *dinp, const float *dout, const float *out, const float *norm, int R,
                                          int C) {
    LIVE("l2norm_rows_backward_cuda");
    CUDA_LAUNCH("l2norm_rows_backward", l2norm_rows_backward_kernel, (unsigned)((R + 7) / 8), 256, 0, dinp, dout, out, norm, R, C);
}

// ---------------------------------------------------------------------------------------------------------------
// grid sampling (model/ops_extra.h bilinear_tap, on the device)

struct Tap {
    int idx[4];
    float w[4], fx, fy, sx, sy;
};

__device__ __forceinline__ float unnormalise(float g, int size, int align_corners, float *scale) {
    if (align_corners) { *scale = 0.5f * (size - 1); return (g + 1.0f) * 0.5f * (size - 1); }
    *scale = 0.5f * size;
    return ((g + 1.0f) * size - 1.0f) * 0.5f;
}

__device__ __forceinline__ Tap bilinear_tap_dev(float gx, float gy, int H, int W, int align_corners) {
    Tap t;
    float x = unnormalise(gx, W, align_corners, &t.sx), y = unnormalise(gy, H, align_corners, &t.sy);
    float x0f = floorf(x), y0f = floorf(y);
    int x0 = (int)x0f, y0 = (int)y0f;
    t.fx = x - x0f;
    t.fy = y - y0f;
    int xs[2] = {x0, x0 + 1}, ys[2] = {y0, y0 + 1};
    float wx[2] = {1.0f - t.fx, t.fx}, wy[2] = {1.0f - t.fy, t.fy};
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int c = j * 2 + i;
            bool ok = xs[i] >= 0 && xs[i] < W && ys[j] >= 0 && ys[j] < H;
            t.idx[c] = ok ? ys[j] * W + xs[i] : -1;
            t.w[c] = wx[i] * wy[j];
        }
    return t;
}

// one warp per sample point, lanes over channels
__global__ void grid_sample_forward_kernel(float *out, const float *inp, const float *grid, int H, int W, int C,
                                           int ld_in, int R, int ld_out, int align_corners) {
    ROW_INDEX;
    Tap t = bilinear_tap_dev(grid[2 * row], grid[2 * row + 1], H, W, align_corners);
    float *o = out + (size_t)row * ld_out;
    for (int c = lane; c < C; c += 32) {
        float s = 0.0f;
#pragma unroll
        for (int q = 0; q < 4; q++)
            if (t.idx[q] >= 0) s += t.w[q] * inp[(size_t)t.idx[q] * ld_in + c];
        o[c] = s;
    }
}

__global__ void grid_sample_backward_kernel(float *dinp, float *dgrid, const float *dout, const float *inp,
                                            const float *grid, int H, int W, int C, int ld_in, int R, int ld_out,
                                            int align_corners) {
    ROW_INDEX;
    Tap t = bilinear_tap_dev(grid[2 * row], grid[2 * row + 1], H, W, align_corners);
    const float *dy = dout + (size_t)row * ld_out;
    float gx = 0.0f, gy = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = dy[c];
        if (dgrid) {
            float v[4];
#pragma unroll
            for (int q = 0; q < 4; q++) v[q] = t.idx[q] >= 0 ? inp[(size_t)t.idx[q] * ld_in + c] : 0.0f;
            gx += g * ((1.0f - t.fy) * (v[1] - v[0]) + t.fy * (v[3] - v[2]));
            gy += g * ((1.0f - t.fx) * (v[2] - v[0]) + t.fx * (v[3] - v[1]));
        }
        if (dinp)
#pragma unroll
            for (int q = 0; q < 4; q++)
                if (t.idx[q] >= 0) atomicAdd(dinp + (size_t)t.idx[q] * ld_in + c, t.w[q] * g);
    }
    if (dgrid) {
        gx = warp_sum(gx);
        gy = warp_sum(gy);
        if (lane == 0) {
            dgrid[2 * row] += gx * t.sx;
            dgrid[2 * row + 1] += gy * t.sy;
        }
    }
}

extern "C" void grid_sample_forward_cuda(float *out, const float *inp, const float *grid, int H, int W, int C,
                                         int ld_in, int Np, int ld_out, int align_corners) {
    LIVE("grid_sample_forward_cuda");
    CUDA_LAUNCH("grid_sample_forward", grid_sample_forward_kernel, (unsigned)((Np + 7) / 8), 256, 0, out, inp, grid, H, W, C, ld_in,
                Np, ld_out, align_corners);
}
extern "C" void grid_sample_backward_cuda(float *dinp, float *dgrid, const float *dout, const float *inp,
                                          const float *grid, int H, int W, int C, int ld_in, int Np, int ld_out,
                                          int align_corners) {
    LIVE("grid_sample_backward_cuda");
    CUDA_LAUNCH("grid_sample_backward", grid_sample_backward_kernel, (unsigned)((Np + 7) / 8), 256, 0, dinp, dgrid, dout, inp, grid, H,
                W, C, ld_in, Np, ld_out, align_corners);
}

// ---------------------------------------------------------------------------------------------------------------
// depthwise convolution, stride 1, zero padding k/2, channels-last

__global__ void dwconv_forward_kernel(float *out, const float *inp, const float *w, const float *bias, int H, int W,
                                      int C, int ld_in, int k) {
    int r = k / 2;
    GRID_STRIDE(i, (size_t)H * W * C) {
        int c = (int)(i % C), px = (int)(i / C), y = px / W, x = px % W;
        float s = bias ? bias[c] : 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - r;
            if (yy < 0 || yy >= H) continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - r;
                if (xx < 0 || xx >= W) continue;
                s += w[c * k * k + ky * k + kx] * inp[((size_t)yy * W + xx) * ld_in + c];
            }
        }
        out[i] = s;
    }
}

// dinp as a gather: input pixel (yy, xx) received dout at (yy - ky + r, xx - kx + r) through tap (ky, kx).
__global__ void dwconv_dinp_kernel(float *dinp, const float *dout, const float *w, int H, int W, int C, int ld_in,
                                   int k) {
    int r = k / 2;
    GRID_STRIDE(i, (size_t)H * W * C) {
        int c = (int)(i % C), px = (int)(i / C), yy = px / W, xx = px % W;
        float s = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int y = yy - ky + r;
            if (y < 0 || y >= H) continue;
            for (int kx = 0; kx < k; kx++) {
                int x = xx - kx + r;
                if (x < 0 || x >= W) continue;
                s += dout[((size_t)y * W + x) * C + c] * w[c * k * k + ky * k + kx];
            }
        }
        dinp[(size_t)px * ld_in + c] += s;
    }
}

// one block per (channel, tap): dweight[c, t] += Σ_pixels dout · inp at the tap; tap index k*k is the bias.
__global__ void dwconv_dparams_kernel(float *dw, float *db, const float *dout, const float *inp, int H, int W, int C,
                                      int ld_in, int k) {
    __shared__ float part[256];
    int c = blockIdx.x / (k * k + 1), t = blockIdx.x % (k * k + 1), r = k / 2;
    int ky = t / k, kx = t % k;
    float s = 0.0f;
    for (int px = threadIdx.x; px < H * W; px += 256) {
        int y = px / W, x = px % W;
        float g = dout[(size_t)px * C + c];
        if (t == k * k) { s += g; continue; }
        int yy = y + ky - r, xx = x + kx - r;
        if (yy >= 0 && yy < H && xx >= 0 && xx < W) s += g * inp[((size_t)yy * W + xx) * ld_in + c];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int o = 128; o > 0; o >>= 1) {
        if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (t == k * k) { if (db) db[c] += part[0]; }
        else if (dw) dw[c * k * k + t] += part[0];
    }
}

extern "C" void dwconv_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int H,
                                    int W, int C, int ld_in, int k) {
    LIVE("dwconv_forward_cuda");
    CUDA_LAUNCH("dwconv_forward", dwconv_forward_kernel, blocks_for((size_t)H * W * C, 256), 256, 0, out, inp, weight, bias, H, W, C,
                ld_in, k);
}
extern "C" void dwconv_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                     const float *weight, int H, int W, int C, int ld_in, int k) {
    LIVE("dwconv_backward_cuda");
    if (dinp)
        CUDA_LAUNCH("dwconv_backward dinp", dwconv_dinp_kernel, blocks_for((size_t)H * W * C, 256), 256, 0, dinp, dout, weight, H,
                    W, C, ld_in, k);
    if (dweight || dbias)
        CUDA_LAUNCH("dwconv_backward params", dwconv_dparams_kernel, C * (k * k + 1), 256, 0, dweight, dbias, dout,
                    inp, H, W, C, ld_in, k);
}

// ---------------------------------------------------------------------------------------------------------------
// bilinear resize of single-channel maps (PyTorch's area_pixel_compute_source_index, linear mode)

__device__ __forceinline__ void resize_axis(int d, int in, int out, int align_corners, int *i0, int *i1, float *w) {
    float src;
    if (align_corners) src = out > 1 ? d * (float)(in - 1) / (float)(out - 1) : 0.0f;
    else src = fmaxf(((float)d + 0.5f) * ((float)in / (float)out) - 0.5f, 0.0f);
    int a = min((int)src, in - 1);
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *w = src - (float)a;
}

__global__ void upsample_forward_kernel(float *out, const float *inp, int B, int h, int w, int Ho, int Wo, int ac) {
    GRID_STRIDE(i, (size_t)B * Ho * Wo) {
        int x = (int)(i % Wo), y = (int)(i / Wo % Ho), b = (int)(i / ((size_t)Wo * Ho));
        int y0, y1, x0, x1;
        float fy, fx;
        resize_axis(y, h, Ho, ac, &y0, &y1, &fy);
        resize_axis(x, w, Wo, ac, &x0, &x1, &fx);
        const float *m = inp + (size_t)b * h * w;
        out[i] = (1.0f - fy) * ((1.0f - fx) * m[y0 * w + x0] + fx * m[y0 * w + x1]) +
                 fy * ((1.0f - fx) * m[y1 * w + x0] + fx * m[y1 * w + x1]);
    }
}

__global__ void upsample_backward_kernel(float *dinp, const float *dout, int B, int h, int w, int Ho, int Wo, int ac) {
    GRID_STRIDE(i, (size_t)B * Ho * Wo) {
        int x = (int)(i % Wo), y = (int)(i / Wo % Ho), b = (int)(i / ((size_t)Wo * Ho));
        int y0, y1, x0, x1;
        float fy, fx, g = dout[i];
        resize_axis(y, h, Ho, ac, &y0, &y1, &fy);
        resize_axis(x, w, Wo, ac, &x0, &x1, &fx);
        float *d = dinp + (size_t)b * h * w;
        atomicAdd(d + y0 * w + x0, (1.0f - fy) * (1.0f - fx) * g);
        atomicAdd(d + y0 * w + x1, (1.0f - fy) * fx * g);
        atomicAdd(d + y1 * w + x0, fy * (1.0f - fx) * g);
        atomicAdd(d + y1 * w + x1, fy * fx * g);
    }
}

extern "C" void upsample_bilinear_forward_cuda(float *out, const float *inp, int B, int h, int w, int Ho, int Wo,
                                               int align_corners) {
    LIVE("upsample_bilinear_forward_cuda");
    CUDA_LAUNCH("upsample_bilinear_forward", upsample_forward_kernel, blocks_for((size_t)B * Ho * Wo, 256), 256, 0, out, inp, B, h,
                w, Ho, Wo, align_corners);
}
extern "C" void upsample_bilinear_backward_cuda(float *dinp, const float *dout, int B, int h, int w, int Ho, int Wo,
                                                int align_corners) {
    LIVE("upsample_bilinear_backward_cuda");
    CUDA_LAUNCH("upsample_bilinear_backward", upsample_backward_kernel, blocks_for((size_t)B * Ho * Wo, 256), 256, 0, dinp, dout, B,
                h, w, Ho, Wo, align_corners);
}

// ---------------------------------------------------------------------------------------------------------------
// scipy.ndimage.gaussian_filter, mode reflect: rows pass then columns pass, double accumulation like the CPU

__device__ __forceinline__ int reflect_index(int i, int n) {
    if (n == 1) return 0;
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

// kern (2r+1) normalised Gaussian taps, one thread (it is tiny).
__global__ void gaussian_kernel_weights(double *kern, int r, float sigma) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double s = 0.0;
    for (int i = -r; i <= r; i++) { kern[i + r] = exp(-0.5 * (double)i * i / ((double)sigma * sigma)); s += kern[i + r]; }
    for (int i = 0; i < 2 * r + 1; i++) kern[i] /= s;
}

__global__ void gaussian_pass_kernel(float *out, const float *inp, const double *kern, int r, int B, int H, int W,
                                     int along_rows) {
    GRID_STRIDE(i, (size_t)B * H * W) {
        int c = (int)(i % W), y = (int)(i / W % H);
        const float *x = inp + (i - (size_t)y * W - c);  // this map
        double a = 0.0;
        if (along_rows)
            for (int t = -r; t <= r; t++) a += kern[t + r] * x[reflect_index(y + t, H) * W + c];
        else
            for (int t = -r; t <= r; t++) a += kern[t + r] * x[(size_t)y * W + reflect_index(c + t, W)];
        out[i] = (float)a;
    }
}

extern "C" void gaussian_filter_forward_cuda(float *out, const float *inp, int B, int H, int W, float sigma,
                                             float truncate) {
    LIVE("gaussian_filter_forward_cuda");
    int r = (int)(truncate * sigma + 0.5f);
    size_t n = (size_t)B * H * W, kern_floats = 2 * (size_t)(2 * r + 1) + 2;
    float *scratch = cuda_scratch_(1, n + kern_floats);
    if (!scratch) return;
    double *kern = (double *)(scratch + n + (n & 1));  // 8-byte aligned after the temporary map
    CUDA_LAUNCH("gaussian weights", gaussian_kernel_weights, 1, 1, 0, kern, r, sigma);
    CUDA_LAUNCH("gaussian rows", gaussian_pass_kernel, blocks_for(n, 256), 256, 0, scratch, inp, kern, r, B, H, W, 1);
    CUDA_LAUNCH("gaussian columns", gaussian_pass_kernel, blocks_for(n, 256), 256, 0, out, scratch, kern, r, B, H, W, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// BCE with logits

__device__ __forceinline__ float sigmoid_dev(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
__device__ __forceinline__ float softplus_dev(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

__global__ void bce_forward_kernel(float *loss, const float *x, const float *y, int N) {
    __shared__ double part[256];
    double s = 0.0;
    for (int i = threadIdx.x; i < N; i += 256) s += softplus_dev(x[i]) - y[i] * x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int o = 128; o > 0; o >>= 1) {
        if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = (float)(part[0] / N);
}

__global__ void bce_backward_kernel(float *dx, const float *x, const float *y, int N, float scale) {
    GRID_STRIDE(i, (size_t)N) dx[i] += scale * (sigmoid_dev(x[i]) - y[i]) / N;
}

extern "C" void bce_logits_forward_cuda(float *loss, const float *x, const float *y, int N) {
    LIVE("bce_logits_forward_cuda");
    CUDA_LAUNCH("bce_logits_forward", bce_forward_kernel, 1, 256, 0, loss, x, y, N);
}
extern "C" void bce_logits_backward_cuda(float *dx, const float *x, const float *y, int N, float scale) {
    LIVE("bce_logits_backward_cuda");
    CUDA_LAUNCH("bce_logits_backward", bce_backward_kernel, blocks_for((size_t)N, 256), 256, 0, dx, x, y, N, scale);
}

// ---------------------------------------------------------------------------------------------------------------
// Adam (PyTorch's single-tensor formula; bias corrections computed on the host in double as the CPU does)

__global__ void adam_kernel(float *p, const float *g, float *m, float *v, size_t n, float step_size, float sqrt_bc2,
                            float beta1, float beta2, float eps) {
    GRID_STRIDE(i, n) {
        float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

extern "C" void adam_update_cuda(float *p, const float *g, float *m, float *v, size_t n, long step, float lr,
                                 float beta1, float beta2, float eps) {
    LIVE("adam_update_cuda");
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    CUDA_LAUNCH("adam_update", adam_kernel, blocks_for(n, 256), 256, 0, p, g, m, v, n, (float)(lr / bc1), (float)sqrt(bc2), beta1,
                beta2, eps);
}

// ---------------------------------------------------------------------------------------------------------------
// tower helpers

__global__ void im2col_kernel(float *cols, const float *pixels, int B, int C, int S, int p, int g) {
    int K = C * p * p, T = g * g + 1;
    GRID_STRIDE(i, (size_t)B * T * K) {
        int kk = (int)(i % K), t = (int)(i / K % T), b = (int)(i / ((size_t)K * T));
        if (t == 0) { cols[i] = 0.0f; continue; }
        int gy = (t - 1) / g, gx = (t - 1) % g, c = kk / (p * p), ky = kk / p % p, kx = kk % p;
        cols[i] = pixels[(((size_t)b * C + c) * S + gy * p + ky) * S + (size_t)gx * p + kx];
    }
}

__global__ void class_positions_kernel(float *x, const float *cls, const float *pos, int B, int T, int W) {
    GRID_STRIDE(i, (size_t)B * T * W) {
        int c = (int)(i % W), t = (int)(i / W % T);
        x[i] = (t == 0 ? cls[c] : x[i]) + pos[(size_t)t * W + c];
    }
}

__global__ void add_positions_kernel(float *x, const float *rows, int B, int T, int W) {
    GRID_STRIDE(i, (size_t)B * T * W) x[i] += rows[i % ((size_t)T * W)];
}

__global__ void gather_rows_kernel(float *dst, const float *src, const int *idx, int B, int T, int W) {
    GRID_STRIDE(i, (size_t)B * W) {
        int c = (int)(i % W), b = (int)(i / W);
        dst[i] = src[((size_t)b * T + idx[b]) * W + c];
    }
}

__global__ void scatter_add_rows_kernel(float *dst, const float *src, const int *idx, int B, int T, int W) {
    GRID_STRIDE(i, (size_t)B * W) {
        int c = (int)(i % W), b = (int)(i / W);
        dst[((size_t)b * T + idx[b]) * W + c] += src[i];
    }
}

extern "C" void im2col_patches_cuda(float *cols, const float *pixels, int B, int C, int S, int p, int g) {
    LIVE("im2col_patches_cuda");
    size_t n = (size_t)B * (g * g + 1) * C * p * p;
    CUDA_LAUNCH("im2col_patches", im2col_kernel, blocks_for(n, 256), 256, 0, cols, pixels, B, C, S, p, g);
}
extern "C" void add_class_positions_cuda(float *x, const float *cls, const float *pos, int B, int T, int W) {
    LIVE("add_class_positions_cuda");
    CUDA_LAUNCH("add_class_positions", class_positions_kernel, blocks_for((size_t)B * T * W, 256), 256, 0, x, cls, pos, B, T, W);
}
extern "C" void add_positions_cuda(float *x, const float *rows, int B, int T, int W) {
    LIVE("add_positions_cuda");
    CUDA_LAUNCH("add_positions", add_positions_kernel, blocks_for((size_t)B * T * W, 256), 256, 0, x, rows, B, T, W);
}
extern "C" void gather_rows_cuda(float *dst, const float *src, const int *idx, int B, int T, int W) {
    LIVE("gather_rows_cuda");
    CUDA_LAUNCH("gather_rows", gather_rows_kernel, blocks_for((size_t)B * W, 256), 256, 0, dst, src, idx, B, T, W);
}
extern "C" void scatter_add_rows_cuda(float *dst, const float *src, const int *idx, int B, int T, int W) {
    LIVE("scatter_add_rows_cuda");
    CUDA_LAUNCH("scatter_add_rows", scatter_add_rows_kernel, blocks_for((size_t)B * W, 256), 256, 0, dst, src, idx, B, T, W);
}

// ---------------------------------------------------------------------------------------------------------------
// benchmark helpers

__global__ void fill_uniform_kernel(float *x, size_t n, unsigned long long seed, float scale) {
    GRID_STRIDE(i, n) {
        unsigned long long z = seed + 0x9e3779b97f4a7c15ULL * (i + 1);  // splitmix64 of the index
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        x[i] = scale * ((float)(z >> 40) * (1.0f / 8388608.0f) - 1.0f);
    }
}

__global__ void float_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

extern "C" void fill_uniform_cuda(float *x, size_t n, unsigned long long seed, float scale) {
    LIVE("fill_uniform_cuda");
    CUDA_LAUNCH("fill_uniform", fill_uniform_kernel, blocks_for(n, 256), 256, 0, x, n, seed, scale);
}

extern "C" void float_to_bf16_cuda(void *dst, const float *src, size_t n) {
    LIVE("float_to_bf16_cuda");
    CUDA_LAUNCH("float_to_bf16", float_to_bf16_kernel, blocks_for(n, 256), 256, 0, (__nv_bfloat16 *)dst, src, n);
}
