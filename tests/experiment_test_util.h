// Helpers shared by the experiment suites: run `kanoclip experiment` in-process with its stdout muted, find a
// run folder, read a file of it.
#ifndef TESTS_EXPERIMENT_TEST_UTIL_H
#define TESTS_EXPERIMENT_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/run/experiment.h"

// experiment_main(argc, argv) with the executor; the command prints the run folder, which the tests don't need.
__attribute__((unused)) static int experiment_run_quiet(int argc, char **argv) {
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = experiment_main(argc, argv, experiment_execute);
    fclose(stdout);
    stdout = saved;
    return rc;
}

// experiments/demo.yaml shrunk to seconds, as key=value overrides: its folders under one root (formats taking
// the root; the checkpoint a tiny random CLIP generated there, not the shipped models/tiny-clip) and the tiny sizes
// (32 px, 5 classes of 6 images, 2 epochs). Shared by the runs and the grids.
static const char *const DEMO_PATH_FMT[] = {"run.out_dir=%s/results", "cache.dir=%s/cache", "model.checkpoint=%s/ckpt",
                                            "model.random.enabled=true",
                                            "data.synthetic.out=%s/data", "data.train.root=%s/data",
                                            "eval.datasets=[{name: synthetic, type: mvtec, root: %s/data}]"};
static const char *const DEMO_TINY[] = {"model.image_size=32", "data.synthetic.image_size=32", "eval.image_size=32",
                                        "data.synthetic.classes=5", "data.synthetic.train_classes=3",
                                        "data.synthetic.images_per_class=6", "train.epochs=2", "train.log_every=1",
                                        "report.plots=false", "report.tables=false", "eval.pixel_bins=1024"};
#define N_DEMO_PATHS (sizeof DEMO_PATH_FMT / sizeof *DEMO_PATH_FMT)
#define N_DEMO_TINY (sizeof DEMO_TINY / sizeof *DEMO_TINY)

// The shrunk demo's arguments after argv[0..start): experiments/demo.yaml, its folders under ROOT, run.name NAME
// and the tiny sizes; ov holds the formatted overrides. Returns the count so far (the caller adds the rest).
__attribute__((unused)) static int demo_argv(char **argv, int start, char ov[][512], const char *root,
                                             const char *name) {
    int n = start, k = 0;
    argv[n++] = "experiments/demo.yaml";
    for (size_t i = 0; i < N_DEMO_PATHS; i++, k++) {
        snprintf(ov[k], sizeof ov[k], DEMO_PATH_FMT[i], root);
        argv[n++] = ov[k];
    }
    snprintf(ov[k], sizeof ov[k], "run.name=%s", name);
    argv[n++] = ov[k];
    for (size_t i = 0; i < N_DEMO_TINY; i++) argv[n++] = (char *)DEMO_TINY[i];
    return n;
}

// Runs the shrunk demo with everything under ROOT, as run.name NAME, plus extra overrides (later ones win).
__attribute__((unused)) static int experiment_run_demo(const char *root, const char *name, int n_extra,
                                                       const char *const *extra) {
    static char ov[N_DEMO_PATHS + 1][512];
    char *argv[64];
    argv[0] = "experiment";
    int n = demo_argv(argv, 1, ov, root, name);
    argv[n++] = "--quiet";
    for (int i = 0; i < n_extra && n < 63; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return experiment_run_quiet(n, argv);
}

// The number at o.a.b.c(.d) of a parsed metrics.json (d may be NULL); fails the test when it is missing.
__attribute__((unused)) static double json_num(cJSON *o, const char *a, const char *b, const char *c, const char *d) {
    const char *path[4] = {a, b, c, d};
    for (int i = 0; i < 4 && path[i]; i++) {
        o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
        cr_assert_not_null(o, "metrics.json: no %s", path[i]);
    }
    cr_assert(cJSON_IsNumber(o), "metrics.json: %s.%s.%s.%s is not a number", a, b, c, d ? d : "");
    return o->valuedouble;
}

// The run folder ROOT/results/NAME-* (exactly one), malloc'd.
__attribute__((unused)) static char *run_folder_in(const char *root, const char *name) {
    char pat[256];
    snprintf(pat, sizeof pat, "%s/results/%s-*", root, name);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no run folder %s", pat);
    cr_assert_eq(g.gl_pathc, 1, "%zu run folders match %s", g.gl_pathc, pat);
    char *dir = strdup(g.gl_pathv[0]);
    globfree(&g);
    return dir;
}

// DIR/NAME's bytes (NUL-terminated, malloc'd); *len gets the size when len is given.
__attribute__((unused)) static char *read_in(const char *dir, const char *name, size_t *len) {
    char *p = fs_join(dir, name);
    size_t n = 0;
    char *text = fs_read_file(p, &n);
    cr_assert_not_null(text, "%s: %s", p, err_msg());
    free(p);
    if (len) *len = n;
    return text;
}

#endif
