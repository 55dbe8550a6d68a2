// The bootstrap over images (metrics/metrics_boot.h) against scikit-learn and the MVTec AUPRO on the same
// resamples (tests/ref_metrics.py replays the C draws and writes build/fixtures/metrics/cluster_bootstrap.json):
// the draws equal; image metrics per resample to 1e-9; pixel AUROC/AP/F1-max/AUPRO per resample within 1e-4 (the
// 2^20-bin histogram's error, as the point estimates' tests); the class intervals and those of the class mean
// alike. A resample's merged runs equal the accumulator fed the resampled images directly (to rounding).
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "metrics/metrics_boot.h"

#define FIX "build/fixtures/metrics/"

typedef struct {
    int n, h, w;
    float *maps;     // (n, h, w)
    uint8_t *masks;  // (n, h, w)
    double *scores;  // (n) max of the map
    uint8_t *labels; // (n) the mask has an anomalous pixel
} class_case;

// classes.h5: 15 images of "bottle", then 15 of "wood".
static class_case load_class(int which) {
    hid_t f = H5Fopen(FIX "classes.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "classes.h5: cannot open (run make fixtures)");
    hsize_t dims[3];
    cr_assert_geq(H5LTget_dataset_info(f, "maps", dims, NULL, NULL), 0);
    size_t all = dims[0] * dims[1] * dims[2], hw = dims[1] * dims[2];
    float *maps = malloc(all * sizeof *maps);
    uint8_t *masks = malloc(all);
    cr_assert_geq(H5LTread_dataset_float(f, "maps", maps), 0);
    cr_assert_geq(H5LTread_dataset(f, "masks", H5T_NATIVE_UINT8, masks), 0);
    H5Fclose(f);
    class_case c = {.n = (int)dims[0] / 2, .h = (int)dims[1], .w = (int)dims[2]};
    c.maps = malloc(c.n * hw * sizeof *c.maps);
    c.masks = malloc(c.n * hw);
    memcpy(c.maps, maps + which * c.n * hw, c.n * hw * sizeof *c.maps);
    memcpy(c.masks, masks + which * c.n * hw, c.n * hw);
    free(maps);
    free(masks);
    c.scores = malloc(c.n * sizeof *c.scores);
    c.labels = malloc(c.n);
    for (int i = 0; i < c.n; i++) {
        float mx = -INFINITY;
        uint8_t any = 0;
        for (size_t p = 0; p < hw; p++) {
            mx = fmaxf(mx, c.maps[i * hw + p]);
            any |= c.masks[i * hw + p] != 0;
        }
        c.scores[i] = mx;
        c.labels[i] = any;
    }
    return c;
}

static void free_class(class_case *c) { free(c->maps); free(c->masks); free(c->scores); free(c->labels); }

static pixel_acc *range_acc(const class_case *c) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t p = 0; p < (size_t)c->n * c->h * c->w; p++) lo = fminf(lo, c->maps[p]), hi = fmaxf(hi, c->maps[p]);
    return pixel_acc_create(lo, hi, PIXEL_BINS_DEFAULT);
}

// The class's images added counts[i] times each (NULL: once) to a new accumulator over the class's score range.
static pixel_acc *class_acc(const class_case *c, const uint32_t *counts, int keep) {
    size_t hw = (size_t)c->h * c->w;
    pixel_acc *acc = range_acc(c);
    cr_assert_not_null(acc, "%s", err_msg());
    if (keep) pixel_acc_keep_images(acc);
    for (int i = 0; i < c->n; i++)
        for (uint32_t k = 0; k < (counts ? counts[i] : 1); k++)
            cr_assert_eq(pixel_acc_add(acc, "img", c->maps + i * hw, c->h, c->w, c->masks + i * hw, c->h, c->w), 0,
                         "%s", err_msg());
    return acc;
}

static cJSON *load_json(const char *path) {
    char *text = fs_read_file(path, NULL);
    cr_assert_not_null(text, "%s (run make fixtures)", err_msg());
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j);
    return j;
}

static double item(const cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i)->valuedouble; }

// metric names in the fixture -> BOOT_* and the tolerance per resample
static const struct { const char *name; int k; double tol; } METRICS[] = {
    {"image.auroc", BOOT_IMAGE_AUROC, 1e-9}, {"image.ap", BOOT_IMAGE_AP, 1e-9},
    {"image.f1_max", BOOT_IMAGE_F1_MAX, 1e-9}, {"pixel.auroc", BOOT_PIXEL_AUROC, 1e-4},
    {"pixel.ap", BOOT_PIXEL_AP, 1e-4}, {"pixel.f1_max", BOOT_PIXEL_F1_MAX, 1e-4},
    {"pixel.aupro", BOOT_PIXEL_AUPRO, 1e-4}};
enum { N_CHECKED = sizeof METRICS / sizeof *METRICS };

static void check_against(const char *what, const boot_samples *s, const cJSON *ref) {
    const cJSON *samples = cJSON_GetObjectItem(ref, "samples"), *ci = cJSON_GetObjectItem(ref, "ci");
    for (int m = 0; m < N_CHECKED; m++) {
        const cJSON *want = cJSON_GetObjectItem(samples, METRICS[m].name);
        cr_assert_eq(cJSON_GetArraySize(want), s->n_resamples);
        double worst = 0;
        for (int r = 0; r < s->n_resamples; r++) {
            double got = s->v[(size_t)METRICS[m].k * s->n_resamples + r];
            cr_assert(!isnan(got), "%s %s resample %d undefined", what, METRICS[m].name, r);
            worst = fmax(worst, fabs(got - item(want, r)));
        }
        cr_assert(worst <= METRICS[m].tol, "%s %s: resamples differ from sklearn by up to %g", what, METRICS[m].name, worst);
        boot_interval iv = boot_interval_of(s, METRICS[m].k);
        const cJSON *pair = cJSON_GetObjectItem(ci, METRICS[m].name);
        cr_assert(iv.lo.defined && iv.hi.defined && iv.n_used == s->n_resamples);
        cr_assert_float_eq(iv.lo.value, item(pair, 0), METRICS[m].tol, "%s %s low %.10f vs %.10f", what,
                           METRICS[m].name, iv.lo.value, item(pair, 0));
        cr_assert_float_eq(iv.hi.value, item(pair, 1), METRICS[m].tol, "%s %s high", what, METRICS[m].name);
        cr_assert(iv.lo.value < iv.hi.value, "%s %s: a real spread", what, METRICS[m].name);
    }
}

Test(metrics_boot, replays_sklearn_on_the_same_resamples) {
    cJSON *ref = load_json(FIX "cluster_bootstrap.json");
    int R = (int)cJSON_GetObjectItem(ref, "resamples")->valuedouble;
    uint64_t seed = (uint64_t)cJSON_GetObjectItem(ref, "seed")->valuedouble;
    const char *names[2] = {"bottle", "wood"};
    boot_mean mean;
    cr_assert_eq(boot_mean_init(&mean, R, seed), 0);
    for (int c = 0; c < 2; c++) {
        class_case cc = load_class(c);
        const cJSON *rc = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "classes"), names[c]);
        // The draws: the first three resamples' counts, as Python replays them.
        uint64_t state = boot_stream(seed, c);
        uint32_t counts[64];
        const cJSON *draws = cJSON_GetObjectItem(rc, "draws");
        for (int r = 0; r < 3; r++) {
            cr_assert_eq(boot_draw(&state, cc.labels, cc.n, counts), 0);
            for (int i = 0; i < cc.n; i++)
                cr_assert_eq(counts[i], (uint32_t)item(cJSON_GetArrayItem(draws, r), i), "%s resample %d image %d",
                             names[c], r, i);
        }
        pixel_acc *acc = class_acc(&cc, NULL, 1);
        boot_class bc = {.scores = cc.scores, .labels = cc.labels, .n = cc.n, .acc = acc};
        boot_samples s;
        cr_assert_eq(boot_class_resample(&s, &bc, R, seed, c), 0, "%s", err_msg());
        check_against(names[c], &s, rc);
        boot_mean_add(&mean, &s);
        boot_samples_free(&s);
        pixel_acc_free(acc);
        free_class(&cc);
    }
    boot_samples ms;
    cr_assert_eq(boot_mean_samples(&mean, &ms), 0);
    check_against("mean", &ms, cJSON_GetObjectItem(ref, "mean"));
    boot_samples_free(&ms);
    boot_mean_free(&mean);
    cJSON_Delete(ref);
}

// A resample's values equal the metrics of the resampled images computed from scratch: image metrics of the
// repeated scores, pixel metrics of a new accumulator fed each image as often as it was drawn.
Test(metrics_boot, resample_equals_direct_recompute) {
    class_case cc = load_class(0);
    pixel_acc *acc = class_acc(&cc, NULL, 1);
    boot_class bc = {.scores = cc.scores, .labels = cc.labels, .n = cc.n, .acc = acc};
    const int R = 5;
    boot_samples s;
    cr_assert_eq(boot_class_resample(&s, &bc, R, 77, 3), 0, "%s", err_msg());
    uint64_t state = boot_stream(77, 3);
    for (int r = 0; r < R; r++) {
        uint32_t counts[64];
        cr_assert_eq(boot_draw(&state, cc.labels, cc.n, counts), 0);
        double rs[256];
        uint8_t rl[256];
        size_t n = 0;
        for (int i = 0; i < cc.n; i++)
            for (uint32_t k = 0; k < counts[i]; k++) rs[n] = cc.scores[i], rl[n++] = cc.labels[i];
        cr_assert_eq(n, (size_t)cc.n);
        image_metrics im;
        cr_assert_eq(image_metrics_compute(&im, rs, rl, n), 0);
        pixel_acc *direct = class_acc(&cc, counts, 0);
        pixel_metrics pm;
        pixel_acc_compute(direct, &pm);
        pixel_acc_free(direct);
        const double want[BOOT_N_METRICS] = {im.auroc.value, im.ap.value, im.f1_max.value, pm.auroc.value, pm.ap.value,
                                             pm.f1_max.value, pm.aupro.value, pm.aupro_ac200.value,
                                             pm.aupro_ac200_f32.value};
        for (int k = 0; k < BOOT_N_METRICS; k++)
            cr_assert_float_eq(s.v[(size_t)k * R + r], want[k], 1e-12, "resample %d %s: %.15f vs direct %.15f", r,
                               boot_metric_name[k], s.v[(size_t)k * R + r], want[k]);
    }
    boot_samples_free(&s);
    // Two accumulators merged keep both runs: the same resamples as one accumulator.
    size_t hw = (size_t)cc.h * cc.w;
    pixel_acc *a = range_acc(&cc), *b = range_acc(&cc);
    pixel_acc_keep_images(a);
    pixel_acc_keep_images(b);
    for (int i = 0; i < cc.n; i++)
        cr_assert_eq(pixel_acc_add(i < 6 ? a : b, "img", cc.maps + i * hw, cc.h, cc.w, cc.masks + i * hw, cc.h, cc.w), 0);
    cr_assert_eq(pixel_acc_merge(a, b), 0, "%s", err_msg());
    boot_samples one, merged;
    cr_assert_eq(boot_class_resample(&one, &bc, 20, 5, 0), 0);
    bc.acc = a;
    cr_assert_eq(boot_class_resample(&merged, &bc, 20, 5, 0), 0, "%s", err_msg());
    for (size_t i = 0; i < (size_t)BOOT_N_METRICS * 20; i++)
        cr_assert(fabs(one.v[i] - merged.v[i]) <= 1e-12, "value %zu: %.15f vs %.15f", i, one.v[i], merged.v[i]);
    boot_samples_free(&one);
    boot_samples_free(&merged);
    pixel_acc_free(a);
    pixel_acc_free(b);
    pixel_acc_free(acc);
    free_class(&cc);
}

Test(metrics_boot, seeded_and_images_without_pixels_left_out) {
    class_case cc = load_class(1);
    pixel_acc *acc = class_acc(&cc, NULL, 1);
    boot_class bc = {.scores = cc.scores, .labels = cc.labels, .n = cc.n, .acc = acc};
    boot_samples a, b, c;
    cr_assert_eq(boot_class_resample(&a, &bc, 200, 9, 0), 0);
    cr_assert_eq(boot_class_resample(&b, &bc, 200, 9, 0), 0);
    cr_assert_eq(boot_class_resample(&c, &bc, 200, 10, 0), 0);
    cr_assert_eq(memcmp(a.v, b.v, sizeof *a.v * BOOT_N_METRICS * 200), 0, "same seed, same resamples");
    cr_assert_neq(memcmp(a.v, c.v, sizeof *a.v * BOOT_N_METRICS * 200), 0, "another seed, other resamples");
    // The point estimate lies inside each interval.
    pixel_metrics pm;
    pixel_acc_compute(acc, &pm);
    const double point[4] = {pm.auroc.value, pm.ap.value, pm.f1_max.value, pm.aupro.value};
    for (int k = 0; k < 4; k++) {
        boot_interval iv = boot_interval_of(&a, BOOT_PIXEL_AUROC + k);
        cr_assert(iv.lo.value <= point[k] && point[k] <= iv.hi.value, "%s %.4f outside [%.4f, %.4f]",
                  boot_metric_name[BOOT_PIXEL_AUROC + k], point[k], iv.lo.value, iv.hi.value);
    }
    boot_samples_free(&b);
    boot_samples_free(&c);
    // Images without pixel ground truth (acc_image -1) count in the image metrics only: with every anomalous
    // image's pixels left out, no resample has an anomalous pixel.
    int64_t map_of[64];
    for (int i = 0; i < cc.n; i++) map_of[i] = cc.labels[i] ? -1 : i;
    bc.acc_image = map_of;
    cr_assert_eq(boot_class_resample(&b, &bc, 200, 9, 0), 0);
    cr_assert_eq(memcmp(a.v, b.v, sizeof *a.v * 3 * 200), 0, "image metrics unchanged");
    boot_interval none = boot_interval_of(&b, BOOT_PIXEL_AUROC);
    cr_assert(!none.lo.defined && none.n_used == 0);
    map_of[0] = cc.n; // out of range
    cr_assert_eq(boot_class_resample(&c, &bc, 10, 9, 0), -1);
    cr_assert(strstr(err_msg(), "image 0"), "%s", err_msg());
    boot_samples_free(&a);
    boot_samples_free(&b);
    // JSON: the chosen AUPRO as pixel.aupro, metrics without a defined resample left out.
    cJSON *ci = boot_ci_json(&c, BOOT_PIXEL_AUPRO), *all = NULL;
    cJSON_Delete(ci);
    map_of[0] = -1;
    cr_assert_eq(boot_class_resample(&c, &bc, 10, 9, 0), 0);
    ci = boot_ci_json(&c, BOOT_PIXEL_AUPRO_AC200);
    cr_assert(cJSON_GetObjectItem(ci, "image.auroc") && !cJSON_GetObjectItem(ci, "pixel.auroc"));
    cJSON_Delete(ci);
    bc.acc_image = NULL;
    boot_samples_free(&c);
    cr_assert_eq(boot_class_resample(&c, &bc, 10, 9, 0), 0);
    ci = boot_ci_json(&c, BOOT_PIXEL_AUPRO_AC200);
    all = boot_ci_json(&c, -1);
    cr_assert_eq(cJSON_GetArraySize(ci), 7, "image 3 + pixel auroc, ap, f1_max, aupro");
    cr_assert_float_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(ci, "pixel.aupro"), 0)->valuedouble,
                       cJSON_GetArrayItem(cJSON_GetObjectItem(all, "pixel.aupro_ac200"), 0)->valuedouble, 0);
    cr_assert_eq(cJSON_GetArraySize(all), BOOT_N_METRICS);
    cJSON_Delete(ci);
    cJSON_Delete(all);
    boot_samples_free(&c);
    pixel_acc_free(acc);
    free_class(&cc);
}

// The mean over classes: a class whose metric no resample defines is left out; where a counted class is undefined
// in a resample, so is the mean.
Test(metrics_boot, mean_over_classes) {
    boot_samples a, b, c;
    cr_assert_eq(boot_samples_init(&a, 3, 0), 0);
    cr_assert_eq(boot_samples_init(&b, 3, 0), 0);
    cr_assert_eq(boot_samples_init(&c, 3, 0), 0);
    for (int r = 0; r < 3; r++) a.v[r] = 0.5 + r * 0.1, b.v[r] = 0.9;
    b.v[2] = NAN;
    boot_mean m;
    cr_assert_eq(boot_mean_init(&m, 3, 0), 0);
    boot_mean_add(&m, &a);
    boot_mean_add(&m, &b);
    boot_mean_add(&m, &c); // defines nothing
    boot_samples out;
    cr_assert_eq(boot_mean_samples(&m, &out), 0);
    cr_assert_float_eq(out.v[0], 0.7, 1e-15);
    cr_assert_float_eq(out.v[1], 0.75, 1e-15);
    cr_assert(isnan(out.v[2]));
    boot_interval iv = boot_interval_of(&out, BOOT_IMAGE_AUROC);
    cr_assert_eq(iv.n_used, 2);
    cr_assert_float_eq(iv.lo.value, 0.7 + 0.025 * 0.05, 1e-12);
    cJSON *info = boot_info_json(&out, BOOT_PIXEL_AUPRO);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(info, "undefined_resamples"), "image.auroc")->valueint, 1);
    cJSON_Delete(info);
    boot_samples_free(&a); boot_samples_free(&b); boot_samples_free(&c); boot_samples_free(&out);
    boot_mean_free(&m);
}

// ---- the command ---------------------------------------------------------------------------------------------

static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0)
        if ((n += got) + 1 >= cap) buf = realloc(buf, cap *= 2);
    buf[n] = '\0';
    *out = buf;
    return WEXITSTATUS(pclose(p));
}

// `kanoclip metrics --maps --bootstrap` on the classes file: the same intervals as scikit-learn on the same
// resamples, per class and of the mean, "ci" beside "image" and "pixel".
Test(metrics_boot, command_maps_bootstrap_matches_sklearn) {
    cJSON *ref = load_json(FIX "cluster_bootstrap.json");
    char cmd[512], *out;
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps " FIX "classes.h5 --bootstrap %d --seed %d 2>&1",
             (int)cJSON_GetObjectItem(ref, "resamples")->valuedouble, (int)cJSON_GetObjectItem(ref, "seed")->valuedouble);
    cr_assert_eq(run(cmd, &out), 0, "%s", out);
    cJSON *got = cJSON_Parse(out);
    cr_assert_not_null(got, "%s", out);
    const char *where[3][2] = {{"classes", "bottle"}, {"classes", "wood"}, {"mean", NULL}};
    for (int w = 0; w < 3; w++) {
        const cJSON *g = cJSON_GetObjectItem(got, where[w][0]), *r = cJSON_GetObjectItem(ref, where[w][0]);
        if (where[w][1]) g = cJSON_GetObjectItem(g, where[w][1]), r = cJSON_GetObjectItem(r, where[w][1]);
        const cJSON *gci = cJSON_GetObjectItem(g, "ci"), *rci = cJSON_GetObjectItem(r, "ci");
        cr_assert_not_null(gci, "%s: no ci", where[w][1] ? where[w][1] : "mean");
        for (int m = 0; m < N_CHECKED; m++) {
            const cJSON *a = cJSON_GetObjectItem(gci, METRICS[m].name), *b = cJSON_GetObjectItem(rci, METRICS[m].name);
            cr_assert_not_null(a, "%s", METRICS[m].name);
            for (int e = 0; e < 2; e++)
                cr_assert_float_eq(item(a, e), item(b, e), METRICS[m].tol, "%s %s: %.8f vs %.8f",
                                   where[w][1] ? where[w][1] : "mean", METRICS[m].name, item(a, e), item(b, e));
        }
        cr_assert_not_null(cJSON_GetObjectItem(gci, "pixel.aupro_ac200"));
    }
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "bootstrap"), "resamples")->valueint,
                 (int)cJSON_GetObjectItem(ref, "resamples")->valuedouble);
    cJSON_Delete(got);
    free(out);
    cJSON_Delete(ref);
    // --unstratified is for --scores; --range needs LO < HI and a score outside it is named.
    cr_assert_eq(run("build/kanoclip metrics --maps " FIX "classes.h5 --bootstrap 5 --unstratified 2>&1", &out), 2);
    cr_assert(strstr(out, "--unstratified goes with --scores"), "%s", out);
    free(out);
    cr_assert_eq(run("build/kanoclip metrics --maps " FIX "classes.h5 --range 1,0 2>&1", &out), 2);
    cr_assert(strstr(out, "--range: '1,0'"), "%s", out);
    free(out);
    cr_assert_neq(run("build/kanoclip metrics --maps " FIX "classes.h5 --range 0,0.5 2>&1", &out), 0);
    cr_assert(strstr(out, "outside the declared range [0, 0.5]"), "%s", out);
    free(out);
}

// has_mask 0 leaves an image out of the pixel metrics (an anomalous image without ground truth), not out of the
// image metrics.
Test(metrics_boot, command_has_mask_leaves_images_out_of_pixel_metrics) {
    char path[] = "/tmp/kanoclip-hasmask-XXXXXX.h5";
    int fd = mkstemps(path, 3);
    cr_assert_geq(fd, 0);
    close(fd);
    float maps[3 * 2 * 2] = {0.1f, 0.2f, 0.3f, 0.4f, 0.9f, 0.1f, 0.2f, 0.3f, 0.8f, 0.7f, 0.1f, 0.2f};
    uint8_t masks[3 * 2 * 2] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    int labels[3] = {0, 1, 1}, has[3] = {1, 1, 0};
    hsize_t dm[3] = {3, 2, 2}, dn = 3;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5LTmake_dataset_float(f, "maps", 3, dm, maps);
    H5LTmake_dataset(f, "masks", 3, dm, H5T_NATIVE_UINT8, masks);
    H5LTmake_dataset_int(f, "labels", 1, &dn, labels);
    H5LTmake_dataset_int(f, "has_mask", 1, &dn, has);
    H5Fclose(f);
    char cmd[300], *out;
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps %s 2>&1", path);
    cr_assert_eq(run(cmd, &out), 0, "%s", out);
    cJSON *got = cJSON_Parse(out);
    const cJSON *all = cJSON_GetObjectItem(cJSON_GetObjectItem(got, "classes"), "all");
    const cJSON *img = cJSON_GetObjectItem(all, "image"), *pix = cJSON_GetObjectItem(all, "pixel");
    cr_assert_eq(cJSON_GetObjectItem(img, "n_pos")->valueint, 2, "both anomalous images in the image metrics");
    cr_assert_eq(cJSON_GetObjectItem(pix, "n_images")->valueint, 2, "the third image's pixels are left out");
    cr_assert_eq(cJSON_GetObjectItem(pix, "n_neg")->valueint, 7);
    cr_assert_float_eq(cJSON_GetObjectItem(pix, "auroc")->valuedouble, 1.0, 1e-12); // 0.9 tops the 7 normal pixels
    cJSON_Delete(got);
    free(out);
    unlink(path);
}
