// PNG (libpng) and JPEG (libjpeg) writers for the synthetic datasets.
#include "datasets/image_write.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int finish_file(FILE *f, char *tmp, const char *path, int failed) {
    failed |= fflush(f) != 0;
    failed |= fclose(f) != 0;
    if (failed) {
        unlink(tmp);
        free(tmp);
        return err_set("%s: write failed (disk full?)", path);
    }
    // rename without fsync: still atomic (a reader sees the old file or the whole new one), and a dataset of
    // thousands of images is not worth thousands of disk flushes; a crash can only lose whole recent files.
    int rc = 0;
    if (rename(tmp, path) != 0) {
        rc = err_set("%s: cannot replace: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

int png_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int compression) {
    static const int color_types[5] = {-1, PNG_COLOR_TYPE_GRAY, -1, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA};
    if (w <= 0 || h <= 0 || channels < 1 || channels > 4 || color_types[channels] < 0)
        return err_set("%s: cannot write a %dx%d image with %d channels as PNG", path, w, h, channels);
    char *tmp = fs_temp_name(path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { int e = errno; free(tmp); return err_set("%s: cannot write: %s", path, strerror(e)); }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int failed = 0;
    if (!png || !info) failed = 1;
    else if (setjmp(png_jmpbuf(png))) failed = 1;
    else {
        png_init_io(png, f);
        png_set_compression_level(png, compression);
        // Paeth on noisy textures costs time for little gain; sub/up are fast and compress masks to nothing.
        png_set_filter(png, 0, PNG_FILTER_SUB);
        png_set_IHDR(png, info, w, h, 8, color_types[channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                     PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * w * channels));
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    return finish_file(f, tmp, path, failed);
}

struct jpeg_error_jump {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
};

static void jpeg_error_exit(j_common_ptr cinfo) { longjmp(((struct jpeg_error_jump *)cinfo->err)->jump, 1); }

int jpeg_write(const char *path, const uint8_t *pixels, int w, int h, int channels, int quality) {
    if (w <= 0 || h <= 0 || (channels != 1 && channels != 3))
        return err_set("%s: cannot write a %dx%d image with %d channels as JPEG", path, w, h, channels);
    char *tmp = fs_temp_name(path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { int e = errno; free(tmp); return err_set("%s: cannot write: %s", path, strerror(e)); }
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_jump jerr;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpeg_error_exit;
    int failed = 0;
    if (setjmp(jerr.jump)) {
        failed = 1;
    } else {
        jpeg_create_compress(&cinfo);
        jpeg_stdio_dest(&cinfo, f);
        cinfo.image_width = w;
        cinfo.image_height = h;
        cinfo.input_components = channels;
        cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
        jpeg_set_defaults(&cinfo);
        jpeg_set_quality(&cinfo, quality, TRUE);
        jpeg_start_compress(&cinfo, TRUE);
        while (cinfo.next_scanline < cinfo.image_height) {
            JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * w * channels);
            jpeg_write_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_compress(&cinfo);
    }
    jpeg_destroy_compress(&cinfo);
    return finish_file(f, tmp, path, failed);
}
