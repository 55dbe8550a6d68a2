// kanoclip plots RUN_DIR... --out DIR
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/report/plots.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kanoclip plots RUN_DIR... --out DIR\n"
    "  RUN_DIR may be a glob such as results/*/: folders that are not finished runs (no DONE) are skipped\n"
    "  ROC curves per dataset, per-class bars, the ablation chart and loss curves as PNG and PDF\n"
    "  (gnuplot, scripts in plots/), their data files in DIR/data/, and DIR/figures.tex\n";

int cmd_plots(int argc, char **argv) {
    const char *out = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); free(dirs); return 0; }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { fprintf(stderr, "kanoclip plots: --out needs a folder\n"); free(dirs); return 2; }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "kanoclip plots: unknown option '%s'\n", argv[i]);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0 || !out) { free(dirs); return cli_usage_error(usage_text); }
    const char *gnuplot = plots_find_gnuplot();
    if (!gnuplot) {
        fprintf(stderr, "kanoclip: gnuplot not found on PATH; install it (apt-get install gnuplot-nox) to make plots "
                        "(kanoclip tables works without it)\n");
        free(dirs);
        return 1;
    }
    RunResult *runs = NULL;
    int rc = 0, loaded = 0, figures = 0;
    if (run_results_load_finished((char *const *)dirs, n, "kanoclip plots", stderr, &runs, &loaded) < 0)
        rc = fail_with_error();
    if (rc == 0 && plots_write(runs, loaded, out, gnuplot, &figures) < 0) rc = fail_with_error();
    if (rc == 0) printf("%d figures from %d runs in %s\n", figures, loaded, out);
    for (int i = 0; i < loaded; i++) run_result_free(&runs[i]);
    free(runs);
    free(dirs);
    return rc;
}
