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
#include "common/strbuf.h"
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
    // one block per run; the key names the pooled curve's area and the class mean the tables report
    cr_assert(strstr(text, "\"fpr\" \"KAnoCLIP: pooled AUC ") && strstr(text, ", class mean 90.0\"\n0.000000 ") &&
                  strstr(text, "\n\n\n\"fpr\" \"w/o KD: pooled AUC "), "two blocks, one per run: %s", text);
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

// Names from configs and folders reach LaTeX escaped (captions) or made safe (file stems, \label); long labels are
// shortened around "…"; a class name no installed font can draw is written as U+XXXX with a note (drawn as it is
// where a font has it); the ROC key and caption say the curve is pooled and name the class mean beside it.
Test(plots, names_are_escaped_shortened_and_drawable) {
    if (!plots_find_gnuplot()) cr_skip_test("gnuplot is not installed");
    char run[256];
    snprintf(run, sizeof run, "%s/results/run #1 50%%", dir);
    fixture_run(run, "kanoclip", "KAnoCLIP 50% & more_x", "main", 0, 111, 1, (const char *[]){"custom_ds"}, 0.6, 0.7,
                1, 0);
    // classes: a CJK name and a long one
    char *mp = fs_join(run, "metrics.json");
    char *m = fs_read_file(mp, NULL);
    cr_assert_not_null(m);
    const char *long_name = "a_very_long_class_name_that_goes_on_and_on_to_the_end";
    StrBuf b = {0};
    for (const char *p = m; *p; p++) {
        if (!strncmp(p, "\"candle\"", 8)) { strbuf_printf(&b, "\"\xe7\x93\xb6\xe5\xad\x90\""); p += 7; }
        else if (!strncmp(p, "\"pcb1\"", 6)) { strbuf_printf(&b, "\"%s\"", long_name); p += 5; }
        else strbuf_put(&b, p, 1);
    }
    fixture_write(run, "metrics.json", b.s);
    free(b.s);
    free(m);
    free(mp);
    char errp[300];
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    cr_redirect_stdout();
    FILE *saved = stderr;
    stderr = fopen(errp, "w");
    char *argv[] = {"plots", run, "--out", out};
    int rc = cmd_plots(4, argv);
    fclose(stderr);
    stderr = saved;
    char *err = fs_read_file(errp, NULL);
    cr_assert_eq(rc, 0, "%s / %s", err_msg(), err);

    char *tex = fs_join(out, "figures.tex"), *text = fs_read_file(tex, NULL);
    cr_assert(strstr(text, "\\caption{Image-level ROC curves on custom\\_ds, each pooled over the images of all "
                           "classes."), "%s", text);
    cr_assert(strstr(text, "mean of per-class AUROCs (\\%)"), "%s", text);
    cr_assert(strstr(text, "\\caption{Training losses of KAnoCLIP 50\\% \\& more\\_x.}"), "%s", text);
    cr_assert(strstr(text, "{\\figdir/loss_run--1-50-.pdf}\n") && strstr(text, "\\label{fig:loss_run--1-50-}"),
              "%s", text);
    cr_assert(strstr(text, "\\label{fig:roc_custom_ds}") && strstr(text, "\\label{fig:per_class_custom_ds}"), "%s",
              text);
    free(text);
    free(tex);
    assert_magic("loss_run--1-50-.pdf", "%PDF-", 5);

    char *bars = fs_join(out, "data/per_class_custom_ds.dat");
    text = fs_read_file(bars, NULL);
    cr_assert_not_null(text);
    cr_assert_null(strstr(text, long_name), "a long class name reaches the figure whole: %s", text);
    cr_assert(strstr(text, "\"a_very_long_class_\xe2\x80\xa6o_the_end\""), "%s", text);
    int has_font = system("fc-list -q ':charset=74f6 5b50' 2>/dev/null") == 0;
    if (has_font) {
        cr_assert(strstr(text, "\"\xe7\x93\xb6\xe5\xad\x90\""), "%s", text);
    } else {
        cr_assert(strstr(text, "\"U+74F6U+5B50\""), "%s", text);
        cr_assert(strstr(err, "no installed font draws the characters of '\xe7\x93\xb6\xe5\xad\x90'"), "%s", err);
    }
    free(text);
    free(bars);
    free(err);
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
