// CPU reference of the extra ops (model/ops_extra.h): OpenMP loops; gradients that scatter are split by
// channel so threads never write the same element.
#include "model/ops_extra.h"
#include "model/vec_exp.h"
#include "model/ops_infer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void relu_forward(float *out, const float *inp, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *out, const float *dout, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++)
        if (out[i] > 0.0f) dinp[i] += dout[i];
}

void leaky_relu_forward(float *out, const float *inp, size_t N, float slope) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

void leaky_relu_backward(float *dinp, const float *out, const float *dout, size_t N, float slope) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) dinp[i] += out[i] > 0.0f ? dout[i] : slope * dout[i];
}

void scaled_add_forward(float *out, float alpha, const float *a, float beta, const float *b, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = alpha * a[i] + beta * b[i];
}

void scaled_add_backward(float *da, float *db, const float *dout, float alpha, float beta, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        if (da) da[i] += alpha * dout[i];
        if (db) db[i] += beta * dout[i];
    }
}

void softmax_rows_forward(float *out, const float *inp, int R, int C, float scale) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) softmax_row_scaled(out + (size_t)r * C, inp + (size_t)r * C, C, scale);
}

void softmax_row_scaled(float *y, const float *x, int C, float scale) {
    // max, exp and sum as vector loops (exp_fast is within 2 ulp of expf). The sums are float vector lanes: gcc
    // does not vectorise a double reduction over float terms, and lane-wise float sums of a few thousand
    // positive terms stay within ~1e-6 relative.
    float mx = -INFINITY;
    #pragma omp simd reduction(max : mx)
    for (int c = 0; c < C; c++) mx = x[c] * scale > mx ? x[c] * scale : mx;
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++) {
        float e = exp_fast(x[c] * scale - mx);
        y[c] = e;
        s += e;
    }
    float inv = 1.0f / s;
    #pragma omp simd
    for (int c = 0; c < C; c++) y[c] *= inv;
}

void softmax_rows_backward(float *dinp, const float *dout, const float *out, int R, int C, float scale) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *y = out + (size_t)r * C, *dy = dout + (size_t)r * C;
        float dot = 0.0f;  // float vector lanes, as in softmax_row_scaled
        #pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += y[c] * dy[c];
        float *dx = dinp + (size_t)r * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) dx[c] += scale * y[c] * (dy[c] - dot);
    }
}

void l2norm_rows_forward(float *out, float *norm, const float *inp, int R, int C) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * C;
        double s = 0.0;
        for (int c = 0; c < C; c++) s += (double)x[c] * x[c];
        float n = (float)sqrt(s);
        if (n < 1e-12f) n = 1e-12f;
        float inv = 1.0f / n;
        for (int c = 0; c < C; c++) out[(size_t)r * C + c] = x[c] * inv;
        if (norm) norm[r] = n;
    }
}

void l2norm_rows_backward(float *dinp, const float *dout, const float *out, const float *norm, int R, int C) {
    #pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *y = out + (size_t)r * C, *dy = dout + (size_t)r * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * dy[c];
        float inv = 1.0f / norm[r];
        for (int c = 0; c < C; c++) dinp[(size_t)r * C + c] += (dy[c] - y[c] * (float)dot) * inv;
    }
}

void grid_sample_forward(float *out, const float *inp, const float *grid, int H, int W, int C, int ld_in,
                         int Np, int ld_out, int align_corners) {
    #pragma omp parallel for
    for (int p = 0; p < Np; p++) {
        BilinearTap t = bilinear_tap(grid[2 * p], grid[2 * p + 1], H, W, align_corners);
        float *o = out + (size_t)p * ld_out;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int k = 0; k < 4; k++) {
            if (t.idx[k] < 0) continue;
            const float *v = inp + (size_t)t.idx[k] * ld_in;
            float w = t.w[k];
            for (int c = 0; c < C; c++) o[c] += w * v[c];
        }
    }
}

void grid_sample_backward(float *dinp, float *dgrid, const float *dout, const float *inp, const float *grid,
                          int H, int W, int C, int ld_in, int Np, int ld_out, int align_corners) {
    if (dgrid) {
        // ∂out/∂x = (1-fy)(v10 - v00) + fy(v11 - v01), ∂out/∂y = (1-fx)(v01 - v00) + fx(v11 - v10), times scale
        #pragma omp parallel for
        for (int p = 0; p < Np; p++) {
            BilinearTap t = bilinear_tap(grid[2 * p], grid[2 * p + 1], H, W, align_corners);
            const float *dy = dout + (size_t)p * ld_out;
            double gx = 0.0, gy = 0.0;
            const float *v[4];
            for (int k = 0; k < 4; k++) v[k] = t.idx[k] >= 0 ? inp + (size_t)t.idx[k] * ld_in : NULL;
            for (int c = 0; c < C; c++) {
                float v00 = v[0] ? v[0][c] : 0.0f, v10 = v[1] ? v[1][c] : 0.0f;
                float v01 = v[2] ? v[2][c] : 0.0f, v11 = v[3] ? v[3][c] : 0.0f;
                gx += dy[c] * ((1.0f - t.fy) * (v10 - v00) + t.fy * (v11 - v01));
                gy += dy[c] * ((1.0f - t.fx) * (v01 - v00) + t.fx * (v11 - v10));
            }
            dgrid[2 * p] += (float)gx * t.sx;
            dgrid[2 * p + 1] += (float)gy * t.sy;
        }
    }
    if (dinp) {
        // scatter, split by channel blocks so no two threads touch one element
        int CB = 16, nb = (C + CB - 1) / CB;
        #pragma omp parallel for
        for (int b = 0; b < nb; b++) {
            int c0 = b * CB, c1 = c0 + CB < C ? c0 + CB : C;
            for (int p = 0; p < Np; p++) {
                BilinearTap t = bilinear_tap(grid[2 * p], grid[2 * p + 1], H, W, align_corners);
                const float *dy = dout + (size_t)p * ld_out;
                for (int k = 0; k < 4; k++) {
                    if (t.idx[k] < 0) continue;
                    float *d = dinp + (size_t)t.idx[k] * ld_in, w = t.w[k];
                    for (int c = c0; c < c1; c++) d[c] += w * dy[c];
                }
            }
        }
    }
}

// weight (C, k·k) as (k·k, C), so that the channel loops below read it contiguously (and vectorise).
static float *taps_by_channel(const float *weight, int C, int k) {
    int kk = k * k;
    float *wt = malloc(sizeof(float) * kk * C);
    if (!wt) abort();  // a few KB
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kk; t++) wt[(size_t)t * C + c] = weight[(size_t)c * kk + t];
    return wt;
}

void dwconv_forward(float *out, const float *inp, const float *weight, const float *bias, int H, int W, int C,
                    int ld_in, int k) {
    int r = k / 2;
    float *wt = taps_by_channel(weight, C, k);
    #pragma omp parallel for
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float *o = out + ((size_t)y * W + x) * C;
            for (int c = 0; c < C; c++) o[c] = bias ? bias[c] : 0.0f;
            for (int ky = 0; ky < k; ky++) {
                int yy = y + ky - r;
                if (yy < 0 || yy >= H) continue;
                for (int kx = 0; kx < k; kx++) {
                    int xx = x + kx - r;
                    if (xx < 0 || xx >= W) continue;
                    const float *v = inp + ((size_t)yy * W + xx) * ld_in, *w = wt + (size_t)(ky * k + kx) * C;
                    #pragma omp simd
                    for (int c = 0; c < C; c++) o[c] += w[c] * v[c];
                }
            }
        }
    free(wt);
}

void dwconv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int H, int W, int C, int ld_in, int k) {
    int r = k / 2, kk = k * k;
    // dinp: the transposed convolution written as a gather (each input position sums the outputs it fed), so
    // positions are independent and the channel loop is contiguous
    if (dinp) {
        float *wt = taps_by_channel(weight, C, k);
        #pragma omp parallel for
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++) {
                float *d = dinp + ((size_t)yy * W + xx) * ld_in;
                for (int ky = 0; ky < k; ky++) {
                    int y = yy - ky + r;
                    if (y < 0 || y >= H) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int x = xx - kx + r;
                        if (x < 0 || x >= W) continue;
                        const float *g = dout + ((size_t)y * W + x) * C, *w = wt + (size_t)(ky * k + kx) * C;
                        #pragma omp simd
                        for (int c = 0; c < C; c++) d[c] += g[c] * w[c];
                    }
                }
            }
        free(wt);
    }
    if (!dweight && !dbias) return;
    // dweight, dbias: sums over positions, in double, per thread (rows of positions split between threads), then
    // added up; acc per thread is (k·k taps + the bias) x C
    int nth = omp_get_max_threads();
    double *acc = calloc((size_t)nth * (kk + 1) * C, sizeof(double));
    if (!acc) abort();
    #pragma omp parallel num_threads(nth)
    {
        double *a = acc + (size_t)omp_get_thread_num() * (kk + 1) * C, *ab = a + (size_t)kk * C;
        #pragma omp for
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *g = dout + ((size_t)y * W + x) * C;
                #pragma omp simd
                for (int c = 0; c < C; c++) ab[c] += g[c];
                for (int ky = 0; ky < k; ky++) {
                    int yy = y + ky - r;
                    if (yy < 0 || yy >= H) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int xx = x + kx - r;
                        if (xx < 0 || xx >= W) continue;
                        const float *v = inp + ((size_t)yy * W + xx) * ld_in;
                        double *aw = a + (size_t)(ky * k + kx) * C;
                        #pragma omp simd
                        for (int c = 0; c < C; c++) aw[c] += (double)g[c] * v[c];
                    }
                }
            }
    }
    for (int c = 0; c < C; c++) {
        for (int t = 0; t < kk && dweight; t++) {
            double s = 0.0;
            for (int th = 0; th < nth; th++) s += acc[((size_t)th * (kk + 1) + t) * C + c];
            dweight[(size_t)c * kk + t] += (float)s;
        }
        if (dbias) {
            double s = 0.0;
            for (int th = 0; th < nth; th++) s += acc[((size_t)th * (kk + 1) + kk) * C + c];
            dbias[c] += (float)s;
        }
    }
    free(acc);
}

// Source coordinate of output index d along one axis (PyTorch's area_pixel_compute_source_index, linear mode).
static inline void resize_axis(int d, int in, int out, int align_corners, int *i0, int *i1, float *w) {
    float src;
    if (align_corners) src = out > 1 ? d * (float)(in - 1) / (float)(out - 1) : 0.0f;
    else {
        src = ((float)d + 0.5f) * ((float)in / (float)out) - 0.5f;
        if (src < 0.0f) src = 0.0f;
    }
    int a = (int)src;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *w = src - (float)a;
}

void upsample_bilinear_forward(float *out, const float *inp, int B, int h, int w, int Ho, int Wo,
                               int align_corners) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Ho; y++) {
            int y0, y1; float fy;
            resize_axis(y, h, Ho, align_corners, &y0, &y1, &fy);
            const float *m = inp + (size_t)b * h * w;
            float *o = out + ((size_t)b * Ho + y) * Wo;
            for (int x = 0; x < Wo; x++) {
                int x0, x1; float fx;
                resize_axis(x, w, Wo, align_corners, &x0, &x1, &fx);
                o[x] = (1.0f - fy) * ((1.0f - fx) * m[y0 * w + x0] + fx * m[y0 * w + x1]) +
                       fy * ((1.0f - fx) * m[y1 * w + x0] + fx * m[y1 * w + x1]);
            }
        }
}

void upsample_bilinear_backward(float *dinp, const float *dout, int B, int h, int w, int Ho, int Wo,
                                int align_corners) {
    #pragma omp parallel for
    for (int b = 0; b < B; b++) {
        float *d = dinp + (size_t)b * h * w;
        for (int y = 0; y < Ho; y++) {
            int y0, y1; float fy;
            resize_axis(y, h, Ho, align_corners, &y0, &y1, &fy);
            const float *g = dout + ((size_t)b * Ho + y) * Wo;
            for (int x = 0; x < Wo; x++) {
                int x0, x1; float fx;
                resize_axis(x, w, Wo, align_corners, &x0, &x1, &fx);
                d[y0 * w + x0] += (1.0f - fy) * (1.0f - fx) * g[x];
                d[y0 * w + x1] += (1.0f - fy) * fx * g[x];
                d[y1 * w + x0] += fy * (1.0f - fx) * g[x];
                d[y1 * w + x1] += fy * fx * g[x];
            }
        }
    }
}

// scipy's 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a, repeated for far indices.
static inline int reflect_index(int i, int n) {
    if (n == 1) return 0;
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

void gaussian_filter_forward(float *out, const float *inp, int B, int H, int W, float sigma, float truncate) {
    int r = (int)(truncate * sigma + 0.5f);
    double *kern = malloc(sizeof(double) * (2 * r + 1)), s = 0.0;
    for (int i = -r; i <= r; i++) { kern[i + r] = exp(-0.5 * (double)i * i / ((double)sigma * sigma)); s += kern[i + r]; }
    for (int i = 0; i < 2 * r + 1; i++) kern[i] /= s;
    #pragma omp parallel for
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * H * W;
        float *tmp = malloc(sizeof(float) * H * W);
        // axis 0 (rows), then axis 1, as scipy does; each pass rounds to float32 like scipy's output array
        for (int y = 0; y < H; y++)
            for (int c = 0; c < W; c++) {
                double a = 0.0;
                for (int i = -r; i <= r; i++) a += kern[i + r] * x[reflect_index(y + i, H) * W + c];
                tmp[y * W + c] = (float)a;
            }
        float *o = out + (size_t)b * H * W;
        for (int y = 0; y < H; y++)
            for (int c = 0; c < W; c++) {
                double a = 0.0;
                for (int i = -r; i <= r; i++) a += kern[i + r] * tmp[y * W + reflect_index(c + i, W)];
                o[y * W + c] = (float)a;
            }
        free(tmp);
    }
    free(kern);
}

float sigmoid_f(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

float softplus_f(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

float bce_logits_forward(const float *x, const float *y, int N) {
    double s = 0.0;
    for (int i = 0; i < N; i++) s += softplus_f(x[i]) - y[i] * x[i];
    return (float)(s / N);
}

void bce_logits_backward(float *dx, const float *x, const float *y, int N, float scale) {
    for (int i = 0; i < N; i++) dx[i] += scale * (sigmoid_f(x[i]) - y[i]) / N;
}
