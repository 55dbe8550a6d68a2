// Helpers shared by the experiment suites: run `kanoclip experiment` in-process with its stdout muted, find a
// run folder, read a file of it.
#ifndef TESTS_EXPERIMENT_TEST_UTIL_H
#define TESTS_EXPERIMENT_TEST_UTIL_H

#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/experiment.h"

// experiment_main(argc, argv) with the executor; the command prints the run folder, which the tests don't need.
__attribute__((unused)) static int experiment_run_quiet(int argc, char **argv) {
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = experiment_main(argc, argv, experiment_execute);
    fclose(stdout);
    stdout = saved;
    return rc;
}

// Runs experiments/demo.yaml shrunk to seconds (32 px, 5 classes of 6 images, 2 epochs), everything under ROOT
// (results, cache, checkpoint, data), as run.name NAME, plus extra overrides (later ones win).
__attribute__((unused)) static int experiment_run_demo(const char *root, const char *name, int n_extra,
                                                       const char *const *extra) {
    static char ov[8][512];
    const char *fmt[] = {"run.out_dir=%s/results", "cache.dir=%s/cache", "model.checkpoint=%s/ckpt",
                         "data.synthetic.out=%s/data", "data.train.root=%s/data",
                         "eval.datasets=[{name: synthetic, type: mvtec, root: %s/data}]"};
    char *argv[64];
    int n = 0, k = 0;
    argv[n++] = "experiment";
    argv[n++] = "experiments/demo.yaml";
    for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++, k++) {
        snprintf(ov[k], sizeof ov[k], fmt[i], root);
        argv[n++] = ov[k];
    }
    snprintf(ov[k], sizeof ov[k], "run.name=%s", name);
    argv[n++] = ov[k++];
    static const char *tiny[] = {"model.image_size=32", "data.synthetic.image_size=32", "eval.image_size=32",
                                 "data.synthetic.classes=5", "data.synthetic.train_classes=3",
                                 "data.synthetic.images_per_class=6", "train.epochs=2", "train.log_every=1",
                                 "report.plots=false", "report.tables=false", "eval.pixel_bins=1024", "--quiet"};
    for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) argv[n++] = (char *)tiny[i];
    for (int i = 0; i < n_extra && n < 63; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return experiment_run_quiet(n, argv);
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
