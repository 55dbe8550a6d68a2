// The synthetic generator: exact masks (a defect changes exactly its mask's pixels), determinism, classes that
// differ, and `kanoclip synth` output read back by the MVTec/VisA readers with PNGs decoded by libpng.
#include "tests/datasets_tree.h"
#include "datasets/dataset.h"
#include "datasets/synth.h"

#include <math.h>
#include <png.h>

// Decodes an 8-bit PNG; *channels gets its native channel count (1 grey, 3 RGB). malloc'd (h, w, channels).
static uint8_t *read_png(const char *path, int *w, int *h, int *channels) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "%s: %s", path, im.message);
    *channels = (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    cr_assert_eq(im.format & PNG_FORMAT_FLAG_ALPHA, 0, "%s has alpha", path);
    im.format = *channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(im));
    cr_assert(png_image_finish_read(&im, NULL, buf, 0, NULL), "%s: %s", path, im.message);
    *w = im.width;
    *h = im.height;
    return buf;
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *d = (uint8_t *)fs_read_file(path, n);
    cr_assert_not_null(d, "%s", err_msg());
    return d;
}

Test(synth, every_defect_changes_exactly_its_mask) {
    for (int size = 48; size <= 96; size += 48)
        for (int c = 0; c < synth_n_classes(); c++)
            for (int k = -1; k < synth_class_n_defects(c); k++) {
                int npix = size * size;
                uint8_t *img = malloc(npix * 3), *clean = malloc(npix * 3), *mask = malloc(npix);
                int defect = k < 0 ? -1 : (int)synth_class_defect(c, k);
                synth_render(c, 1000 + 17 * c + k, size, defect, img, clean, mask);
                int inside = 0;
                for (int i = 0; i < npix; i++) {
                    cr_assert(mask[i] == 0 || mask[i] == 255, "mask value %d", mask[i]);
                    int diff = 0;
                    for (int ch = 0; ch < 3; ch++) {
                        int d = abs((int)img[3 * i + ch] - (int)clean[3 * i + ch]);
                        diff = d > diff ? d : diff;
                    }
                    if (mask[i]) {
                        inside++;
                        cr_assert(diff >= 25, "%s/%s size %d: mask pixel %d changed by only %d", synth_class_name(c),
                                  synth_defect_name(defect), size, i, diff);
                    } else {
                        cr_assert_eq(diff, 0, "%s/%s size %d: pixel %d outside the mask changed", synth_class_name(c),
                                     defect < 0 ? "good" : synth_defect_name(defect), size, i);
                    }
                }
                if (k < 0) cr_assert_eq(inside, 0);
                else cr_assert(inside >= 6 && inside < npix / 3, "%s/%s: %d mask pixels", synth_class_name(c),
                               synth_defect_name(defect), inside);
                free(img);
                free(clean);
                free(mask);
            }
}

Test(synth, same_seed_same_image_other_seed_other_image) {
    int n = 64 * 64;
    uint8_t *a = malloc(n * 3), *b = malloc(n * 3), *ma = malloc(n), *mb = malloc(n);
    for (int c = 0; c < synth_n_classes(); c++) {
        int defect = (int)synth_class_defect(c, 0);
        synth_render(c, 42, 64, defect, a, NULL, ma);
        synth_render(c, 42, 64, defect, b, NULL, mb);
        cr_assert_eq(memcmp(a, b, n * 3), 0);
        cr_assert_eq(memcmp(ma, mb, n), 0);
        synth_render(c, 43, 64, defect, b, NULL, mb);
        cr_assert_neq(memcmp(a, b, n * 3), 0, "%s: seeds 42 and 43 give the same image", synth_class_name(c));
        cr_assert_neq(memcmp(ma, mb, n), 0, "%s: seeds 42 and 43 give the same mask", synth_class_name(c));
    }
    free(a); free(b); free(ma); free(mb);
}

// Classes must look different (a zero-shot split over them is meaningless otherwise): a nearest-centroid rule on
// simple appearance features (mean and spread of colour, centre colour, gradient energy), leave-one-out over
// several normal images per class, must recognise every image's class.
enum { N_FEAT = 11, PER_CLASS = 5, FSIZE = 64 };

static void features(const uint8_t *img, int n, double *f) {
    double sum[3] = {0}, sq[3] = {0}, centre[3] = {0}, gx = 0, gy = 0;
    int nc = 0;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            const uint8_t *p = img + 3 * (y * n + x);
            for (int c = 0; c < 3; c++) {
                double v = p[c] / 255.0;
                sum[c] += v;
                sq[c] += v * v;
                if (x >= n / 4 && x < 3 * n / 4 && y >= n / 4 && y < 3 * n / 4) centre[c] += v;
            }
            nc += x >= n / 4 && x < 3 * n / 4 && y >= n / 4 && y < 3 * n / 4;
            double l = (p[0] + p[1] + p[2]) / 765.0;
            if (x + 1 < n) gx += fabs((p[3] + p[4] + p[5]) / 765.0 - l);
            if (y + 1 < n) gy += fabs((p[3 * n] + p[3 * n + 1] + p[3 * n + 2]) / 765.0 - l);
        }
    double np_ = (double)n * n;
    for (int c = 0; c < 3; c++) {
        f[c] = sum[c] / np_;
        f[3 + c] = sqrt(fmax(sq[c] / np_ - f[c] * f[c], 0));
        f[6 + c] = centre[c] / nc;
    }
    f[9] = gx / (n * (n - 1));
    f[10] = gy / (n * (n - 1));
}

Test(synth, classes_are_told_apart_by_appearance) {
    int nc = synth_n_classes(), total = nc * PER_CLASS;
    double(*f)[N_FEAT] = calloc(total, sizeof *f);
    uint8_t *img = malloc(FSIZE * FSIZE * 3), *mask = malloc(FSIZE * FSIZE);
    for (int c = 0; c < nc; c++)
        for (int i = 0; i < PER_CLASS; i++) {
            synth_render(c, 5000 + 101 * c + i, FSIZE, -1, img, NULL, mask);
            features(img, FSIZE, f[c * PER_CLASS + i]);
        }
    double sd[N_FEAT] = {0}, mean[N_FEAT] = {0};
    for (int j = 0; j < N_FEAT; j++) {
        for (int s = 0; s < total; s++) mean[j] += f[s][j] / total;
        for (int s = 0; s < total; s++) sd[j] += (f[s][j] - mean[j]) * (f[s][j] - mean[j]) / total;
        sd[j] = sqrt(sd[j]) + 1e-9;
    }
    for (int s = 0; s < total; s++) {
        int own = s / PER_CLASS, best = -1;
        double best_d = 1e30;
        for (int c = 0; c < nc; c++) {
            double cen[N_FEAT] = {0};
            int m = 0;
            for (int i = 0; i < PER_CLASS; i++) {
                int t = c * PER_CLASS + i;
                if (t == s) continue;
                for (int j = 0; j < N_FEAT; j++) cen[j] += f[t][j];
                m++;
            }
            double d = 0;
            for (int j = 0; j < N_FEAT; j++) d += fabs(f[s][j] - cen[j] / m) / sd[j];
            if (d < best_d) { best_d = d; best = c; }
        }
        cr_assert_eq(best, own, "a %s image looks most like %s", synth_class_name(own), synth_class_name(best));
    }
    free(f);
    free(img);
    free(mask);
}

Test(synth, class_names_are_unique_words_and_defect_folders_known) {
    for (int c = 0; c < synth_n_classes(); c++) {
        const char *name = synth_class_name(c);
        for (const char *p = name; *p; p++) cr_assert((*p >= 'a' && *p <= 'z') || *p == '_', "%s", name);
        for (int d = 0; d < c; d++) cr_assert_str_neq(name, synth_class_name(d));
        for (int k = 0; k < synth_class_n_defects(c); k++)
            cr_assert((int)synth_class_defect(c, k) >= 0 && synth_class_defect(c, k) < DEFECT_N_KINDS);
    }
}

static void run_synth(const char *out, const char *extra) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "build/kanoclip synth --out '%s' --classes 3 --class-offset 2 --size 48 --per-class-normal 3 "
             "--per-class-anomalous 4 --train-normal 2 %s",
             out, extra);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", cmd, st);
}

Test(synth, mvtec_layout_read_back_with_aligned_masks) {
    char *root = tree_tmpdir();
    char out[4096];
    snprintf(out, sizeof out, "%s/synth", root);
    run_synth(out, "--seed 7 --meta");
    Dataset *ds = dataset_open(DATASET_MVTEC, out, SPLIT_TEST, NULL);
    cr_assert_not_null(ds, "%s", err_msg());
    cr_assert_eq(ds->n_classes, 3);
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(ds->classes[c].n_normal, 3);
        cr_assert_eq(ds->classes[c].n_anomalous, 4);
        cr_assert_eq(ds->classes[c].n_masks, 4);
        int found = 0;
        for (int k = 2; k < 5; k++) found |= !strcmp(ds->classes[c].name, synth_class_name(k));
        cr_assert(found, "class %s is not one of table entries 2..4", ds->classes[c].name);
    }
    for (int i = 0; i < ds->n_samples; i++) {
        const Sample *s = &ds->samples[i];
        int w, h, ch;
        uint8_t *img = read_png(s->image_path, &w, &h, &ch);
        cr_assert_eq(w, 48);
        cr_assert_eq(h, 48);
        cr_assert_eq(ch, 3);
        free(img);
        if (!s->label) {
            cr_assert_null(s->mask_path);
            cr_assert_str_eq(s->defect, "good");
            continue;
        }
        int mw, mh, mch, on = 0;
        uint8_t *mask = read_png(s->mask_path, &mw, &mh, &mch);
        cr_assert_eq(mw, w, "%s: mask width %d vs image %d", s->mask_path, mw, w);
        cr_assert_eq(mh, h);
        cr_assert_eq(mch, 1, "%s: mask is not single-channel", s->mask_path);
        for (int p = 0; p < mw * mh; p++) {
            cr_assert(mask[p] == 0 || mask[p] == 255);
            on += mask[p] != 0;
        }
        cr_assert(on > 0, "%s: empty mask", s->mask_path);
        free(mask);
    }
    // no ground truth for good images
    for (int c = 0; c < 3; c++) {
        char gt[4096];
        snprintf(gt, sizeof gt, "%s/%s/ground_truth/good", out, ds->classes[c].name);
        cr_assert(!fs_exists(gt), "%s exists", gt);
    }
    Dataset *train = dataset_open(DATASET_MVTEC, out, SPLIT_TRAIN, NULL);
    cr_assert_not_null(train, "%s", err_msg());
    cr_assert_eq(train->n_samples, 6);
    // meta.json lists the same test samples
    Dataset *meta = dataset_open(DATASET_META, out, SPLIT_TEST, NULL);
    cr_assert_not_null(meta, "%s", err_msg());
    cr_assert_eq(meta->n_samples, ds->n_samples);
    for (int i = 0; i < ds->n_samples; i++) cr_assert_str_eq(meta->samples[i].image_path, ds->samples[i].image_path);
    dataset_free(meta);
    dataset_free(train);
    dataset_free(ds);
    tree_remove(root);
}

// Compares every file the reader lists (images and masks) in two generated trees.
static int trees_identical(const char *a, const char *b) {
    Dataset *da = dataset_open(DATASET_MVTEC, a, SPLIT_TEST, NULL), *db = dataset_open(DATASET_MVTEC, b, SPLIT_TEST, NULL);
    cr_assert(da && db, "%s", err_msg());
    cr_assert_eq(da->n_samples, db->n_samples);
    int same = 1;
    for (int i = 0; i < da->n_samples; i++)
        for (int m = 0; m < 2; m++) {
            const char *pa = m ? da->samples[i].mask_path : da->samples[i].image_path;
            const char *pb = m ? db->samples[i].mask_path : db->samples[i].image_path;
            if (!pa) continue;
            size_t na, nb;
            uint8_t *x = slurp(pa, &na), *y = slurp(pb, &nb);
            same &= na == nb && !memcmp(x, y, na);
            free(x);
            free(y);
        }
    dataset_free(da);
    dataset_free(db);
    return same;
}

Test(synth, output_is_deterministic_for_a_seed_and_thread_count) {
    char *root = tree_tmpdir();
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(c, sizeof c, "%s/c", root);
    setenv("OMP_NUM_THREADS", "2", 1);
    run_synth(a, "--seed 11");
    setenv("OMP_NUM_THREADS", "1", 1);
    run_synth(b, "--seed 11");
    run_synth(c, "--seed 12");
    cr_assert(trees_identical(a, b), "same seed, different bytes");
    cr_assert(!trees_identical(a, c), "seeds 11 and 12 gave identical trees");
    tree_remove(root);
}

Test(synth, visa_layout_with_csv_jpeg_images_and_index_masks) {
    char *root = tree_tmpdir();
    char out[4096];
    snprintf(out, sizeof out, "%s/visa", root);
    run_synth(out, "--layout visa --seed 3 --meta");
    Dataset *ds = dataset_open(DATASET_VISA, out, SPLIT_TEST, NULL);
    cr_assert_not_null(ds, "%s", err_msg());
    cr_assert_str_eq(ds->layout, "visa-csv");
    cr_assert_eq(ds->mask_rule, MASK_INDEX_NONZERO);
    cr_assert_eq(ds->n_classes, 3);
    for (int i = 0; i < ds->n_samples; i++) {
        const Sample *s = &ds->samples[i];
        size_t n;
        uint8_t *bytes = slurp(s->image_path, &n);
        cr_assert(n > 4 && bytes[0] == 0xFF && bytes[1] == 0xD8, "%s is not a JPEG", s->image_path);
        free(bytes);
        if (!s->label) continue;
        int w, h, ch, on = 0, max = 0;
        uint8_t *mask = read_png(s->mask_path, &w, &h, &ch);
        cr_assert_eq(w, 48);
        cr_assert_eq(ch, 1);
        for (int p = 0; p < w * h; p++) {
            on += mask[p] != 0;
            max = mask[p] > max ? mask[p] : max;
        }
        cr_assert(on > 0 && max >= 1 && max <= 3, "%s: %d pixels on, max index %d", s->mask_path, on, max);
        free(mask);
    }
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(ds->classes[c].n_normal, 3);
        cr_assert_eq(ds->classes[c].n_anomalous, 4);
    }
    Dataset *train = dataset_open(DATASET_VISA, out, SPLIT_TRAIN, NULL);
    cr_assert_not_null(train, "%s", err_msg());
    cr_assert_eq(train->n_samples, 6);
    dataset_free(train);
    dataset_free(ds);
    tree_remove(root);
}

Test(synth, bad_options_are_usage_errors) {
    char *root = tree_tmpdir(), *never = fs_join(root, "never"), cmd[4096];
    char past_end[64];  // a range that runs past the last built-in class
    snprintf(past_end, sizeof past_end, "--classes 3 --class-offset %d", synth_n_classes() - 2);
    const char *bad[] = {"--layout btad", "--classes 99", past_end};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "build/kanoclip synth --out '%s' %s 2>/dev/null", never, bad[i]);
        int st = system(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", bad[i]);
    }
    int st = system("build/kanoclip synth --classes 2 2>/dev/null");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    cr_assert(!fs_exists(never));
    free(never);
    tree_remove(root);
}
