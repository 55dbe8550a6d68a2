// kanoclip grid GRID.yaml [--run] [--slurm OUT.sh] [--status] [--refreeze]
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/run/grid.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: kanoclip grid GRID.yaml [--run] [--slurm OUT.sh] [--status] [--refreeze]\n"
    "  expands the grid into frozen cells (<out>/grid-<name>/cells.tsv) and lists them with their state\n"
    "  (done, running, failed, pending);\n"
    "  --run runs the cells not yet done, one after another, then writes the tables;\n"
    "  --slurm writes a script that submits the cells not yet done as a Slurm array plus an afterok tables job\n"
    "          (with cache.shards N > 1, an array of N feature shard tasks first, which the cells wait for);\n"
    "  --status counts the cells by state and names the logs of the failed ones;\n"
    "  --refreeze replaces frozen cells after the grid or its configs changed\n";

// Runs `exe args...` in a child process; its exit status (128+signal when killed).
static int run_child(const char *exe, char *const *args) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return err_set("fork failed"), 255;
    if (pid == 0) {
        execv(exe, args);
        fprintf(stderr, "kanoclip grid: cannot run %s\n", exe);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return 255;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_cells(Grid *g) {
    const char *exe = grid_self_exe();
    int n = grid_n_cells(g), done = 0, failed = 0, ran = 0;
    if (grid_feature_shards(g) > 1)
        printf("grid %s: cache.shards %d: here the first cell that needs a feature cache makes it, in one process "
               "(or from the shard files a --slurm submission left)\n", grid_name(g), grid_feature_shards(g));
    for (int i = 0; i < n; i++) {
        const GridCell *c = grid_cell(g, i);
        if (grid_cell_state(c) == 2) { done++; continue; }
        printf("[cell %d/%d] kanoclip experiment %s\n", i + 1, n, c->cell_config);
        char *args[] = {(char *)exe, "experiment", c->cell_config, NULL};
        int rc = run_child(exe, args);
        ran++;
        if (rc == 0 && grid_cell_state(c) == 2) done++;
        else {
            failed++;
            printf("[cell %d/%d] failed (exit %d); rerun `kanoclip grid ... --run` to resume it\n", i + 1, n, rc);
        }
    }
    printf("grid %s: %d cells, %d done, %d ran now, %d failed\n", grid_name(g), n, done, ran, failed);
    if (failed) return 1;
    // Every cell is done: the tables, through the same binary.
    char **args = calloc((size_t)n + 8, sizeof *args);
    int k = 0;
    args[k++] = (char *)exe;
    args[k++] = "tables";
    for (int i = 0; i < n; i++) args[k++] = grid_cell(g, i)->run_dir;
    args[k++] = "--out";
    char *tables = fs_join(grid_dir(g), "tables");
    args[k++] = tables;
    // the paper's numbers beside ours, as a run's own report does (harness/run/experiment_exec.c)
    if (fs_exists("experiments/paper_numbers.csv")) args[k++] = "--paper", args[k++] = "experiments/paper_numbers.csv";
    int rc = run_child(exe, args);
    free(tables);
    free(args);
    return rc == 0 ? 0 : 1;
}

// One line per cell; with logs, where a failed cell's logs are.
static void list_cells(const Grid *g, int logs) {
    int n = grid_n_cells(g), count[4] = {0};
    for (int i = 0; i < n; i++) {
        const GridCell *c = grid_cell(g, i);
        GridCellStatus st = grid_cell_status(g, i);
        count[st]++;
        printf("  %4d  %-7s  %s  %s%s%s%s%s%s%s\n", i, grid_cell_status_name(st), c->run_dir, c->config,
               *c->dataset ? "  dataset=" : "", c->dataset, *c->seed ? "  seed=" : "", c->seed,
               *c->overrides ? "  " : "", c->overrides);
        if (logs && st == CELL_FAILED) {
            char *slurm_log = grid_cell_slurm_log(g, i), *run_log = fs_join(c->run_dir, "log.txt");
            printf("        logs:");
            if (fs_exists(run_log)) printf(" %s", run_log);
            if (fs_exists(slurm_log)) printf(" %s", slurm_log);
            if (!fs_exists(run_log) && !fs_exists(slurm_log)) printf(" none (the cell stopped before it began a run)");
            printf("\n");
            free(slurm_log);
            free(run_log);
        }
    }
    if (logs)
        printf("grid %s: %d cells: %d done, %d running, %d failed, %d pending\n", grid_name(g), n, count[CELL_DONE],
               count[CELL_RUNNING], count[CELL_FAILED], count[CELL_PENDING]);
    // A failed feature shard cancels the cells waiting for it: they stay pending, and this says why.
    for (int s = 0; logs && s < grid_feature_shards(g); s++) {
        char *failed = grid_features_slurm_file(g, s, "failed"), *out = grid_features_slurm_file(g, s, "out");
        if (fs_exists(failed))
            printf("feature shard %d failed (the cells waiting for it were cancelled); its output: %s\n", s, out);
        free(failed);
        free(out);
    }
}

int cmd_grid(int argc, char **argv) {
    const char *path = NULL, *slurm = NULL;
    int run = 0, refreeze = 0, status = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); return 0; }
        else if (!strcmp(argv[i], "--run")) run = 1;
        else if (!strcmp(argv[i], "--refreeze")) refreeze = 1;
        else if (!strcmp(argv[i], "--status")) status = 1;
        else if (!strcmp(argv[i], "--slurm")) {
            if (i + 1 >= argc) { fprintf(stderr, "kanoclip grid: --slurm needs a file name\n"); return 2; }
            slurm = argv[++i];
        } else if (argv[i][0] == '-') { fprintf(stderr, "kanoclip grid: unknown option '%s'\n", argv[i]); return 2; }
        else if (!path) path = argv[i];
        else { fprintf(stderr, "kanoclip grid: more than one grid file\n"); return 2; }
    }
    if (!path) return cli_usage_error(usage_text);
    if (status && (run || slurm)) { fprintf(stderr, "kanoclip grid: --status goes alone (not with --run or --slurm)\n"); return 2; }
    Grid *g = grid_load(path);
    if (!g) return fail_with_error();
    int rc = 0;
    // --status too: it must read the cells that were submitted, not a grid edited since.
    if (grid_freeze(g, refreeze) < 0) rc = fail_with_error();
    if (rc == 0 && !status) printf("grid %s: %d cells frozen in %s/cells.tsv\n", grid_name(g), grid_n_cells(g), grid_dir(g));
    if (rc == 0 && !run) list_cells(g, status);
    if (rc == 0 && slurm) {
        const char *exe = grid_self_exe();
        int n_submitted = 0;
        if (grid_write_slurm(g, slurm, exe, &n_submitted) < 0) rc = fail_with_error();
        else printf("wrote %s: %d of %d cells to run (submit with: bash %s)\n", slurm, n_submitted, grid_n_cells(g), slurm);
    }
    if (rc == 0 && run) rc = run_cells(g);
    grid_free(g);
    return rc;
}
