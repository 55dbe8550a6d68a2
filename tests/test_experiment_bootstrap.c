// eval.bootstrap through a grid (two seeds of the shrunk demo, eval.bootstrap=200, eval.save_maps=true): every
// cell's metrics.json has intervals of every metric, per dataset and per class, that hold the point estimates;
// bootstrap_<dataset>.csv holds the resamples those intervals come from; `kanoclip metrics --maps` on the run's
// saved maps, with the run's range, bins and bootstrap seed, gives the same numbers and intervals; the grid's
// tables show the two seeds' mean±sd with the interval of their mean, paired by resample.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/cli/commands.h"
#include "harness/run/log.h"
#include "metrics/metrics_boot.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static char tmp[64];

static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-boot-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
}
static void teardown(void) { tmpdir_remove(tmp); }
TestSuite(experiment_bootstrap, .init = setup, .fini = teardown, .timeout = 300);

enum { R = 200, SEED = 7 };
static const char *const METRIC[7] = {"image.auroc", "image.ap", "image.f1_max", "pixel.auroc",
                                      "pixel.aupro", "pixel.ap", "pixel.f1_max"};

static const cJSON *at(const cJSON *o, const char *dotted) {  // "image.auroc" -> o.image.auroc
    char part[32];
    const char *dot = strchr(dotted, '.');
    snprintf(part, sizeof part, "%.*s", (int)(dot - dotted), dotted);
    return cJSON_GetObjectItem(cJSON_GetObjectItem(o, part), dot + 1);
}

// Every metric's interval in o.ci holds o's value (within rounding).
static void check_intervals(const cJSON *o, const char *where) {
    const cJSON *ci = cJSON_GetObjectItem(o, "ci");
    cr_assert_not_null(ci, "%s: no ci", where);
    for (int k = 0; k < 7; k++) {
        const cJSON *v = at(o, METRIC[k]), *iv = cJSON_GetObjectItem(ci, METRIC[k]);
        cr_assert(cJSON_IsNumber(v), "%s: no %s", where, METRIC[k]);
        cr_assert(cJSON_GetArraySize(iv) == 2, "%s: ci.%s is not [low, high]", where, METRIC[k]);
        double lo = cJSON_GetArrayItem(iv, 0)->valuedouble, hi = cJSON_GetArrayItem(iv, 1)->valuedouble;
        cr_assert(lo <= v->valuedouble + 1e-12 && v->valuedouble <= hi + 1e-12, "%s: %s %.4f outside [%.4f, %.4f]",
                  where, METRIC[k], v->valuedouble, lo, hi);
    }
}

static char *run_out(const char *cmd) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0)
        if ((n += got) + 1 >= cap) buf = realloc(buf, cap *= 2);
    buf[n] = '\0';
    cr_assert_eq(WEXITSTATUS(pclose(p)), 0, "%s:\n%s", cmd, buf);
    return buf;
}

// bootstrap_<dataset>.csv: R rows of the class mean's metrics, column k+1 = METRIC[k].
static double *read_resamples(const char *dir) {
    char *text = read_in(dir, "bootstrap_synthetic.csv", NULL);
    double *v = malloc(sizeof *v * R * 7);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    cr_assert_str_eq(line, "resample,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,pixel_f1_max");
    int r = 0;
    for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), r++) {
        cr_assert_lt(r, R);
        char *p = strchr(line, ',');
        for (int k = 0; k < 7; k++, p = strchr(p + 1, ',')) v[r * 7 + k] = strtod(p + 1, NULL);
    }
    cr_assert_eq(r, R);
    free(text);
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(double *v, int n, double *lo, double *hi) {
    qsort(v, n, sizeof *v, cmp_double);
    *lo = boot_percentile_sorted(v, n, 2.5);
    *hi = boot_percentile_sorted(v, n, 97.5);
}

static int run_grid(const char *grid_path, char **log) {
    char out[256];
    snprintf(out, sizeof out, "%s/out.txt", tmp);
    fflush(stdout);
    fflush(stderr);
    int out_fd = dup(1), err_fd = dup(2);
    FILE *o = fopen(out, "w");
    dup2(fileno(o), 1);
    dup2(fileno(o), 2);
    char *argv[] = {"grid", (char *)grid_path, "--run"};
    int rc = cmd_grid(3, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    close(out_fd);
    close(err_fd);
    fclose(o);
    *log = fs_read_file(out, NULL);
    return rc;
}

Test(experiment_bootstrap, grid_cells_carry_intervals_that_the_saved_maps_reproduce) {
    char abs_demo[PATH_MAX], bin[PATH_MAX];
    cr_assert_not_null(realpath("experiments/demo.yaml", abs_demo));
    cr_assert_not_null(realpath("build/kanoclip", bin), "build/kanoclip is built by make test");
    setenv("KANOCLIP_BIN", bin, 1);
    char text[8192], *p = text;
    p += sprintf(p, "name: boot\nout: %s/results\nconfigs: [%s]\nseeds: [111, 222]\ncommon:\n", tmp, abs_demo);
    for (size_t i = 0; i < N_DEMO_PATHS; i++) {
        p += sprintf(p, "  - '");
        p += sprintf(p, DEMO_PATH_FMT[i], tmp);
        p += sprintf(p, "'\n");
    }
    for (size_t i = 0; i < N_DEMO_TINY; i++) p += sprintf(p, "  - '%s'\n", DEMO_TINY[i]);
    p += sprintf(p, "  - 'eval.overlays=0'\n  - 'eval.bootstrap=%d'\n  - 'eval.bootstrap_seed=%d'\n"
                    "  - 'eval.save_maps=true'\n", R, SEED);
    char grid_path[256];
    snprintf(grid_path, sizeof grid_path, "%s/boot.yaml", tmp);
    cr_assert_eq(fs_write_atomic(grid_path, text, strlen(text)), 0, "%s", err_msg());
    char *log = NULL;
    int rc = run_grid(grid_path, &log);
    cr_assert_eq(rc, 0, "%s\n%s", err_msg(), log);
    cr_assert(strstr(log, "grid boot: 2 cells, 2 done"), "%s", log);
    free(log);

    double *res[2];
    for (int cell = 0; cell < 2; cell++) {
        char pat[300];
        snprintf(pat, sizeof pat, "%s/results/grid-boot/cells.tsv", tmp);
        char *tsv = fs_read_file(pat, NULL), *save = NULL, *dir = NULL;
        for (char *l = strtok_r(tsv, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            if (strncmp(l, cell ? "1\t" : "0\t", 2)) continue;
            char *f = strchr(strchr(l, '\t') + 1, '\t') + 1;  // index, cell config, run folder
            dir = strndup(f, strcspn(f, "\t"));
        }
        free(tsv);
        cr_assert_not_null(dir, "cell %d not in cells.tsv", cell);
        char *mj = read_in(dir, "metrics.json", NULL);
        cJSON *m = cJSON_Parse(mj), *d = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "datasets"), "synthetic");
        free(mj);
        check_intervals(d, "synthetic");
        const cJSON *cls;
        int n_classes = 0;
        cJSON_ArrayForEach(cls, cJSON_GetObjectItem(d, "classes")) {
            check_intervals(cls, cls->string);
            n_classes++;
        }
        cr_assert_eq(n_classes, 2);
        const cJSON *info = cJSON_GetObjectItem(d, "bootstrap");
        cr_assert_eq(cJSON_GetObjectItem(info, "resamples")->valueint, R);
        cr_assert_eq(cJSON_GetObjectItem(info, "seed")->valueint, SEED);
        // The resamples file gives the dataset's intervals.
        res[cell] = read_resamples(dir);
        for (int k = 0; k < 7; k++) {
            double v[R], lo, hi;
            for (int r = 0; r < R; r++) v[r] = res[cell][r * 7 + k];
            percentiles(v, R, &lo, &hi);
            const cJSON *iv = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "ci"), METRIC[k]);
            cr_assert_float_eq(lo, cJSON_GetArrayItem(iv, 0)->valuedouble, 1e-12, "%s", METRIC[k]);
            cr_assert_float_eq(hi, cJSON_GetArrayItem(iv, 1)->valuedouble, 1e-12, "%s", METRIC[k]);
        }
        // The saved maps through `kanoclip metrics` with the run's range, bins and bootstrap: the same numbers.
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s metrics --maps %s/maps_synthetic.h5 --range 0,1 --bins 1024 --bootstrap %d "
                 "--seed %d", bin, dir, R, SEED);
        char *out = run_out(cmd);
        cJSON *g = cJSON_Parse(out);
        cr_assert_not_null(g, "%s", out);
        const cJSON *gm = cJSON_GetObjectItem(g, "mean");
        for (int k = 0; k < 7; k++) {
            cr_assert_float_eq(at(gm, METRIC[k])->valuedouble, at(d, METRIC[k])->valuedouble, 1e-12, "%s", METRIC[k]);
            for (int e = 0; e < 2; e++)
                cr_assert_float_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(gm, "ci"), METRIC[k]), e)->valuedouble,
                                   cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "ci"), METRIC[k]), e)->valuedouble,
                                   1e-12, "ci %s", METRIC[k]);
        }
        cJSON_ArrayForEach(cls, cJSON_GetObjectItem(d, "classes")) {
            const cJSON *gc = cJSON_GetObjectItem(cJSON_GetObjectItem(g, "classes"), cls->string);
            cr_assert_not_null(gc, "%s missing from kanoclip metrics", cls->string);
            for (int k = 0; k < 7; k++)
                cr_assert_float_eq(at(gc, METRIC[k])->valuedouble, at(cls, METRIC[k])->valuedouble, 1e-12, "%s %s",
                                   cls->string, METRIC[k]);
        }
        cJSON_Delete(g);
        free(out);
        cJSON_Delete(m);
        free(dir);
    }
    // The grid's tables: the two seeds' mean±sd and the interval of their mean, paired by resample.
    double v[R], lo, hi;
    for (int r = 0; r < R; r++) v[r] = (res[0][r * 7] + res[1][r * 7]) / 2;
    percentiles(v, R, &lo, &hi);
    char tdir[300];
    snprintf(tdir, sizeof tdir, "%s/results/grid-boot/tables", tmp);
    char *csv = read_in(tdir, "table4_metrics.csv", NULL), want[128];
    snprintf(want, sizeof want, ",I-AUROC,");
    char *row = strstr(csv, want);
    cr_assert_not_null(row, "%s", csv);
    double mean, sd, clo, chi;
    int n;
    cr_assert_eq(sscanf(row + strlen(want), "%lf,%lf,%d,%lf,%lf", &mean, &sd, &n, &clo, &chi), 5, "%s", row);
    cr_assert_eq(n, 2);
    cr_assert_float_eq(clo, lo * 100, 0.0051, "paired low %.4f vs %.4f", clo, lo * 100);
    cr_assert_float_eq(chi, hi * 100, 0.0051, "paired high %.4f vs %.4f", chi, hi * 100);
    free(csv);
    char *md = read_in(tdir, "table4_metrics.md", NULL);
    cr_assert(strstr(md, "±") && strstr(md, "95% bootstrap interval"), "%s", md);
    free(md);
    free(res[0]);
    free(res[1]);
}
