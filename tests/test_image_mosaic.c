// April-GAN's mosaic augmentation (datasets/image_mosaic.h) against PIL's composition in tests/ref_mosaic.py:
// pixels within 1e-6 (both sides resize 8-bit images with Pillow's bicubic, so they agree to float rounding),
// the binary mask exactly; a missing file is named.
#include "tests/npy.h"
#include "datasets/image_mosaic.h"
#include "common/error.h"

#define FIX "build/fixtures/mosaic"
enum { S = 29 };

Test(image_mosaic, matches_pil_paste_resize_normalise) {
    const char *paths[4] = {FIX "/img0.png", FIX "/img1.png", FIX "/img2.png", FIX "/img3.png"};
    const char *masks[4] = {FIX "/mask0.png", NULL, NULL, FIX "/mask3.png"};
    float pixels[3 * S * S];
    uint8_t mask[S * S];
    cr_assert_eq(image_mosaic_load(paths, masks, S, NULL, NULL, pixels, mask), 0, "%s", err_msg());
    float *want = npy_f32(FIX, "pixels", NULL);
    assert_close(pixels, want, 3 * S * S, 1e-6, "mosaic pixels");
    Npy m = npy_load(FIX, "mask");
    cr_assert_eq(m.count, (size_t)S * S);
    int diff = 0, ones = 0;
    for (int k = 0; k < S * S; k++) {
        diff += mask[k] != ((uint8_t *)m.data)[k];
        ones += mask[k];
    }
    cr_assert_eq(diff, 0, "%d mask pixels differ from PIL's", diff);
    cr_assert_gt(ones, 0, "the pasted masks vanished");
    free(want);
    free(m.data);
}

Test(image_mosaic, missing_file_is_named) {
    const char *paths[4] = {FIX "/img0.png", FIX "/img1.png", FIX "/nope.png", FIX "/img3.png"};
    const char *masks[4] = {NULL, NULL, NULL, NULL};
    float pixels[3 * S * S];
    uint8_t mask[S * S];
    cr_assert_neq(image_mosaic_load(paths, masks, S, NULL, NULL, pixels, mask), 0);
    cr_assert_not_null(strstr(err_msg(), "nope.png"), "%s", err_msg());
}
