// kanoclip tables RUN_DIR... [--out DIR] [--paper FILE.csv]
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/report/tables.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kanoclip tables RUN_DIR... [--out DIR] [--paper experiments/paper_numbers.csv]\n"
    "  RUN_DIR may be a glob such as results/*/: folders that are not finished runs (no DONE) are skipped\n"
    "  writes table1_industrial, table2_medical, table3_ablation, table4_metrics and per_class_<dataset>\n"
    "  as .md, .csv and .tex (booktabs) into DIR (default: results/tables)\n";

int cmd_tables(int argc, char **argv) {
    const char *out = "results/tables", *paper_path = NULL;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); free(dirs); return 0; }
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--paper")) {
            if (i + 1 >= argc) { fprintf(stderr, "kanoclip tables: %s needs a value\n", argv[i]); free(dirs); return 2; }
            if (!strcmp(argv[i], "--out")) out = argv[++i];
            else paper_path = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "kanoclip tables: unknown option '%s'\n", argv[i]);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0) { free(dirs); return cli_usage_error(usage_text); }
    RunResult *runs = NULL;
    int rc = 0, loaded = 0;
    if (run_results_load_finished((char *const *)dirs, n, "kanoclip tables", stderr, &runs, &loaded) < 0)
        rc = fail_with_error();
    PaperNumbers paper = {0};
    if (rc == 0 && paper_path && paper_numbers_load(paper_path, &paper) < 0) rc = fail_with_error();
    int files = 0;
    if (rc == 0 && tables_write(runs, loaded, paper_path ? &paper : NULL, out, &files) < 0) rc = fail_with_error();
    if (rc == 0) printf("%d files from %d runs in %s\n", files, loaded, out);
    for (int i = 0; i < loaded; i++) run_result_free(&runs[i]);
    paper_numbers_free(&paper);
    free(runs);
    free(dirs);
    return rc;
}
