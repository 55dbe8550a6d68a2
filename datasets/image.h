// Image input: decoding (PNG, JPEG, BMP by their first bytes), Pillow-exact resizing, CLIP normalisation.
// What an AnomalyCLIP / OpenAI-CLIP Python pipeline gets from PIL and torchvision, in C:
//   Image.open(p).convert('RGB') -> Resize -> (CenterCrop) -> ToTensor -> Normalize(mean, std).
#ifndef DATASETS_IMAGE_H
#define DATASETS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

// 8-bit pixels, rows top to bottom, channels interleaved.
typedef struct {
    int w, h, c;   // c: 3 (RGB) or 1 (grey)
    uint8_t *data; // (h, w, c)
} Image;

// ---- decoding (datasets/image_decode.c) ----
// channels 3: RGB as PIL's convert('RGB'): grey replicated, alpha dropped (never composited), palettes
//   expanded, 16-bit samples reduced to their high byte (as PIL does for 16-bit RGB, RGBA and grey+alpha
//   PNGs; for 16-bit grey PNGs PIL 9 saturates every value above 255, which we deliberately do not copy).
// channels 1: grey as PIL's convert('L') (for masks): RGB -> (19595 R + 38470 G + 7471 B + 2^15) >> 16,
//   alpha dropped, 16-bit grey clipped to 255 as PIL does (so a 0/1 16-bit mask keeps its ones).
// Formats: PNG (libpng; all colour types, bit depths 1-16, interlaced), JPEG (libjpeg; grey and YCbCr/RGB;
// CMYK/YCCK are an error), BMP (stb_image; 1/4/8/24/32-bit uncompressed or bitfields). The format comes
// from the magic bytes, never the extension. EXIF orientation is not applied (PIL's open does not either).
// Errors name the file: not an image, truncated, corrupt, unsupported variant.
int image_decode_file(const char *path, int channels, Image *out);
// The same from bytes in memory; name is used in error messages.
int image_decode_memory(const void *bytes, size_t n, const char *name, int channels, Image *out);
void image_free(Image *img);
// Width and height from the file's header, without decoding the pixels (PNG, JPEG, BMP). -1 with err_set
// naming the file when it cannot be read or is not one of those.
int image_probe_file(const char *path, int *w, int *h);

// ---- resizing (datasets/image_resize.c) ----
typedef enum {
    IMAGE_FILTER_BICUBIC,  // PIL.Image.BICUBIC (Keys a = -0.5), antialiased: support scaled on downscaling
    IMAGE_FILTER_BILINEAR, // PIL.Image.BILINEAR (triangle), antialiased likewise; torchvision's mask default
} ImageFilter;

// Pillow's Image.resize, bit-exact for 8-bit images: separable (horizontal pass first), fixed-point
// coefficients (22 fractional bits), uint8 intermediate, round and clamp. A pass whose size does not change
// is skipped; same size in and out is a copy. dst is allocated (free with image_free).
int image_resize(const Image *src, int out_w, int out_h, ImageFilter filter, Image *dst);
// The rectangle [x0, x0 + w) x [y0, y0 + h) of src (inside it), into a new image.
int image_crop(const Image *src, int x0, int y0, int w, int h, Image *dst);
// torchvision's CenterCrop: top = round((H - h) / 2), left = round((W - w) / 2), Python's round (half to
// even), so an odd margin of 2k + 1 puts k or k + 1 above: k when k is even. (HF's center_crop floors.)
int image_center_crop(const Image *src, int w, int h, Image *dst);

typedef enum {
    IMAGE_RESIZE_SQUARE,     // bicubic to size x size, aspect not kept (AnomalyCLIP's Resize((S, S))); default
    IMAGE_RESIZE_SHORT_CROP, // OpenAI CLIP: bicubic so the short side is size (long = int(size * long / short),
                             // torchvision's rule), then the centre size x size crop
} ImageResizeMode;

// src to size x size as mode says; an image already size x size is copied unchanged.
int image_resize_for_model(const Image *src, int size, ImageResizeMode mode, Image *dst);

// torch.nn.functional.interpolate(mode='bilinear', antialias=False) of float maps: in (C, H, W) -> out
// (C, OH, OW). align_corners as torch's flag (AnomalyCLIP upsamples its anomaly maps with True).
void image_resize_bilinear_f32(float *out, const float *in, int C, int H, int W, int OH, int OW, int align_corners);

// ---- normalisation (datasets/image_preprocess.c) ----
extern const float IMAGE_CLIP_MEAN[3]; // OpenAI CLIP: 0.48145466, 0.4578275, 0.40821073
extern const float IMAGE_CLIP_STD[3];  // 0.26862954, 0.26130258, 0.27577711

// out (c, h, w) = (x / 255 - mean[ch]) / std[ch] in float32, as torchvision's ToTensor + Normalize.
void image_normalize(float *out, const Image *img, const float *mean, const float *std);
// Decode (RGB), resize as mode says, normalise: out (3, size, size). mean/std NULL: OpenAI's.
int image_load_preprocessed(const char *path, int size, ImageResizeMode mode, const float *mean, const float *std,
                            float *out);
// The same for n files on the OpenMP threads: out (n, 3, size, size). -1 with the first failing file's error.
int image_load_batch(const char *const *paths, int n, int size, ImageResizeMode mode, const float *mean,
                     const float *std, float *out);

#endif
