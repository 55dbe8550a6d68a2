// Metrics against scikit-learn and scipy (tests/ref_metrics.py writes build/fixtures/metrics/):
// image AUROC/AP/F1-max to 1e-9; pixel metrics and AUPRO (MVTec exact, AnomalyCLIP 200-threshold) within
// 1e-4 and within the binning bound the code reports; 8-connected regions equal to scipy.ndimage.label;
// degenerate inputs; the `kanoclip metrics` command end to end.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "metrics/metrics.h"

#define FIX "build/fixtures/metrics/"

static cJSON *load_json(const char *path) {
    char *text = fs_read_file(path, NULL);
    cr_assert_not_null(text, "%s (run make fixtures)", err_msg());
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

static size_t json_arrays(const cJSON *c, double **scores, uint8_t **labels) {
    const cJSON *s = cJSON_GetObjectItem(c, "scores"), *l = cJSON_GetObjectItem(c, "labels");
    size_t n = (size_t)cJSON_GetArraySize(s);
    *scores = malloc(n * sizeof **scores);
    *labels = malloc(n);
    for (size_t i = 0; i < n; i++) {
        (*scores)[i] = cJSON_GetArrayItem(s, (int)i)->valuedouble;
        (*labels)[i] = (uint8_t)cJSON_GetArrayItem(l, (int)i)->valueint;
    }
    return n;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "key %s is not a number", k);
    return v->valuedouble;
}

// ---- image level -------------------------------------------------------------------------------------

Test(metrics_image, matches_sklearn_with_ties_and_imbalance) {
    cJSON *cases = load_json(FIX "image_cases.json");
    int n_cases = 0, n_tied = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        double *scores;
        uint8_t *labels;
        size_t n = json_arrays(c, &scores, &labels);
        image_metrics m;
        cr_assert_eq(image_metrics_compute(&m, scores, labels, n), 0, "%s", err_msg());
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        cr_assert(m.auroc.defined && m.ap.defined && m.f1_max.defined);
        cr_assert_float_eq(m.auroc.value, jnum(c, "auroc"), 1e-9, "%s auroc %.12f vs %.12f", name, m.auroc.value, jnum(c, "auroc"));
        cr_assert_float_eq(m.ap.value, jnum(c, "ap"), 1e-9, "%s ap %.12f vs %.12f", name, m.ap.value, jnum(c, "ap"));
        cr_assert_float_eq(m.f1_max.value, jnum(c, "f1_max"), 1e-9, "%s f1 %.12f vs %.12f", name, m.f1_max.value, jnum(c, "f1_max"));
        int64_t p = 0;
        for (size_t i = 0; i < n; i++) p += labels[i];
        cr_assert_eq(m.n_pos, p);
        cr_assert_eq(m.n_neg, (int64_t)n - p);
        n_tied += jnum(c, "n_distinct") < (double)n / 4;
        n_cases++;
        free(scores);
        free(labels);
    }
    cr_assert_geq(n_cases, 30);
    cr_assert_geq(n_tied, 10, "the cases must include heavy ties");
    cJSON_Delete(cases);
}

Test(metrics_image, bootstrap_interval_matches_numpy_bootstrap) {
    cJSON *ref = load_json(FIX "bootstrap.json");
    double *scores;
    uint8_t *labels;
    size_t n = json_arrays(ref, &scores, &labels);
    auroc_interval a, b, c;
    cr_assert_eq(image_auroc_bootstrap(&a, scores, labels, n, 4000, 123, 1), 0, "%s", err_msg());
    cr_assert(a.lo.defined && a.hi.defined);
    // Both are Monte-Carlo estimates of the same percentiles (4000 resamples each): agree to ~5 sd.
    cr_assert_float_eq(a.lo.value, jnum(ref, "lo"), 0.012, "lo %f vs numpy %f", a.lo.value, jnum(ref, "lo"));
    cr_assert_float_eq(a.hi.value, jnum(ref, "hi"), 0.012, "hi %f vs numpy %f", a.hi.value, jnum(ref, "hi"));
    cr_assert(a.lo.value < jnum(ref, "auroc") && jnum(ref, "auroc") < a.hi.value);
    // Seeded: same seed, same interval; another seed, another one.
    cr_assert_eq(image_auroc_bootstrap(&b, scores, labels, n, 4000, 123, 1), 0);
    cr_assert(a.lo.value == b.lo.value && a.hi.value == b.hi.value);
    cr_assert_eq(image_auroc_bootstrap(&c, scores, labels, n, 4000, 124, 1), 0);
    cr_assert(a.lo.value != c.lo.value || a.hi.value != c.hi.value);
    // Unstratified resampling estimates nearly the same interval here (a quarter positives).
    cr_assert_eq(image_auroc_bootstrap(&c, scores, labels, n, 4000, 5, 0), 0);
    cr_assert_float_eq(c.lo.value, a.lo.value, 0.02);
    cr_assert_float_eq(c.hi.value, a.hi.value, 0.02);
    cr_assert_eq(c.n_skipped, 0);
    free(scores);
    free(labels);
    cJSON_Delete(ref);
}

Test(metrics_image, bootstrap_skips_one_class_resamples) {
    double s[4] = {0.9, 0.2, 0.3, 0.1};
    uint8_t l[4] = {1, 0, 0, 0};
    auroc_interval ci;
    cr_assert_eq(image_auroc_bootstrap(&ci, s, l, 4, 500, 9, 0), 0);
    // P(no positive among 4 draws) = (3/4)^4 = 0.32: about 160 of 500 skipped.
    cr_assert(ci.n_skipped > 100 && ci.n_skipped < 230, "skipped %d", ci.n_skipped);
    cr_assert(ci.lo.defined);
    cr_assert_eq(image_auroc_bootstrap(&ci, s, l, 4, 500, 9, 1), 0);
    cr_assert_eq(ci.n_skipped, 0);
    cr_assert_float_eq(ci.lo.value, 1.0, 1e-12); // the positive always outranks every negative
}

Test(metrics_image, one_label_is_null_with_reason_and_nan_is_an_error) {
    double s[3] = {0.1, 0.5, 0.5};
    uint8_t ones[3] = {1, 1, 1}, mixed[3] = {0, 1, 0}, bad[3] = {0, 2, 1};
    image_metrics m;
    cr_assert_eq(image_metrics_compute(&m, s, ones, 3), 0);
    cr_assert(!m.auroc.defined && !m.ap.defined && !m.f1_max.defined);
    cr_assert(strstr(m.auroc.why_null, "one label") != NULL);
    cJSON *j = image_metrics_json(&m);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "auroc")));
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "null_reasons"), "auroc")));
    cJSON_Delete(j);
    cr_assert_eq(image_metrics_compute(&m, s, mixed, 0), 0);
    cr_assert(!m.auroc.defined);
    s[2] = NAN;
    cr_assert_eq(image_metrics_compute(&m, s, mixed, 3), -1);
    cr_assert(strstr(err_msg(), "item 2") && strstr(err_msg(), "NaN"), "%s", err_msg());
    s[2] = 0.3;
    cr_assert_eq(image_metrics_compute(&m, s, bad, 3), -1);
    cr_assert(strstr(err_msg(), "item 1"), "%s", err_msg());
}

// ---- regions -----------------------------------------------------------------------------------------

typedef struct {
    int n, h, w;
    float *maps;     // (n, h, w)
    uint8_t *masks;  // (n, h, w)
    int32_t *labels; // (n, h, w) scipy.ndimage.label, 8-connected
} pixel_case;

static pixel_case load_case(const char *path) {
    pixel_case c = {0};
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "%s: cannot open (run make fixtures)", path);
    hsize_t dims[3];
    cr_assert_geq(H5LTget_dataset_info(f, "maps", dims, NULL, NULL), 0);
    c.n = (int)dims[0], c.h = (int)dims[1], c.w = (int)dims[2];
    size_t npix = (size_t)c.n * c.h * c.w;
    c.maps = malloc(npix * sizeof *c.maps);
    c.masks = malloc(npix);
    c.labels = malloc(npix * sizeof *c.labels);
    cr_assert_geq(H5LTread_dataset_float(f, "maps", c.maps), 0);
    cr_assert_geq(H5LTread_dataset(f, "masks", H5T_NATIVE_UINT8, c.masks), 0);
    cr_assert_geq(H5LTread_dataset_int(f, "labels8", c.labels), 0);
    H5Fclose(f);
    return c;
}

static double attr(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double v = NAN;
    cr_assert_geq(H5LTget_attribute_double(f, "/", name, &v), 0, "%s: attribute %s", path, name);
    H5Fclose(f);
    return v;
}

static void free_case(pixel_case *c) { free(c->maps); free(c->masks); free(c->labels); }

Test(metrics_regions, equal_scipy_label_8_connectivity) {
    const char *names[] = {"continuous", "ties", "shifted", "coarse_ties"};
    int total = 0;
    for (int k = 0; k < 4; k++) {
        char path[256];
        snprintf(path, sizeof path, FIX "pixel_%s.h5", names[k]);
        pixel_case c = load_case(path);
        size_t hw = (size_t)c.h * c.w;
        int32_t *labels = malloc(hw * sizeof *labels), *parent = malloc((hw + 1) * sizeof *parent);
        int64_t *sizes = malloc((hw + 1) * sizeof *sizes);
        for (int i = 0; i < c.n; i++) {
            int n = regions_label8(c.masks + i * hw, c.h, c.w, labels, parent, sizes);
            total += n;
            int64_t sum = 0;
            for (int r = 0; r <= n; r++) sum += sizes[r];
            cr_assert_eq(sum, (int64_t)hw);
            for (size_t p = 0; p < hw; p++)
                cr_assert_eq(labels[p], c.labels[i * hw + p], "%s image %d pixel %zu: %d vs scipy %d", names[k], i, p,
                             labels[p], c.labels[i * hw + p]);
        }
        cr_assert_eq(total > 0, 1);
        free(labels); free(parent); free(sizes);
        free_case(&c);
    }
    // A diagonal chain and a U shape: one region each under 8-connectivity (4 would give more).
    uint8_t m[5 * 5] = {1, 0, 0, 0, 1,
                        0, 1, 0, 0, 1,
                        0, 0, 1, 0, 1,
                        1, 0, 0, 0, 1,
                        1, 1, 1, 1, 1};
    int32_t lab[25], par[26];
    int64_t sz[26];
    cr_assert_eq(regions_label8(m, 5, 5, lab, par, sz), 2);
    cr_assert_eq(sz[1], 3); // the diagonal, first in raster order
    cr_assert_eq(sz[2], 10);
}

// ---- pixel level -------------------------------------------------------------------------------------

static pixel_metrics run_pixels(const pixel_case *c, int bins, int from, int to) {
    float lo = INFINITY, hi = -INFINITY;
    size_t npix = (size_t)c->n * c->h * c->w;
    for (size_t i = 0; i < npix; i++) { lo = fminf(lo, c->maps[i]); hi = fmaxf(hi, c->maps[i]); }
    pixel_acc *acc = pixel_acc_create(lo, hi, bins);
    cr_assert_not_null(acc, "%s", err_msg());
    size_t hw = (size_t)c->h * c->w;
    for (int i = from; i < to; i++)
        cr_assert_eq(pixel_acc_add(acc, "case", c->maps + i * hw, c->h, c->w, c->masks + i * hw, c->h, c->w), 0, "%s", err_msg());
    pixel_metrics m;
    pixel_acc_compute(acc, &m);
    pixel_acc_free(acc);
    return m;
}

static void check_within(const char *what, double got, double want, double bound, double tol) {
    double err = fabs(got - want);
    cr_assert(err <= bound + 1e-12, "%s: |%.10f - %.10f| = %.3g exceeds the reported bound %.3g", what, got, want, err, bound);
    cr_assert(err <= tol, "%s: |%.10f - %.10f| = %.3g > %g", what, got, want, err, tol);
}

Test(metrics_pixel, match_sklearn_and_mvtec_aupro_within_bound) {
    const char *names[] = {"continuous", "ties", "shifted", "coarse_ties"};
    for (int k = 0; k < 4; k++) {
        char path[256];
        snprintf(path, sizeof path, FIX "pixel_%s.h5", names[k]);
        pixel_case c = load_case(path);
        pixel_metrics m = run_pixels(&c, PIXEL_BINS_DEFAULT, 0, c.n);
        cr_assert(m.auroc.defined && m.ap.defined && m.f1_max.defined && m.aupro.defined && m.aupro_ac200.defined);
        check_within("auroc", m.auroc.value, attr(path, "auroc"), m.auroc_err_bound, 1e-4);
        check_within("ap", m.ap.value, attr(path, "ap"), m.ap_err_bound, 1e-4);
        check_within("f1_max", m.f1_max.value, attr(path, "f1_max"), m.f1_max_err_bound, 1e-4);
        check_within("aupro", m.aupro.value, attr(path, "aupro"), m.aupro_err_bound, 1e-4);
        cr_assert_float_eq(m.aupro_ac200.value, attr(path, "aupro_ac200"), 1e-4, "%s aupro_ac200 %.8f vs %.8f", names[k],
                           m.aupro_ac200.value, attr(path, "aupro_ac200"));
        cr_assert_eq(m.n_regions, (int64_t)attr(path, "n_regions"));
        cr_assert_eq(m.n_pos + m.n_neg, (int64_t)c.n * c.h * c.w);
        // Quantised scores: every bin holds one distinct score, so the result is exact.
        if (strstr(names[k], "ties")) {
            cr_assert_eq(m.auroc_err_bound, 0);
            cr_assert_float_eq(m.auroc.value, attr(path, "auroc"), 1e-12);
            cr_assert_float_eq(m.aupro.value, attr(path, "aupro"), 1e-12);
        }
        free_case(&c);
    }
}

Test(metrics_pixel, coarse_bins_stay_within_the_reported_bound) {
    const char *path = FIX "pixel_continuous.h5";
    pixel_case c = load_case(path);
    int some_error = 0;
    for (int bins = 16; bins <= 4096; bins *= 4) {
        pixel_metrics m = run_pixels(&c, bins, 0, c.n);
        cr_assert(m.auroc_err_bound > 0 && m.ap_err_bound > 0 && m.aupro_err_bound > 0, "bins %d: bounds must be live", bins);
        check_within("auroc", m.auroc.value, attr(path, "auroc"), m.auroc_err_bound, 1);
        check_within("ap", m.ap.value, attr(path, "ap"), m.ap_err_bound, 1);
        check_within("f1_max", m.f1_max.value, attr(path, "f1_max"), m.f1_max_err_bound, 1);
        check_within("aupro", m.aupro.value, attr(path, "aupro"), m.aupro_err_bound, 1);
        some_error |= fabs(m.auroc.value - attr(path, "auroc")) > 1e-6;
    }
    cr_assert(some_error, "coarse bins should move AUROC measurably (else the check above is vacuous)");
    free_case(&c);
}

Test(metrics_pixel, streaming_in_parts_and_merging_equals_one_pass) {
    pixel_case c = load_case(FIX "pixel_continuous.h5");
    size_t hw = (size_t)c.h * c.w;
    pixel_acc *a = pixel_acc_create(-3, 3, 1 << 16), *b = pixel_acc_create(-3, 3, 1 << 16), *all = pixel_acc_create(-3, 3, 1 << 16);
    for (int i = 0; i < c.n; i++) {
        cr_assert_eq(pixel_acc_add(i < 6 ? a : b, "x", c.maps + i * hw, c.h, c.w, c.masks + i * hw, c.h, c.w), 0);
        cr_assert_eq(pixel_acc_add(all, "x", c.maps + i * hw, c.h, c.w, c.masks + i * hw, c.h, c.w), 0);
    }
    cr_assert_eq(pixel_acc_merge(a, b), 0);
    pixel_metrics ma, mall;
    pixel_acc_compute(a, &ma);
    pixel_acc_compute(all, &mall);
    cr_assert_eq(ma.auroc.value, mall.auroc.value);
    cr_assert_eq(ma.ap.value, mall.ap.value);
    cr_assert_eq(ma.aupro.value, mall.aupro.value);
    cr_assert_eq(ma.aupro_err_bound, mall.aupro_err_bound);
    cr_assert_eq(ma.n_regions, mall.n_regions);
    pixel_acc_reset(all);
    pixel_acc_compute(all, &mall);
    cr_assert(!mall.auroc.defined && mall.n_images == 0);
    pixel_acc_free(a); pixel_acc_free(b); pixel_acc_free(all);
    free_case(&c);
}

Test(metrics_pixel, degenerate_inputs) {
    enum { H = 6, W = 7 };
    float map[H * W];
    uint8_t none[H * W] = {0}, full[H * W];
    for (int i = 0; i < H * W; i++) { map[i] = (float)(i % 5) / 5.0f; full[i] = 1; }
    pixel_acc *acc = pixel_acc_create(0, 1, 1024);
    pixel_metrics m;
    cr_assert_eq(pixel_acc_add(acc, "normal.png", map, H, W, none, H, W), 0);
    pixel_acc_compute(acc, &m);
    cr_assert(!m.auroc.defined && !m.ap.defined && !m.f1_max.defined && !m.aupro.defined && !m.aupro_ac200.defined);
    cr_assert(strstr(m.auroc.why_null, "no anomalous") && strstr(m.aupro.why_null, "regions"), "%s / %s", m.auroc.why_null, m.aupro.why_null);
    cJSON *j = pixel_metrics_json(&m);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "aupro")));
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "null_reasons"), "aupro")));
    cJSON_Delete(j);
    pixel_acc_reset(acc);
    cr_assert_eq(pixel_acc_add(acc, "all_bad.png", map, H, W, full, H, W), 0);
    pixel_acc_compute(acc, &m);
    cr_assert(!m.auroc.defined && !m.aupro.defined && m.n_regions == 1);
    // Size mismatch names the item and both sizes; nothing is added.
    cr_assert_eq(pixel_acc_add(acc, "bottle/003.png", map, H, W, full, W, H), -1);
    cr_assert(strstr(err_msg(), "bottle/003.png") && strstr(err_msg(), "6x7") && strstr(err_msg(), "7x6"), "%s", err_msg());
    map[9] = NAN;
    cr_assert_eq(pixel_acc_add(acc, "bottle/004.png", map, H, W, full, H, W), -1);
    cr_assert(strstr(err_msg(), "bottle/004.png") && strstr(err_msg(), "NaN") && strstr(err_msg(), "y=1, x=2"), "%s", err_msg());
    map[9] = 1.5f;
    cr_assert_eq(pixel_acc_add(acc, "bottle/005.png", map, H, W, full, H, W), -1);
    cr_assert(strstr(err_msg(), "bottle/005.png") && strstr(err_msg(), "outside"), "%s", err_msg());
    pixel_acc_compute(acc, &m);
    cr_assert_eq(m.n_images, 1);
    pixel_acc_free(acc);
    cr_assert_null(pixel_acc_create(1, 1, 16));
    cr_assert_null(pixel_acc_create(0, 1, 1));
}

Test(metrics_mean, unweighted_over_defined_classes) {
    image_metrics_mean mean = {0};
    image_metrics a = {.auroc = {0.9, 1, NULL}, .ap = {0.8, 1, NULL}, .f1_max = {0.5, 1, NULL}, .n_pos = 10, .n_neg = 90};
    image_metrics b = {.auroc = {0.5, 1, NULL}, .ap = {0.4, 1, NULL}, .f1_max = {0.3, 1, NULL}, .n_pos = 1, .n_neg = 1};
    image_metrics c = {.auroc = {NAN, 0, "one label"}, .ap = {NAN, 0, "one label"}, .f1_max = {NAN, 0, "x"}, .n_pos = 0, .n_neg = 5};
    image_metrics_mean_add(&mean, &a);
    image_metrics_mean_add(&mean, &b);
    image_metrics_mean_add(&mean, &c);
    metric_value v = metric_mean_value(&mean.auroc);
    cr_assert(v.defined);
    cr_assert_float_eq(v.value, 0.7, 1e-15); // not weighted by counts, null class left out
    cr_assert_eq(mean.auroc.n_defined, 2);
    cr_assert_eq(mean.auroc.n_total, 3);
    metric_mean empty = {0};
    cr_assert(!metric_mean_value(&empty).defined);
}

// ---- the command ---------------------------------------------------------------------------------------

// Runs a shell command; returns its exit status, stdout in *out (malloc'd), stderr in *err.
static int run(const char *cmd, char **out, char **err) {
    char errfile[] = "/tmp/kanoclip-metrics-err-XXXXXX";
    int fd = mkstemp(errfile);
    cr_assert_geq(fd, 0);
    close(fd);
    char full[2048];
    snprintf(full, sizeof full, "%s 2>%s", cmd, errfile);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    *err = fs_read_file(errfile, NULL);
    unlink(errfile);
    return WEXITSTATUS(st);
}

Test(metrics_command, scores_csv_end_to_end) {
    char *out, *err;
    int rc = run("build/kanoclip metrics --scores " FIX "scores.csv --bootstrap 500 --seed 3", &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    cJSON *got = cJSON_Parse(out), *want = load_json(FIX "scores.json");
    cr_assert_not_null(got, "not JSON: %s", out);
    const char *keys[] = {"auroc", "ap", "f1_max"};
    for (int k = 0; k < 3; k++) cr_assert_float_eq(jnum(got, keys[k]), jnum(want, keys[k]), 1e-9, "%s", keys[k]);
    cr_assert_eq(jnum(got, "n_pos"), jnum(want, "n_pos"));
    cr_assert_eq(jnum(got, "n_neg"), jnum(want, "n_neg"));
    const cJSON *ci = cJSON_GetObjectItem(got, "auroc_ci95");
    cr_assert(cJSON_GetArraySize(ci) == 2);
    cr_assert(cJSON_GetArrayItem(ci, 0)->valuedouble < jnum(got, "auroc") && jnum(got, "auroc") < cJSON_GetArrayItem(ci, 1)->valuedouble);
    cJSON_Delete(got); cJSON_Delete(want); free(out); free(err);
}

static void expect_csv_error(const char *content, const char *needle) {
    char path[] = "/tmp/kanoclip-metrics-XXXXXX.csv";
    int fd = mkstemps(path, 4);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    char cmd[512], *out, *err;
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --scores %s", path);
    int rc = run(cmd, &out, &err);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err, path) && strstr(err, needle), "stderr '%s' should name %s and '%s'", err, path, needle);
    cr_assert(strchr(err, '\n') == err + strlen(err) - 1, "one line: '%s'", err);
    unlink(path);
    free(out); free(err);
}

Test(metrics_command, bad_csv_names_file_line_and_field) {
    expect_csv_error("1,0.5\n0,0.2\n", ":1: expected the header 'label,score'");
    expect_csv_error("", ":1: empty file");
    expect_csv_error("label,score\n1,0.5\n0,zero\n", ":3: field 'score': 'zero' is not a number");
    expect_csv_error("label,score\n1,0.5\n2,0.1\n", ":3: field 'label': '2' is not 0 or 1");
    expect_csv_error("label,score\n1,0.5\n0,nan\n", ":3: field 'score': 'nan' is not a finite number");
    expect_csv_error("label,score\n1,0.5\n0\n", ":3: expected 2 fields, got 1");
}

Test(metrics_command, maps_h5_per_class_and_mean) {
    char *out, *err;
    int rc = run("build/kanoclip metrics --maps " FIX "classes.h5", &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    cJSON *got = cJSON_Parse(out);
    cr_assert_not_null(got);
    const cJSON *classes = cJSON_GetObjectItem(got, "classes");
    cr_assert_eq(cJSON_GetArraySize(classes), 2);
    const cJSON *bottle = cJSON_GetObjectItem(classes, "bottle"), *wood = cJSON_GetObjectItem(classes, "wood");
    cr_assert(bottle && wood);
    const cJSON *pb = cJSON_GetObjectItem(bottle, "pixel"), *ib = cJSON_GetObjectItem(bottle, "image");
    cr_assert_float_eq(jnum(pb, "auroc"), attr(FIX "pixel_continuous.h5", "auroc"), 1e-4);
    cr_assert_float_eq(jnum(pb, "aupro"), attr(FIX "pixel_continuous.h5", "aupro"), 1e-4);
    cr_assert_float_eq(jnum(ib, "auroc"), attr(FIX "pixel_continuous.h5", "image_auroc"), 1e-9);
    cr_assert_float_eq(jnum(ib, "ap"), attr(FIX "pixel_continuous.h5", "image_ap"), 1e-9);
    cr_assert_float_eq(jnum(ib, "f1_max"), attr(FIX "pixel_continuous.h5", "image_f1_max"), 1e-9);
    const cJSON *mean = cJSON_GetObjectItem(got, "mean");
    const char *pk[] = {"auroc", "ap", "f1_max", "aupro", "aupro_ac200"};
    for (int k = 0; k < 5; k++) {
        char name[64];
        snprintf(name, sizeof name, "mean_%s", pk[k]);
        cr_assert_float_eq(jnum(cJSON_GetObjectItem(mean, "pixel"), pk[k]), attr(FIX "classes.h5", name), 1e-4, "%s", pk[k]);
    }
    cr_assert_float_eq(jnum(cJSON_GetObjectItem(mean, "image"), "auroc"), attr(FIX "classes.h5", "mean_image_auroc"), 1e-9);
    cJSON_Delete(got); free(out); free(err);
    // Variable-length UTF-8 class names (h5py's default for str) group the same way.
    rc = run("build/kanoclip metrics --maps " FIX "classes_vlen.h5", &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    got = cJSON_Parse(out);
    mean = cJSON_GetObjectItem(got, "mean");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "classes")), 2);
    cr_assert_float_eq(jnum(cJSON_GetObjectItem(mean, "pixel"), "aupro"), attr(FIX "classes.h5", "mean_aupro"), 1e-4);
    cJSON_Delete(got); free(out); free(err);
}

Test(metrics_command, maps_h5_errors_name_the_item) {
    char dir[] = "/tmp/kanoclip-metrics-h5-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char maps[300], masks[300], cmd[800], *out, *err;
    snprintf(maps, sizeof maps, "%s/maps.h5", dir);
    snprintf(masks, sizeof masks, "%s/masks.h5", dir);
    float m[2 * 3 * 4];
    uint8_t k[2 * 4 * 3] = {0};
    for (int i = 0; i < 24; i++) m[i] = (float)i;
    k[5] = 1;
    hsize_t dm[3] = {2, 3, 4}, dk[3] = {2, 4, 3};
    hid_t f = H5Fcreate(maps, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5LTmake_dataset_float(f, "maps", 3, dm, m);
    H5Fclose(f);
    f = H5Fcreate(masks, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5LTmake_dataset(f, "masks", 3, dk, H5T_NATIVE_UINT8, k);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps %s --masks %s", maps, masks);
    cr_assert_neq(run(cmd, &out, &err), 0);
    cr_assert(strstr(err, "maps[0]") && strstr(err, "3x4") && strstr(err, "4x3"), "%s", err);
    free(out); free(err);
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps %s", maps);
    cr_assert_neq(run(cmd, &out, &err), 0);
    cr_assert(strstr(err, "maps.h5") && strstr(err, "masks"), "%s", err);
    free(out); free(err);
    // NaN in the second map: named by index and pixel.
    m[12 + 5] = NAN;
    dk[1] = 3, dk[2] = 4;
    f = H5Fcreate(maps, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5LTmake_dataset_float(f, "maps", 3, dm, m);
    H5LTmake_dataset(f, "masks", 3, dk, H5T_NATIVE_UINT8, k);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps %s", maps);
    cr_assert_neq(run(cmd, &out, &err), 0);
    cr_assert(strstr(err, "maps[1]") && strstr(err, "NaN") && strstr(err, "y=1, x=1"), "%s", err);
    free(out); free(err);
    // Optional labels and scores datasets drive the image metrics; --out writes the same JSON.
    m[12 + 5] = 0.5f;
    int labels[2] = {0, 1};
    double scores[2] = {0.9, 0.1};
    hsize_t n2 = 2;
    f = H5Fcreate(maps, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5LTmake_dataset_float(f, "maps", 3, dm, m);
    H5LTmake_dataset(f, "masks", 3, dk, H5T_NATIVE_UINT8, k);
    H5LTmake_dataset_int(f, "labels", 1, &n2, labels);
    H5LTmake_dataset_double(f, "scores", 1, &n2, scores);
    H5Fclose(f);
    char json_path[300];
    snprintf(json_path, sizeof json_path, "%s/out.json", dir);
    snprintf(cmd, sizeof cmd, "build/kanoclip metrics --maps %s --out %s", maps, json_path);
    cr_assert_eq(run(cmd, &out, &err), 0, "%s", err);
    cJSON *got = cJSON_Parse(out);
    const cJSON *img = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "classes"), "all"), "image");
    cr_assert_float_eq(jnum(img, "auroc"), 0.0, 1e-12); // the anomalous item has the lower score
    cr_assert_eq(jnum(img, "n_pos"), 1);
    const cJSON *pix = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "classes"), "all"), "pixel");
    cr_assert_eq(jnum(pix, "n_pos"), 1);
    cr_assert_eq(jnum(pix, "n_regions"), 1);
    char *written = fs_read_file(json_path, NULL);
    cr_assert_not_null(written);
    cr_assert_str_eq(written, out);
    free(written);
    cJSON_Delete(got);
    free(out); free(err);
    unlink(json_path);
    unlink(maps);
    unlink(masks);
    rmdir(dir);
}
