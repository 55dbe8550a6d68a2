// April-GAN's 2 x 2 mosaic (see image_mosaic.h).
#include "datasets/image_mosaic.h"
#include "datasets/image.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

// Pastes src at (x0, y0) into dst (same channels), cutting what falls outside, as PIL's Image.paste.
static void paste(Image *dst, const Image *src, int x0, int y0) {
    int w = src->w < dst->w - x0 ? src->w : dst->w - x0, h = src->h < dst->h - y0 ? src->h : dst->h - y0;
    for (int y = 0; y < h; y++)
        memcpy(dst->data + ((size_t)(y0 + y) * dst->w + x0) * dst->c, src->data + (size_t)y * src->w * src->c,
               (size_t)w * src->c);
}

int image_mosaic_load(const char *const paths[4], const char *const masks[4], int S, const float *mean,
                      const float *std, float *pixels, uint8_t *mask) {
    Image img[4] = {{0}}, canvas = {0}, mcanvas = {0}, resized = {0};
    int rc = -1;
    for (int i = 0; i < 4; i++)
        if (image_decode_file(paths[i], 3, &img[i]) < 0) goto done;
    int W = img[0].w, H = img[0].h;
    canvas = (Image){2 * W, 2 * H, 3, calloc((size_t)4 * W * H * 3, 1)};
    mcanvas = (Image){2 * W, 2 * H, 1, calloc((size_t)4 * W * H, 1)};
    if (!canvas.data || !mcanvas.data) { err_set("mosaic of %s: out of memory", paths[0]); goto done; }
    for (int i = 0; i < 4; i++) {
        int x0 = (i % 2) * W, y0 = (i / 2) * H;
        paste(&canvas, &img[i], x0, y0);
        if (!masks[i]) continue;  // a normal image: its quarter of the mask stays 0
        Image m = {0};
        if (image_decode_file(masks[i], 1, &m) < 0) goto done;
        for (size_t k = 0; k < (size_t)m.w * m.h; k++) m.data[k] = m.data[k] ? 255 : 0;
        paste(&mcanvas, &m, x0, y0);
        image_free(&m);
    }
    if (image_resize_for_model(&canvas, S, IMAGE_RESIZE_SQUARE, &resized) < 0) goto done;
    image_normalize(pixels, &resized, mean ? mean : IMAGE_CLIP_MEAN, std ? std : IMAGE_CLIP_STD);
    image_free(&resized);
    if (image_resize(&mcanvas, S, S, IMAGE_FILTER_BILINEAR, &resized) < 0) goto done;
    for (size_t k = 0; k < (size_t)S * S; k++) mask[k] = resized.data[k] > 127;  // x/255 > 0.5 for 8-bit x
    rc = 0;
done:
    for (int i = 0; i < 4; i++) image_free(&img[i]);
    image_free(&canvas);
    image_free(&mcanvas);
    image_free(&resized);
    return rc;
}
