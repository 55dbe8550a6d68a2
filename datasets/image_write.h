// Writing 8-bit images: PNG through libpng, JPEG through libjpeg. Writes are atomic (temporary name, then rename;
// no fsync, since datasets are written thousands of files at a time).
#ifndef DATASETS_IMAGE_WRITE_H
#define DATASETS_IMAGE_WRITE_H

#include <stdint.h>

// pixels (h, w, channels) row-major, channels 1 (grey), 3 (RGB) or 4 (RGBA). compression 0..9 (zlib level;
// 1 is fast and still small for masks). 0 or -1 with err_set naming the path.
int png_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int compression);
// pixels (h, w, channels), channels 1 or 3; quality 1..100. Baseline, 4:2:0 for RGB, no metadata.
int jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality);

#endif
