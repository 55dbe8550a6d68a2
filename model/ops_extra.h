// Ops the KAnoCLIP heads need beyond model/ops.h: forward/backward pairs over plain float buffers (llm.c style).
// Row-major; feature maps are channels-last (H*W rows of C channels, row stride ld), which is how token
// features (N, P) already lie. A backward accumulates (+=) into each gradient; a NULL gradient skips that part.
#ifndef MODEL_OPS_EXTRA_H
#define MODEL_OPS_EXTRA_H

#include <math.h>
#include <stddef.h>

// Normalised coordinate g in [-1, 1] to a pixel coordinate, and d(pixel)/d(g).
static inline float bilinear_unnormalise(float g, int size, int align_corners, float *scale) {
    if (align_corners) { *scale = 0.5f * (size - 1); return (g + 1.0f) * 0.5f * (size - 1); }
    *scale = 0.5f * size;
    return ((g + 1.0f) * size - 1.0f) * 0.5f;
}

// The four corners of a bilinear tap: flat indices (-1 when outside) and weights.
typedef struct { int idx[4]; float w[4]; float fx, fy; float sx, sy; int x0, y0; } BilinearTap;

static inline BilinearTap bilinear_tap(float gx, float gy, int H, int W, int align_corners) {
    BilinearTap t;
    float x = bilinear_unnormalise(gx, W, align_corners, &t.sx), y = bilinear_unnormalise(gy, H, align_corners, &t.sy);
    float x0f = floorf(x), y0f = floorf(y);
    int x0 = (int)x0f, y0 = (int)y0f;
    t.x0 = x0; t.y0 = y0;
    t.fx = x - x0f; t.fy = y - y0f;
    int xs[2] = {x0, x0 + 1}, ys[2] = {y0, y0 + 1};
    float wx[2] = {1.0f - t.fx, t.fx}, wy[2] = {1.0f - t.fy, t.fy};
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int c = j * 2 + i;
            int ok = xs[i] >= 0 && xs[i] < W && ys[j] >= 0 && ys[j] < H;
            t.idx[c] = ok ? ys[j] * W + xs[i] : -1;
            t.w[c] = wx[i] * wy[j];
        }
    return t;
}



// ReLU, elementwise; the backward reads the forward's output (out > 0 <=> inp > 0).
void relu_forward(float *out, const float *inp, size_t N);
void relu_backward(float *dinp, const float *out, const float *dout, size_t N);

// LeakyReLU, elementwise: out = inp > 0 ? inp : slope·inp (nn.LeakyReLU, slope 0.01 by default); the backward
// reads the forward's output (out > 0 <=> inp > 0 for slope > 0): dinp += dout · (out > 0 ? 1 : slope).
void leaky_relu_forward(float *out, const float *inp, size_t N, float slope);
void leaky_relu_backward(float *dinp, const float *out, const float *dout, size_t N, float slope);

// out (N) = alpha·a + beta·b, elementwise (a scaled residual mix); out may alias a or b.
void scaled_add_forward(float *out, float alpha, const float *a, float beta, const float *b, size_t N);
// da (N) += alpha·dout; db (N) += beta·dout; either may be NULL.
void scaled_add_backward(float *da, float *db, const float *dout, float alpha, float beta, size_t N);

// Softmax over the last axis: out (R,C) = softmax(inp (R,C) * scale); out may alias inp.
void softmax_rows_forward(float *out, const float *inp, int R, int C, float scale);
// One row of softmax_rows_forward: y (C) = softmax(scale · x (C)); y may be x.
void softmax_row_scaled(float *y, const float *x, int C, float scale);
// dinp (R,C) += scale * out ⊙ (dout - Σ_c out·dout)
void softmax_rows_backward(float *dinp, const float *dout, const float *out, int R, int C, float scale);

// L2 normalisation of rows: out (R,C) = inp / max(‖inp‖, 1e-12); norm (R) saved for the backward.
void l2norm_rows_forward(float *out, float *norm, const float *inp, int R, int C);
// dinp (R,C) += (dout - out (out·dout)) / norm
void l2norm_rows_backward(float *dinp, const float *dout, const float *out, const float *norm, int R, int C);

// Bilinear sampling as torch.nn.functional.grid_sample(mode="bilinear", padding_mode="zeros"):
// inp (H*W, ld_in) channels-last, first C channels used; grid (Np, 2) normalised (x, y) in [-1, 1]
// (x along W); out (Np, ld_out), first C channels written. align_corners: 1 maps -1/+1 to the corner pixel
// centres, 0 to the corner pixel edges. Corners outside the map contribute zero.
void grid_sample_forward(float *out, const float *inp, const float *grid, int H, int W, int C, int ld_in,
                         int Np, int ld_out, int align_corners);
// dinp (H*W, ld_in) += scatter of dout; dgrid (Np, 2) += ∂out/∂grid · dout. Either may be NULL.
void grid_sample_backward(float *dinp, float *dgrid, const float *dout, const float *inp, const float *grid,
                          int H, int W, int C, int ld_in, int Np, int ld_out, int align_corners);

// Depthwise k×k convolution, stride 1, zero padding k/2 (nn.Conv2d(C, C, k, padding=k//2, groups=C)):
// inp (H*W, ld_in) channels-last, first C channels; weight (C, k*k); bias (C) or NULL; out (H*W, C).
void dwconv_forward(float *out, const float *inp, const float *weight, const float *bias, int H, int W, int C,
                    int ld_in, int k);
// dinp (H*W, ld_in) first C channels; dweight (C, k*k); dbias (C); dout (H*W, C).
void dwconv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int H, int W, int C, int ld_in, int k);

// Bilinear resize of single-channel maps (F.interpolate(mode="bilinear", antialias=False)):
// inp (B, h, w) -> out (B, Ho, Wo); align_corners as in PyTorch.
void upsample_bilinear_forward(float *out, const float *inp, int B, int h, int w, int Ho, int Wo,
                               int align_corners);
void upsample_bilinear_backward(float *dinp, const float *dout, int B, int h, int w, int Ho, int Wo,
                                int align_corners);

// scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", truncate) on each of B maps (H, W), in place
// semantics: out may alias inp. Radius int(truncate*sigma + 0.5); separable; accumulation in double.
void gaussian_filter_forward(float *out, const float *inp, int B, int H, int W, float sigma, float truncate);

// Numerically safe logistic pieces. sigmoid(x); softplus(x) = log(1 + e^x).
float sigmoid_f(float x);
float softplus_f(float x);
// Binary cross-entropy with logits, mean over N: loss = mean(softplus(x) - y x); dx (N) += scale·(σ(x) - y)/N.
float bce_logits_forward(const float *x, const float *y, int N);
void bce_logits_backward(float *dx, const float *x, const float *y, int N, float scale);

#endif
