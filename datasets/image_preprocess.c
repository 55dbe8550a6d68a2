// CLIP input tensors: decode, resize, then torchvision's ToTensor + Normalize in float32.
#include "datasets/image.h"
#include "common/error.h"

#include <stdio.h>

const float IMAGE_CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float IMAGE_CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void image_normalize(float *out, const Image *img, const float *mean, const float *std) {
    size_t hw = (size_t)img->w * img->h;
    for (int c = 0; c < img->c; c++) {
        float m = mean[c], s = std[c];
        float *o = out + c * hw; // (h, w) plane of channel c
        const uint8_t *p = img->data + c;
        for (size_t i = 0; i < hw; i++) o[i] = ((float)p[i * img->c] / 255.0f - m) / s;
    }
}

int image_load_preprocessed(const char *path, int size, ImageResizeMode mode, const float *mean, const float *std,
                            float *out) {
    Image img, sized;
    if (image_decode_file(path, 3, &img)) return -1;
    int rc = image_resize_for_model(&img, size, mode, &sized);
    image_free(&img);
    if (rc) return err_wrap("%s: ", path);
    image_normalize(out, &sized, mean ? mean : IMAGE_CLIP_MEAN, std ? std : IMAGE_CLIP_STD);
    image_free(&sized);
    return 0;
}

int image_load_batch(const char *const *paths, int n, int size, ImageResizeMode mode, const float *mean,
                     const float *std, float *out) {
    int bad = -1;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 1)
    for (int j = 0; j < n; j++)
        if (image_load_preprocessed(paths[j], size, mode, mean, std, out + (size_t)j * 3 * size * size) < 0) {
#pragma omp critical
            if (bad < 0) { bad = j; snprintf(msg, sizeof msg, "%s", err_msg()); }
        }
    return bad >= 0 ? err_set("%s", msg) : 0;
}
