// April-GAN's mosaic augmentation (docs/reference/zsad-anchors.md §1.2: MVTecDataset.combine_img): four images of one class
// pasted into a 2 x 2 canvas of twice the first image's size (PIL Image.paste: a larger image is cut at the
// canvas edge, a smaller one leaves black), with their masks pasted the same way (a normal image contributes
// zeros), then resized and normalised as a plain image is.
#ifndef DATASETS_IMAGE_MOSAIC_H
#define DATASETS_IMAGE_MOSAIC_H

#include <stdint.h>

// paths[4] (top-left, top-right, bottom-left, bottom-right); masks[4]: a mask file or NULL (all normal).
// pixels (3, S, S): bicubic to S x S and normalised with mean/std (NULL: OpenAI's); mask (S, S): the pasted
// binary masks (> 0), bilinear to S x S, > 0.5 (the harness's mask rule). -1 with err_set naming the file.
int image_mosaic_load(const char *const paths[4], const char *const masks[4], int S, const float *mean,
                      const float *std, float *pixels, uint8_t *mask);

#endif
