// Resizing: Pillow's antialiased resampling (Resample.c, 8-bit path) reproduced operation for operation,
// crops, the model-input resize modes, and torch's bilinear interpolation of float maps.
#include "datasets/image.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Pillow keeps 22 fractional bits for 8-bit coefficients: 32 bits less 8 for the pixel, 2 for headroom.
#define PRECISION_BITS (32 - 8 - 2)

// The filters must round exactly as Pillow's (built without fused multiply-add), so no contraction here.
__attribute__((optimize("fp-contract=off"))) static double bicubic_filter(double x) {
    const double a = -0.5; // Keys' cubic convolution, as Pillow and OpenCV use for "bicubic"
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

__attribute__((optimize("fp-contract=off"))) static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

typedef struct {
    int ksize;      // coefficients per output pixel
    int *bounds;    // (out, 2): first input index, count
    int32_t *coeff; // (out, ksize) fixed point
} Coeffs;

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole input range [0, in).
__attribute__((optimize("fp-contract=off")))
static int precompute_coeffs(Coeffs *c, int in_size, int out_size, ImageFilter filter) {
    double (*fn)(double) = filter == IMAGE_FILTER_BICUBIC ? bicubic_filter : bilinear_filter;
    double filter_support = filter == IMAGE_FILTER_BICUBIC ? 2.0 : 1.0;
    double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filter_support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * out_size);
    c->coeff = malloc(sizeof(int32_t) * (size_t)ksize * out_size);
    double *k = malloc(sizeof(double) * ksize);
    if (!c->bounds || !c->coeff || !k) {
        free(c->bounds); free(c->coeff); free(k);
        return err_set("out of memory resizing %d to %d pixels", in_size, out_size);
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        int32_t *kk = c->coeff + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? k[x] : 0.0;
            kk[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(k);
    return 0;
}

static void coeffs_free(Coeffs *c) {
    free(c->bounds);
    free(c->coeff);
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS; // arithmetic shift: floor
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// out (rows, out_w, C) from in rows [row0, row0 + rows) of (.., in_w, C).
static void resample_horizontal(uint8_t *out, const uint8_t *in, int in_w, int C, int row0, int rows, int out_w,
                                const Coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(y + row0) * in_w * C;
        uint8_t *dst = out + (size_t)y * out_w * C;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const int32_t *k = c->coeff + (size_t)xx * c->ksize;
            for (int ch = 0; ch < C; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++) ss += src[(size_t)(x + xmin) * C + ch] * k[x];
                dst[(size_t)xx * C + ch] = clip8(ss);
            }
        }
    }
}

// out (out_h, w, C) from in (.., w, C); bounds relative to in's first row. Row-wise accumulation (same
// integer sums as Pillow's per-pixel loop, in an order the compiler vectorises).
static int resample_vertical(uint8_t *out, const uint8_t *in, int w, int C, int out_h, const Coeffs *c,
                             int row_shift) {
    size_t row = (size_t)w * C;
    int32_t *acc = malloc(sizeof(int32_t) * row); // (w * C)
    if (!acc) return err_set("out of memory resizing to height %d", out_h);
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = c->bounds[2 * yy] - row_shift, n = c->bounds[2 * yy + 1];
        const int32_t *k = c->coeff + (size_t)yy * c->ksize;
        for (size_t i = 0; i < row; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const uint8_t *src = in + (size_t)(y + ymin) * row;
            int32_t ky = k[y];
            for (size_t i = 0; i < row; i++) acc[i] += src[i] * ky;
        }
        uint8_t *dst = out + yy * row;
        for (size_t i = 0; i < row; i++) dst[i] = clip8(acc[i]);
    }
    free(acc);
    return 0;
}

static int image_alloc(Image *img, int w, int h, int c) {
    img->w = w; img->h = h; img->c = c;
    img->data = malloc((size_t)w * h * c);
    if (!img->data) return err_set("out of memory for a %dx%d image", w, h);
    return 0;
}

int image_resize(const Image *src, int out_w, int out_h, ImageFilter filter, Image *dst) {
    memset(dst, 0, sizeof *dst);
    if (out_w <= 0 || out_h <= 0 || out_w > (1 << 16) || out_h > (1 << 16))
        return err_set("resize: output size %dx%d is not supported", out_w, out_h);
    int C = src->c;
    if (out_w == src->w && out_h == src->h) {
        if (image_alloc(dst, out_w, out_h, C)) return -1;
        memcpy(dst->data, src->data, (size_t)out_w * out_h * C);
        return 0;
    }
    Coeffs ch = {0}, cv = {0};
    if (precompute_coeffs(&ch, src->w, out_w, filter)) return -1;
    if (precompute_coeffs(&cv, src->h, out_h, filter)) { coeffs_free(&ch); return -1; }
    // Only the input rows the vertical pass reads go through the horizontal pass.
    int row_first = cv.bounds[0], row_last = cv.bounds[2 * out_h - 2] + cv.bounds[2 * out_h - 1];
    uint8_t *tmp = NULL;
    const uint8_t *vin = src->data;
    int vin_w = src->w, shift = 0, rc = -1;
    if (out_w != src->w) {
        tmp = malloc((size_t)out_w * (row_last - row_first) * C);
        if (!tmp) { err_set("out of memory resizing to %dx%d", out_w, out_h); goto done; }
        resample_horizontal(tmp, src->data, src->w, C, row_first, row_last - row_first, out_w, &ch);
        vin = tmp; vin_w = out_w; shift = row_first;
    }
    if (image_alloc(dst, out_w, out_h, C)) goto done;
    if (out_h != src->h) {
        if (resample_vertical(dst->data, vin, vin_w, C, out_h, &cv, shift)) { image_free(dst); goto done; }
    } else memcpy(dst->data, vin, (size_t)out_w * out_h * C); // horizontal only: every row was resampled
    rc = 0;
done:
    free(tmp);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return rc;
}

int image_crop(const Image *src, int x0, int y0, int w, int h, Image *dst) {
    memset(dst, 0, sizeof *dst);
    if (x0 < 0 || y0 < 0 || w <= 0 || h <= 0 || x0 + w > src->w || y0 + h > src->h)
        return err_set("crop %dx%d at (%d, %d) is outside the %dx%d image", w, h, x0, y0, src->w, src->h);
    if (image_alloc(dst, w, h, src->c)) return -1;
    for (int y = 0; y < h; y++)
        memcpy(dst->data + (size_t)y * w * src->c, src->data + ((size_t)(y0 + y) * src->w + x0) * src->c,
               (size_t)w * src->c);
    return 0;
}

// Python's round(margin / 2.0): half to even.
static int round_half_even_div2(int margin) {
    int k = margin / 2;
    if (margin % 2 == 0) return k;
    return k % 2 == 0 ? k : k + 1;
}

int image_center_crop(const Image *src, int w, int h, Image *dst) {
    if (w > src->w || h > src->h)
        return err_set("center crop %dx%d is larger than the %dx%d image", w, h, src->w, src->h);
    return image_crop(src, round_half_even_div2(src->w - w), round_half_even_div2(src->h - h), w, h, dst);
}

int image_resize_for_model(const Image *src, int size, ImageResizeMode mode, Image *dst) {
    if (mode == IMAGE_RESIZE_SQUARE) return image_resize(src, size, size, IMAGE_FILTER_BICUBIC, dst);
    // torchvision Resize(size): short side to size, long side int(size * long / short).
    int w = src->w, h = src->h, nw, nh;
    if (w <= h) { nw = size; nh = (int)((double)size * h / w); }
    else { nh = size; nw = (int)((double)size * w / h); }
    Image mid;
    if (image_resize(src, nw, nh, IMAGE_FILTER_BICUBIC, &mid)) return -1;
    int rc = image_center_crop(&mid, size, size, dst);
    image_free(&mid);
    return rc;
}

// torch's upsample_bilinear2d (CPU, float): source index and weights in float, then the two-level blend.
void image_resize_bilinear_f32(float *out, const float *in, int C, int H, int W, int OH, int OW, int align_corners) {
    float rh = align_corners ? (OH > 1 ? (float)(H - 1) / (OH - 1) : 0.0f) : (float)H / OH;
    float rw = align_corners ? (OW > 1 ? (float)(W - 1) / (OW - 1) : 0.0f) : (float)W / OW;
    for (int oy = 0; oy < OH; oy++) {
        float sy = align_corners ? rh * oy : rh * (oy + 0.5f) - 0.5f;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 < H - 1 ? y0 + 1 : y0;
        float ly = sy - y0, hy = 1.0f - ly;
        for (int ox = 0; ox < OW; ox++) {
            float sx = align_corners ? rw * ox : rw * (ox + 0.5f) - 0.5f;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 < W - 1 ? x0 + 1 : x0;
            float lx = sx - x0, hx = 1.0f - lx;
            for (int c = 0; c < C; c++) {
                const float *p = in + (size_t)c * H * W;
                float top = p[(size_t)y0 * W + x0] * hx + p[(size_t)y0 * W + x1] * lx;
                float bottom = p[(size_t)y1 * W + x0] * hx + p[(size_t)y1 * W + x1] * lx;
                out[((size_t)c * OH + oy) * OW + ox] = top * hy + bottom * ly;
            }
        }
    }
}
