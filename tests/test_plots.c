// kanoclip plots: PNG and PDF figures from fixture runs when gnuplot is present; a one-line message and exit 1
// when it is not.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "tmpdir.h"
#include "common/fsutil.h"
#include "harness/cli/commands.h"
#include "harness/report/plots.h"
#include "report_fixtures.h"

static char dir[64], run_a[256], run_b[256], out[256];

static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-plots-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *ds[] = {"visa"};
    snprintf(run_a, sizeof run_a, "%s/results/a", dir);
    snprintf(run_b, sizeof run_b, "%s/results/b", dir);
    snprintf(out, sizeof out, "%s/figures", dir);
    fixture_run(run_a, "kanoclip", "KAnoCLIP", "ablation", 0, 111, 1, ds, 0.90, 0.95, 1, 0);
    fixture_run(run_b, "kanoclip", "w/o KD", "ablation", 1, 111, 1, ds, 0.85, 0.93, 0, 0);
}
static void teardown(void) { tmpdir_remove(dir); }
TestSuite(plots, .init = setup, .fini = teardown);

static void assert_magic(const char *name, const char *magic, size_t n) {
    char *p = fs_join(out, name);
    size_t size = 0;
    char *bytes = fs_read_file(p, &size);
    cr_assert_not_null(bytes, "%s was not produced", p);
    cr_assert(size > 1000 && !memcmp(bytes, magic, n), "%s is not a real %s file (%zu bytes)", p, name, size);
    free(bytes);
    free(p);
}

Test(plots, figures_from_runs) {
    if (!plots_find_gnuplot()) cr_skip_test("gnuplot is not installed");
    cr_redirect_stdout();
    char run_b_slash[300];
    snprintf(run_b_slash, sizeof run_b_slash, "%s/", run_b);  // as $(dir ...) in a Makefile gives it
    char *argv[] = {"plots", run_a, run_b_slash, "--out", out};
    cr_assert_eq(cmd_plots(5, argv), 0, "%s", err_msg());
    const char *names[] = {"roc_visa", "per_class_visa", "ablation", "loss_a", "loss_b"};
    for (int i = 0; i < 5; i++) {
        char png[64], pdf[64];
        snprintf(png, sizeof png, "%s.png", names[i]);
        snprintf(pdf, sizeof pdf, "%s.pdf", names[i]);
        assert_magic(png, "\x89PNG\r\n\x1a\n", 8);
        assert_magic(pdf, "%PDF-", 5);
    }
    char *roc = fs_join(out, "data/roc_visa.dat");
    char *text = fs_read_file(roc, NULL);
    cr_assert(strstr(text, "\"fpr\" \"KAnoCLIP\"\n0.000000 ") && strstr(text, "\n\n\n\"fpr\" \"w/o KD\"\n"),
              "two blocks, one per run: %s", text);
    free(text);
    free(roc);
    char *bars = fs_join(out, "data/per_class_visa.dat");
    text = fs_read_file(bars, NULL);
    cr_assert(strstr(text, "\"class\" \"KAnoCLIP\" \"w/o KD\"\n\"bottle\" 90.0000 85.0000\n"), "%s", text);
    free(text);
    free(bars);
    char *abl = fs_join(out, "data/ablation.dat");
    text = fs_read_file(abl, NULL);
    cr_assert(strstr(text, "\"KAnoCLIP\" 90.0000 95.0000\n\"w/o KD\" 85.0000 93.0000\n"), "%s", text);
    free(text);
    free(abl);
    char *tex = fs_join(out, "figures.tex");
    text = fs_read_file(tex, NULL);
    cr_assert(strstr(text, "\\includegraphics[width=0.75\\linewidth]{\\figdir/roc_visa.pdf}"), "%s", text);
    free(text);
    free(tex);
}

Test(plots, missing_gnuplot_is_one_clear_line) {
    char err[256];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    cr_assert_not_null(freopen(err, "w", stderr));
    setenv("PATH", "/nonexistent-bin", 1);
    char *argv[] = {"plots", run_a, "--out", out};
    cr_assert_eq(cmd_plots(4, argv), 1);
    fflush(stderr);
    char *text = fs_read_file(err, NULL);
    cr_assert(!strncmp(text, "kanoclip: gnuplot not found on PATH", 35), "%s", text);
    cr_assert(strstr(text, "tables works without it") && strchr(text, '\n') == text + strlen(text) - 1,
              "one line: %s", text);
    free(text);
}

Test(plots, bad_roc_file_names_the_file) {
    if (!plots_find_gnuplot()) cr_skip_test("gnuplot is not installed");
    cr_redirect_stdout();
    cr_redirect_stderr();
    fixture_write(run_a, "roc_visa.csv", "x,y\n0,0\n");
    char *argv[] = {"plots", run_a, "--out", out};
    cr_assert_eq(cmd_plots(4, argv), 1);
    cr_assert(strstr(err_msg(), "results/a/roc_visa.csv: expected the header fpr,tpr"), "%s", err_msg());
    char *argv2[] = {"plots", run_a};
    cr_assert_eq(cmd_plots(2, argv2), 2, "--out is required");
}
