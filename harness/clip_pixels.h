// An image file as CLIP input: decoded to RGB, resized to S x S (bicubic) unless already that size, scaled to
// [0,1] and normalised per channel with the checkpoint's mean and std (preprocessor_config.json).
#ifndef HARNESS_CLIP_PIXELS_H
#define HARNESS_CLIP_PIXELS_H

// out (3,S,S) channel-major. -1 with err_set naming the file.
int clip_pixels_load(const char *path, int S, const float mean[3], const float std[3], float *out);

#endif
