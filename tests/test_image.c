// Image input against PIL / torch (tests/ref_image.py): decoding of PNG, JPEG, BMP variants, Pillow's
// resampling, CLIP input tensors, torch's bilinear maps, and errors naming the file.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/image.h"

#define FIX "build/fixtures/image/"

static cJSON *manifest(void) {
    char *text = fs_read_file(FIX "manifest.json", NULL);
    cr_assert_not_null(text, "%s (run `make fixtures`)", err_msg());
    cJSON *m = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(m);
    return m;
}

static void *read_fixture(const char *name, size_t want_bytes) {
    char path[512];
    snprintf(path, sizeof path, FIX "%s", name);
    size_t n;
    void *p = fs_read_file(path, &n);
    cr_assert_not_null(p, "%s", err_msg());
    cr_assert_eq(n, want_bytes, "%s: %zu bytes, expected %zu", name, n, want_bytes);
    return p;
}

static int jint(cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valueint; }
static const char *jstr(cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valuestring; }

// Largest absolute difference; *n_diff gets how many bytes differ at all.
static int max_diff_u8(const uint8_t *a, const uint8_t *b, size_t n, size_t *n_diff) {
    int m = 0;
    *n_diff = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) (*n_diff)++;
        if (d > m) m = d;
    }
    return m;
}

// PNG and BMP decode exactly as PIL; JPEG within 1 LSB (both sides use libjpeg's default islow IDCT and
// fancy upsampling; measured: identical).
Test(image, decode_matches_pil) {
    cJSON *m = manifest();
    cJSON *e;
    int n_cases = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "decode")) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", jstr(e, "file"));
        int w = jint(e, "w"), h = jint(e, "h"), tol = jint(e, "tol");
        for (int c = 3; c >= 1; c -= 2) {
            Image img;
            cr_assert_eq(image_decode_file(path, c, &img), 0, "%s", err_msg());
            cr_assert(img.w == w && img.h == h && img.c == c, "%s: %dx%dx%d, PIL %dx%dx%d", path, img.w, img.h,
                      img.c, w, h, c);
            uint8_t *want = read_fixture(jstr(e, c == 3 ? "rgb" : "grey"), (size_t)w * h * c);
            size_t n_diff;
            int d = max_diff_u8(img.data, want, (size_t)w * h * c, &n_diff);
            cr_assert_leq(d, tol, "%s (%s) as %d channels: max difference %d (%zu values differ), tolerance %d",
                          path, jstr(e, "note"), c, d, n_diff, tol);
            if (tol) cr_log_info("%s as %d channels: max difference %d, %zu values differ", path, c, d, n_diff);
            free(want);
            image_free(&img);
        }
        n_cases++;
    }
    cr_assert_geq(n_cases, 20);
    cJSON_Delete(m);
}

Test(image, bad_files_are_errors_naming_the_file) {
    cJSON *m = manifest();
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "bad")) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", jstr(e, "file"));
        for (int c = 3; c >= 1; c -= 2) {
            Image img;
            cr_assert_eq(image_decode_file(path, c, &img), -1, "%s decoded without an error", path);
            cr_assert_null(img.data);
            cr_assert(strstr(err_msg(), path), "error does not name the file: %s", err_msg());
            cr_assert(strstr(err_msg(), jstr(e, "expect")), "%s: error '%s' lacks '%s'", path, err_msg(),
                      jstr(e, "expect"));
        }
    }
    Image img;
    cr_assert_eq(image_decode_file(FIX "no_such_file.png", 3, &img), -1);
    cr_assert(strstr(err_msg(), "no_such_file.png"), "%s", err_msg());
    cJSON_Delete(m);
}

// Pillow's resize, bicubic and bilinear, up and down, non-square, one pass only, RGB and grey: measured
// identical; the requirement is 1 LSB.
Test(image, resize_matches_pillow) {
    cJSON *m = manifest();
    cJSON *e;
    int n_cases = 0;
    size_t total_diff = 0, total = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "resize")) {
        int w = jint(e, "w"), h = jint(e, "h"), c = jint(e, "c"), ow = jint(e, "ow"), oh = jint(e, "oh");
        ImageFilter f = strcmp(jstr(e, "filter"), "bicubic") ? IMAGE_FILTER_BILINEAR : IMAGE_FILTER_BICUBIC;
        Image src = {w, h, c, read_fixture(jstr(e, "src"), (size_t)w * h * c)}, dst;
        cr_assert_eq(image_resize(&src, ow, oh, f, &dst), 0, "%s", err_msg());
        cr_assert(dst.w == ow && dst.h == oh && dst.c == c);
        uint8_t *want = read_fixture(jstr(e, "out"), (size_t)ow * oh * c);
        size_t n_diff;
        int d = max_diff_u8(dst.data, want, (size_t)ow * oh * c, &n_diff);
        cr_assert_leq(d, 1, "%s %dx%dx%d -> %dx%d: max difference %d", jstr(e, "filter"), w, h, c, ow, oh, d);
        total_diff += n_diff;
        total += (size_t)ow * oh * c;
        free(want);
        free(src.data);
        image_free(&dst);
        n_cases++;
    }
    cr_assert_geq(n_cases, 40);
    cr_log_info("resize: %zu of %zu values differ from Pillow by 1", total_diff, total);
    cJSON_Delete(m);
}

Test(image, same_size_is_identity) {
    uint8_t px[5 * 5 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 37 + 11);
    Image src = {5, 5, 3, px}, dst;
    cr_assert_eq(image_resize_for_model(&src, 5, IMAGE_RESIZE_SQUARE, &dst), 0);
    cr_assert_eq(dst.w, 5);
    cr_assert_eq(dst.h, 5);
    cr_assert_arr_eq(dst.data, px, sizeof px);
    image_free(&dst);
    Image sq = {4, 4, 3, px};
    cr_assert_eq(image_resize_for_model(&sq, 4, IMAGE_RESIZE_SHORT_CROP, &dst), 0);
    cr_assert_arr_eq(dst.data, px, 4 * 4 * 3);
    image_free(&dst);
}

// torchvision's CenterCrop offsets: round((H - h) / 2) with Python's half-to-even rounding.
Test(image, center_crop_rounding) {
    static const struct { int margin, offset; } cases[] = {{0, 0}, {1, 0}, {2, 1}, {3, 2}, {5, 2}, {7, 4}, {9, 4}, {13, 6}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int W = 4 + cases[i].margin;
        uint8_t *px = malloc((size_t)W);
        for (int x = 0; x < W; x++) px[x] = (uint8_t)x;
        Image src = {W, 1, 1, px}, dst;
        cr_assert_eq(image_center_crop(&src, 4, 1, &dst), 0);
        cr_assert_eq(dst.data[0], cases[i].offset, "margin %d: left %d, torchvision %d", cases[i].margin, dst.data[0],
                     cases[i].offset);
        image_free(&dst);
        free(px);
    }
}

static float max_abs_diff_f32(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

// Decode + resize + ToTensor + Normalize, both modes, against torch: measured identical (0); tolerance 1e-6.
Test(image, preprocessed_tensor_matches_torchvision) {
    cJSON *m = manifest();
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "preprocess")) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", jstr(e, "file"));
        int s = jint(e, "size");
        size_t n = (size_t)3 * s * s;
        float *got = malloc(n * sizeof(float));
        for (int mode = 0; mode < 2; mode++) {
            cr_assert_eq(image_load_preprocessed(path, s, mode ? IMAGE_RESIZE_SHORT_CROP : IMAGE_RESIZE_SQUARE,
                                                 NULL, NULL, got), 0, "%s", err_msg());
            float *want = read_fixture(jstr(e, mode ? "crop" : "square"), n * sizeof(float));
            float d = max_abs_diff_f32(got, want, n);
            cr_assert_leq(d, 1e-6f, "%s %s %d: max |difference| %g", path, mode ? "crop" : "square", s, d);
            cr_log_info("%s %s %d: max |difference| %g", path, mode ? "crop" : "square", s, d);
            free(want);
        }
        free(got);
    }
    cJSON_Delete(m);
}

// N(0, 1) maps against torch.nn.functional.interpolate: measured up to 8.3e-6 (a few float ulps: torch sums
// in its own order); tolerance 2e-5.
Test(image, bilinear_maps_match_torch) {
    cJSON *m = manifest();
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(m, "bilinear_f32")) {
        int c = jint(e, "c"), h = jint(e, "h"), w = jint(e, "w"), oh = jint(e, "oh"), ow = jint(e, "ow");
        float *src = read_fixture(jstr(e, "src"), (size_t)c * h * w * sizeof(float));
        float *want = read_fixture(jstr(e, "out"), (size_t)c * oh * ow * sizeof(float));
        float *got = malloc((size_t)c * oh * ow * sizeof(float));
        image_resize_bilinear_f32(got, src, c, h, w, oh, ow, jint(e, "align_corners"));
        float d = max_abs_diff_f32(got, want, (size_t)c * oh * ow);
        cr_assert_leq(d, 2e-5f, "%dx%dx%d -> %dx%d align_corners=%d: max |difference| %g", c, h, w, oh, ow,
                      jint(e, "align_corners"), d);
        cr_log_info("map %dx%dx%d -> %dx%d align_corners=%d: max |difference| %g", c, h, w, oh, ow,
                    jint(e, "align_corners"), d);
        free(src); free(want); free(got);
    }
    cJSON_Delete(m);
}

Test(image, argument_errors) {
    uint8_t px[12] = {0};
    Image src = {2, 2, 3, px}, dst;
    cr_assert_eq(image_resize(&src, 0, 5, IMAGE_FILTER_BICUBIC, &dst), -1);
    cr_assert_eq(image_center_crop(&src, 3, 2, &dst), -1);
    cr_assert_eq(image_crop(&src, 1, 0, 2, 2, &dst), -1);
    cr_assert_eq(image_decode_memory("\x89PNG\r\n\x1a\n", 8, "mem.png", 2, &dst), -1);
    cr_assert(strstr(err_msg(), "mem.png"));
}
