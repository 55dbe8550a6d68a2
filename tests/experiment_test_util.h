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
