// CLIP input pixels from an image file (PNG through libpng's simplified API).
#include "harness/clip_pixels.h"
#include "common/error.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

int clip_pixels_load(const char *path, int S, const float mean[3], const float std[3], float *out) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return err_set("%s: cannot read the image (%s)", path, img.message);
    img.format = PNG_FORMAT_RGB;
    if ((int)img.width != S || (int)img.height != S) {
        png_image_free(&img);
        return err_set("%s: image is %ux%u; this build embeds images already at the input size %dx%d", path,
                       img.width, img.height, S, S);
    }
    unsigned char *rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!rgb) { png_image_free(&img); return err_set("%s: out of memory", path); }
    if (!png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
        free(rgb);
        return err_set("%s: cannot decode the image (%s)", path, img.message);
    }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < (size_t)S * S; i++)
            out[(size_t)c * S * S + i] = ((float)rgb[i * 3 + c] / 255.0f - mean[c]) / std[c];
    free(rgb);
    return 0;
}
