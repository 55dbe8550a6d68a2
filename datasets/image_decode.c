// Image decoding: PNG (libpng), JPEG (libjpeg), BMP (stb_image), chosen by magic bytes, converted to
// RGB or grey 8-bit the way PIL's convert('RGB') / convert('L') does (see datasets/image.h).
#include "datasets/image.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h> // before jpeglib.h, which needs FILE
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_GIF
// STB_IMAGE_STATIC keeps stb's symbols private to this file (no clash with another copy); gcc reports its
// unused static declarations at the end of the file, so that warning stays off for the whole file.
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

enum { MAX_PIXELS = 1 << 28 }; // refuse absurd sizes from a corrupt header before allocating

void image_free(Image *img) {
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = img->c = 0;
}

// PIL's rgb2l: ITU-R 601-2 luma in 16-bit fixed point, rounded.
static inline uint8_t luma(unsigned r, unsigned g, unsigned b) {
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

static int alloc_image(Image *out, int w, int h, int channels, const char *name) {
    if (w <= 0 || h <= 0 || (int64_t)w * h > MAX_PIXELS)
        return err_set("%s: image size %dx%d is not supported", name, w, h);
    out->w = w; out->h = h; out->c = channels;
    out->data = malloc((size_t)w * h * channels);
    if (!out->data) return err_set("%s: out of memory for a %dx%d image", name, w, h);
    return 0;
}

// One row of decoded samples (n_in channels: G, GA, RGB or RGBA; 8 or 16 bits big-endian) to RGB or grey.
// 16-bit samples keep their high byte, except 16-bit grey to grey, which clips at 255 (PIL's I -> L).
static void convert_row(uint8_t *dst, int channels, const uint8_t *src, int w, int n_in, int depth) {
    int step = depth == 16 ? 2 : 1;
    for (int x = 0; x < w; x++) {
        const uint8_t *p = src + (size_t)x * n_in * step;
        unsigned s[4] = {0};
        for (int k = 0; k < n_in && k < 4; k++) s[k] = p[k * step];     // the high byte when 16-bit
        if (n_in <= 2) {
            unsigned g = s[0];
            if (channels == 1 && depth == 16 && n_in == 1) {
                unsigned v = (unsigned)p[0] << 8 | p[1];
                g = v > 255 ? 255 : v;
            }
            if (channels == 3) { dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = (uint8_t)g; }
            else dst[x] = (uint8_t)g;
        } else if (channels == 3) {
            dst[3 * x] = (uint8_t)s[0]; dst[3 * x + 1] = (uint8_t)s[1]; dst[3 * x + 2] = (uint8_t)s[2];
        } else {
            dst[x] = luma(s[0], s[1], s[2]);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// PNG

typedef struct {
    const uint8_t *p;
    size_t n, off;
    char msg[200];
} PngSource;

static void png_read_memory(png_structp png, png_bytep out, size_t len) {
    PngSource *s = png_get_io_ptr(png);
    if (s->n - s->off < len) png_error(png, "file is truncated");
    memcpy(out, s->p + s->off, len);
    s->off += len;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    PngSource *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int decode_png(const uint8_t *bytes, size_t n, const char *name, int channels, Image *out) {
    PngSource src = {bytes, n, 0, "corrupt file"};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return err_set("%s: out of memory", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        image_free(out);
        return err_set("%s: PNG: %s", name, src.msg);
    }
    png_set_read_fn(png, &src, png_read_memory);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);   // tRNS is not applied: alpha dropped anyway
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int n_in = png_get_channels(png, info), out_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (alloc_image(out, w, h, channels, name)) { png_destroy_read_struct(&png, &info, NULL); return -1; }
    pixels = malloc(row_bytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = pixels + row_bytes * y;
    png_read_image(png, rows);
    for (int y = 0; y < h; y++)
        convert_row(out->data + (size_t)y * w * channels, channels, rows[y], w, n_in, out_depth);
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// JPEG

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErrors;

static void jpeg_on_error(j_common_ptr cinfo) {
    JpegErrors *e = (JpegErrors *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

// libjpeg only warns when the data ends early and pads the image with grey; PIL calls that an error
// ("image file is truncated"), and so do we. Other warnings are ignored, as PIL does.
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

static int decode_jpeg(const uint8_t *bytes, size_t n, const char *name, int channels, Image *out) {
    struct jpeg_decompress_struct cinfo;
    JpegErrors err;
    uint8_t *volatile row = NULL;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(row);
        image_free(out);
        return err_set("%s: JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return err_set("%s: JPEG: CMYK images are not supported (convert the file to RGB)", name);
    }
    int grey_in = cinfo.num_components == 1;
    cinfo.out_color_space = grey_in ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, n_in = cinfo.output_components;
    if (alloc_image(out, w, h, channels, name)) { jpeg_destroy_decompress(&cinfo); return -1; }
    row = malloc((size_t)w * n_in);
    if (!row) { jpeg_destroy_decompress(&cinfo); image_free(out); return err_set("%s: out of memory", name); }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW r = row;
        jpeg_read_scanlines(&cinfo, &r, 1);
        convert_row(out->data + (size_t)y * w * channels, channels, row, w, n_in, 8);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// BMP

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int decode_bmp(const uint8_t *bytes, size_t n, const char *name, int channels, Image *out) {
    // stb_image reads past the end of a short buffer as zeros; check that the pixel array is all there.
    if (n < 30) return err_set("%s: BMP: file is truncated (header)", name);
    uint32_t offset = le32(bytes + 10), header = le32(bytes + 14);
    if (header >= 40 && n >= 34) {
        int32_t w = (int32_t)le32(bytes + 18), h = (int32_t)le32(bytes + 22);
        unsigned bpp = bytes[28] | bytes[29] << 8;
        uint32_t compression = le32(bytes + 30);
        if (compression == 0 || compression == 3) { // uncompressed or bitfields
            int64_t hh = h < 0 ? -(int64_t)h : h;
            int64_t stride = (((int64_t)w * bpp + 31) / 32) * 4;
            if (w > 0 && (int64_t)offset + stride * hh > (int64_t)n)
                return err_set("%s: BMP: file is truncated (%zu bytes, pixel data needs %lld)", name, n,
                               (long long)(offset + stride * hh));
        }
    }
    int w, h, comp;
    stbi_uc *rgb = stbi_load_from_memory(bytes, (int)n, &w, &h, &comp, 3);
    if (!rgb) return err_set("%s: BMP: %s", name, stbi_failure_reason());
    if (alloc_image(out, w, h, channels, name)) { stbi_image_free(rgb); return -1; }
    for (int y = 0; y < h; y++)
        convert_row(out->data + (size_t)y * w * channels, channels, rgb + (size_t)y * w * 3, w, 3, 8);
    stbi_image_free(rgb);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------

int image_decode_memory(const void *data, size_t n, const char *name, int channels, Image *out) {
    const uint8_t *b = data;
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3) return err_set("%s: cannot decode to %d channels (1 or 3)", name, channels);
    if (n == 0) return err_set("%s: empty file, not an image", name);
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return decode_png(b, n, name, channels, out);
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(b, n, name, channels, out);
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return decode_bmp(b, n, name, channels, out);
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        return err_set("%s: TIFF images are not supported (PNG, JPEG or BMP)", name);
    return err_set("%s: not a PNG, JPEG or BMP image (unrecognised first bytes)", name);
}

int image_decode_file(const char *path, int channels, Image *out) {
    size_t n;
    memset(out, 0, sizeof *out);
    char *bytes = fs_read_file(path, &n);
    if (!bytes) return -1;
    int rc = image_decode_memory(bytes, n, path, channels, out);
    free(bytes);
    return rc;
}

// Width and height from the header alone: PNG's IHDR, JPEG's first start-of-frame marker, BMP's info header.
static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

static int probe_jpeg(FILE *f, const char *path, int *w, int *h) {
    if (fseek(f, 2, SEEK_SET) != 0) return err_set("%s: JPEG: cannot seek", path);
    for (;;) {
        int c = fgetc(f);
        if (c == EOF) break;
        if (c != 0xFF) return err_set("%s: JPEG: corrupt marker before the frame header", path);
        while ((c = fgetc(f)) == 0xFF) {}
        if (c == EOF) break;
        if (c == 0xD8 || c == 0x01 || (c >= 0xD0 && c <= 0xD7)) continue; // markers without a length
        if (c == 0xD9 || c == 0xDA) break;                                // end of image, start of scan: no frame
        uint8_t seg[7];
        if (fread(seg, 1, 2, f) != 2) break;
        uint32_t len = be16(seg);
        if (len < 2) return err_set("%s: JPEG: corrupt segment length", path);
        if (c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC) { // SOFn
            if (len < 7 || fread(seg + 2, 1, 5, f) != 5) break;
            *h = (int)be16(seg + 3);
            *w = (int)be16(seg + 5);
            return 0;
        }
        if (fseek(f, (long)len - 2, SEEK_CUR) != 0) break;
    }
    return err_set("%s: JPEG: file is truncated (no frame header)", path);
}

int image_probe_file(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open", path);
    uint8_t b[26] = {0};
    size_t n = fread(b, 1, sizeof b, f);
    int rc;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        if (n < 24 || memcmp(b + 12, "IHDR", 4)) rc = err_set("%s: PNG: file is truncated (header)", path);
        else {
            *w = (int)(be16(b + 16) << 16 | be16(b + 18));
            *h = (int)(be16(b + 20) << 16 | be16(b + 22));
            rc = 0;
        }
    } else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        rc = probe_jpeg(f, path, w, h);
    } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
        if (n < 26) rc = err_set("%s: BMP: file is truncated (header)", path);
        else if (le32(b + 14) == 12) { // OS/2 BITMAPCOREHEADER: 16-bit sizes
            *w = (int)(b[18] | b[19] << 8);
            *h = (int)(b[20] | b[21] << 8);
            rc = 0;
        } else {
            int32_t bw = (int32_t)le32(b + 18), bh = (int32_t)le32(b + 22);
            *w = bw;
            *h = bh < 0 ? -bh : bh;
            rc = 0;
        }
    } else {
        rc = err_set("%s: not a PNG, JPEG or BMP image (unrecognised first bytes)", path);
    }
    fclose(f);
    return rc;
}
