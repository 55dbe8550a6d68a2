// Datasets as a run uses them (see exec_dataset.h).
#include "harness/run/exec_dataset.h"
#include "harness/run/demo_assets.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "datasets/image.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int exec_dataset_open(const Settings *st, const DatasetSettings *d, int train_role, ExecDataset *out) {
    const char *key = d->key;
    memset(out, 0, sizeof *out);
    DatasetType type;
    if (dataset_type_from_name(d->type, &type) < 0) return err_wrap("%s: dataset %s: ", key, d->name);
    if (!d->root || !*d->root) return err_set("%s: dataset %s: no root (set data.roots.%s)", key, d->name, d->type);
    if (!fs_exists(d->root))
        return err_set("%s: dataset %s: folder %s not found; download the %s dataset into it or set data.roots.%s",
                       key, d->name, d->root, d->type, d->type);
    out->resize_masks = st->data.resize_masks;
    Dataset *ds = dataset_open(type, d->root, SPLIT_TEST, NULL);
    if (!ds) return err_wrap("%s: dataset %s: ", key, d->name);
    out->name = strdup(d->name);
    out->type = strdup(d->type);
    out->root = strdup(d->root);
    out->ds = ds;
    out->resize = (ImageResizeMode)st->model.resize;
    int *local = malloc(sizeof(int) * (ds->n_classes + 1));
    out->classes = malloc(sizeof(*out->classes) * (ds->n_classes + 1));
    for (int c = 0; c < ds->n_classes; c++) {
        local[c] = -1;
        if (demo_synthetic_class_used(st, d->root, train_role, ds->classes[c].name)) {
            local[c] = out->n_classes;
            out->classes[out->n_classes++] = &ds->classes[c];
        }
    }
    out->s = malloc(sizeof(*out->s) * (ds->n_samples + 1));
    out->cls = malloc(sizeof(int) * (ds->n_samples + 1));
    for (int i = 0; i < ds->n_samples; i++) {
        int c = local[ds->samples[i].class_index];
        if (c < 0) continue;
        out->s[out->n] = &ds->samples[i];
        out->cls[out->n++] = c;
    }
    free(local);
    if (out->n == 0) {
        err_set("%s: dataset %s: no test images under %s", key, d->name, d->root);
        exec_dataset_free(out);
        return -1;
    }
    return 0;
}

int exec_dataset_hash(ExecDataset *d) {
    if (d->hash) return 0;
    d->hash = malloc(sizeof(*d->hash) * d->n);
    int bad = -1;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < d->n; i++) {
        if (sha256_file_hex(d->s[i]->image_path, d->hash[i]) < 0) {
#pragma omp critical
            if (bad < 0) { bad = i; snprintf(msg, sizeof msg, "%s", err_msg()); }
        }
    }
    if (bad >= 0) return err_set("%s", msg);
    Sha256 h;
    sha256_init(&h);
    size_t rl = strlen(d->root);
    for (int i = 0; i < d->n; i++) {
        const char *p = d->s[i]->image_path;
        if (!strncmp(p, d->root, rl)) p += rl;
        char line[64];
        snprintf(line, sizeof line, "|%d|", d->s[i]->label);
        sha256_update(&h, d->classes[d->cls[i]]->name, strlen(d->classes[d->cls[i]]->name));
        sha256_update(&h, line, strlen(line));
        sha256_update(&h, p, strlen(p));
        sha256_update(&h, d->hash[i], 64);
        sha256_update(&h, "\n", 1);
    }
    sha256_final_hex(&h, d->manifest);
    return 0;
}

void exec_dataset_free(ExecDataset *d) {
    if (!d) return;
    free(d->name);
    free(d->type);
    free(d->root);
    dataset_free(d->ds);
    free(d->s);
    free(d->cls);
    free(d->classes);
    free(d->hash);
    memset(d, 0, sizeof *d);
}

// The stored sample values of a PNG (palette indices not looked up; 16-bit reduced to the high byte), grey.
// 1 on success, 0 when the file is not a palette/grey PNG (the caller decodes it as grey), -1 on error.
static int png_read_index(const char *path, Image *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open", path);
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) { fclose(f); return 0; }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    uint8_t *data = NULL;
    png_bytep *rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(data);
        free(rows);
        return err_set("%s: corrupt PNG mask", path);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    int ct = png_get_color_type(png, info);
    if (ct != PNG_COLOR_TYPE_PALETTE && ct != PNG_COLOR_TYPE_GRAY) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return 0;
    }
    png_set_packing(png);  // 1/2/4-bit samples to one byte each, values kept (no scaling for palettes)
    png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    data = malloc((size_t)w * h);
    rows = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) rows[y] = data + (size_t)y * w;
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(rows);
    *out = (Image){.w = w, .h = h, .c = 1, .data = data};
    return 1;
}

// The mask to S x S with PIL's bilinear filter, by the images' rule: S x S, or (short-crop, OpenAI CLIP's
// Resize(S) + CenterCrop(S) applied to the mask) the short side to S, long = int(S * long / short), the centre.
static int mask_resize(const Image *m, int S, ImageResizeMode mode, Image *out) {
    if (mode == IMAGE_RESIZE_SQUARE) return image_resize(m, S, S, IMAGE_FILTER_BILINEAR, out);
    int w = m->w <= m->h ? S : (int)((double)S * m->w / m->h), h = m->w <= m->h ? (int)((double)S * m->h / m->w) : S;
    Image mid = {0};
    if (image_resize(m, w, h, IMAGE_FILTER_BILINEAR, &mid) < 0) return -1;
    int rc = image_center_crop(&mid, S, S, out);
    image_free(&mid);
    return rc;
}

int exec_dataset_mask(const ExecDataset *d, int i, int S, uint8_t *out) {
    const Sample *s = d->s[i];
    memset(out, 0, (size_t)S * S);
    if (d->ds->image_level_only) return 0;
    if (!s->mask_path) return s->label == 0;
    Image m = {0};
    int rc = 0;
    if (d->ds->mask_rule == MASK_INDEX_NONZERO) rc = png_read_index(s->mask_path, &m);
    if (rc < 0) return -1;
    if (rc == 0 && image_decode_file(s->mask_path, 1, &m) < 0) return -1;
    if (!d->resize_masks) {
        int iw = 0, ih = 0;
        if (image_probe_file(s->image_path, &iw, &ih) < 0) { image_free(&m); return -1; }
        if (iw != m.w || ih != m.h) {
            err_set("%s: mask is %dx%d but its image %s is %dx%d (data.resize_masks: true resizes masks)",
                    s->mask_path, m.w, m.h, s->image_path, iw, ih);
            image_free(&m);
            return -1;
        }
    }
    size_t n = (size_t)m.w * m.h;
    for (size_t k = 0; k < n; k++) m.data[k] = m.data[k] ? 255 : 0;
    Image r = {0};
    if (mask_resize(&m, S, d->resize, &r) < 0) { image_free(&m); return -1; }
    for (size_t k = 0; k < (size_t)S * S; k++) out[k] = r.data[k] > 127;  // x/255 > 0.5 for 8-bit x
    image_free(&m);
    image_free(&r);
    return 1;
}

int exec_dataset_load_pixels(const ExecDataset *d, const int *idx, int B, int S, const float *mean, const float *std,
                             float *pixels) {
    const char **paths = malloc(sizeof(char *) * (B ? B : 1));
    if (!paths) return err_set("%s: out of memory", d->name);
    for (int j = 0; j < B; j++) paths[j] = d->s[idx[j]]->image_path;
    int rc = image_load_batch(paths, B, S, d->resize, mean, std, pixels);
    free(paths);
    return rc;
}
