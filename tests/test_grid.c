// kanoclip grid: expansion into frozen cells, the Slurm script (bash -n, and run against a stand-in sbatch),
// local runs that skip finished cells, errors.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file_lock.h"
#include "tmpdir.h"
#include "common/fsutil.h"
#include "harness/cli/commands.h"
#include "harness/config/config.h"
#include "harness/run/grid.h"
#include "harness/run/run_dir.h"
#include "report_fixtures.h"

static char dir[64], grid_path[256];

static void put(const char *name, const char *text) { fixture_write(dir, name, text); }

static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-grid-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char text[1024];
    snprintf(text, sizeof text, "run:\n  name: a\n  out_dir: %s/results\nmodel:\n  checkpoint: %s/no-checkpoint\n", dir, dir);
    put("a.yaml", text);
    snprintf(text, sizeof text, "run:\n  name: b\n  out_dir: %s/results\nmodel:\n  checkpoint: %s/no-checkpoint\n", dir, dir);
    put("b.yaml", text);
    snprintf(text, sizeof text,
             "name: t\nout: %s\nconfigs: [a.yaml, b.yaml]\ndatasets: [visa, mpdd]\ncommon: [train.epochs=1]\n"
             "slurm:\n  partition: gpu\n  setup: [\"echo setting up\"]\n", dir);
    put("g.yaml", text);
    snprintf(grid_path, sizeof grid_path, "%s/g.yaml", dir);
    char bin[PATH_MAX];
    cr_assert_not_null(realpath("build/kanoclip", bin), "build/kanoclip is built by make test");
    setenv("KANOCLIP_BIN", bin, 1);
}
static void teardown(void) { tmpdir_remove(dir); }
TestSuite(grid, .init = setup, .fini = teardown);

Test(grid, two_by_two_gives_four_frozen_cells) {
    Grid *g = grid_load(grid_path);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_n_cells(g), 4);
    cr_assert_eq(grid_freeze(g, 0), 0, "%s", err_msg());
    const char *want_ds[4] = {"visa", "mpdd", "visa", "mpdd"};
    for (int i = 0; i < 4; i++) {
        const GridCell *c = grid_cell(g, i);
        cr_assert_str_eq(c->dataset, want_ds[i]);
        cr_assert(strstr(c->config, i < 2 ? "a.yaml" : "b.yaml"));
        // the frozen config composes to the same config (same hash, same run folder)
        Config *cfg = config_load(c->cell_config, NULL, 0, NULL);
        cr_assert_not_null(cfg, "%s", err_msg());
        char *rd = run_dir_for(cfg);
        cr_assert_str_eq(rd, c->run_dir);
        long epochs;
        config_get_int(cfg, "train.epochs", &epochs);
        cr_assert_eq(epochs, 1, "common overrides reach every cell");
        cr_assert_str_eq(config_list_str(cfg, "eval.datasets", 0), want_ds[i]);
        free(rd);
        config_free(cfg);
        for (int j = 0; j < i; j++) cr_assert_str_neq(grid_cell(g, j)->run_dir, c->run_dir, "cells are distinct runs");
    }
    char *tsv_path = fs_join(grid_dir(g), "cells.tsv");
    char *tsv = fs_read_file(tsv_path, NULL);
    int lines = 0;
    for (char *p = tsv; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 5, "header + 4 cells:\n%s", tsv);
    cr_assert(!strncmp(tsv, "index\tcell_config\trun_dir\tconfig\tdataset\tseed\toverrides\n", 52));
    free(tsv);
    free(tsv_path);
    cr_assert_eq(grid_freeze(g, 0), 0, "freezing the same cells again is fine");
    grid_free(g);

    // A config edited after freezing: refused unless --refreeze.
    char text[512];
    snprintf(text, sizeof text, "run:\n  name: a\n  out_dir: %s/results\ntrain:\n  lr: 0.5\n", dir);
    put("a.yaml", text);
    g = grid_load(grid_path);
    cr_assert_eq(grid_freeze(g, 0), -1);
    cr_assert(strstr(err_msg(), "changed since they were frozen"), "%s", err_msg());
    cr_assert_eq(grid_freeze(g, 1), 0, "%s", err_msg());
    grid_free(g);
}

Test(grid, seeds_and_override_sets_multiply) {
    char text[512];
    snprintf(text, sizeof text, "name: s\nout: %s\nconfigs: [a.yaml]\nseeds: [1, 2, 3]\n"
                                "overrides: [[], [train.lr=0.01, train.batch_size=2]]\n", dir);
    put("s.yaml", text);
    char p[256];
    snprintf(p, sizeof p, "%s/s.yaml", dir);
    Grid *g = grid_load(p);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_n_cells(g), 6);
    cr_assert_str_eq(grid_cell(g, 3)->seed, "2");
    cr_assert_str_eq(grid_cell(g, 3)->overrides, "train.lr=0.01 train.batch_size=2");
    grid_free(g);
    // a dataset given as {name, type, root}
    snprintf(text, sizeof text, "name: m\nout: %s\nconfigs: [a.yaml]\n"
                                "datasets: [visa, {name: my parts, type: mvtec, root: \"/data/my: \\\"parts\\\"\"}]\n", dir);
    put("m.yaml", text);
    snprintf(p, sizeof p, "%s/m.yaml", dir);
    g = grid_load(p);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_n_cells(g), 2);
    cr_assert_str_eq(grid_cell(g, 1)->dataset, "my parts");
    Config *cfg = config_load(grid_cell(g, 1)->cell_config, NULL, 0, NULL);
    cr_assert_null(cfg, "not frozen yet");
    cr_assert_eq(grid_freeze(g, 0), 0, "%s", err_msg());
    cfg = config_load(grid_cell(g, 1)->cell_config, NULL, 0, NULL);
    cr_assert_not_null(cfg, "%s", err_msg());
    ConfigDataset d;
    cr_assert_eq(config_dataset(cfg, "eval.datasets", 0, &d), 0, "%s", err_msg());
    cr_assert_str_eq(d.name, "my parts");
    cr_assert_str_eq(d.type, "mvtec");
    cr_assert_str_eq(d.root, "/data/my: \"parts\"");
    config_free(cfg);
    grid_free(g);
}

Test(grid, slurm_script_passes_bash_n_and_submits_array_then_tables) {
    cr_redirect_stdout();
    char script[256], cmd[1024];
    snprintf(script, sizeof script, "%s/submit.sh", dir);
    char *argv[] = {"grid", grid_path, "--slurm", script};
    cr_assert_eq(cmd_grid(4, argv), 0, "%s", err_msg());
    snprintf(cmd, sizeof cmd, "bash -n '%s'", script);
    cr_assert_eq(system(cmd), 0, "bash -n rejects the script");
    char *text = fs_read_file(script, NULL);
    cr_assert(strstr(text, "#SBATCH --array=0-3\n"), "%s", text);
    cr_assert(strstr(text, "#SBATCH --partition=gpu\n"), "%s", text);
    cr_assert(strstr(text, "--dependency=afterok:${array_id}"), "%s", text);
    free(text);
    // A stand-in sbatch: records its arguments and stdin, prints a job id.
    char fake[256];
    snprintf(fake, sizeof fake, "%s/bin", dir);
    fs_mkdirs(fake);
    fixture_write(fake, "sbatch",
                  "#!/bin/sh\nn=$(cat \"$SBATCH_LOG.n\" 2>/dev/null || echo 0)\n"
                  "echo \"$@\" >> \"$SBATCH_LOG\"\n"
                  "if [ -t 0 ]; then :; else cat > \"$SBATCH_LOG.stdin$n\"; fi\n"
                  "echo $((n + 1)) > \"$SBATCH_LOG.n\"\necho $((4242 + n))\n");
    snprintf(cmd, sizeof cmd, "chmod +x '%s/sbatch' && cd / && SBATCH_LOG='%s/sbatch.log' PATH='%s':\"$PATH\" bash '%s' </dev/null",
             fake, dir, fake, script);
    cr_assert_eq(system(cmd), 0, "the script fails with a working sbatch");
    char log[256];
    snprintf(log, sizeof log, "%s/sbatch.log", dir);
    text = fs_read_file(log, NULL);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "--parsable\n"), "array submission: %s", text);
    cr_assert(strstr(text, "--dependency=afterok:4242 "), "the tables job waits for the array: %s", text);
    cr_assert(strstr(text, " tables ") && strstr(text, "grid-t/tables"), "%s", text);
    free(text);
    snprintf(log, sizeof log, "%s/sbatch.log.stdin0", dir);
    text = fs_read_file(log, NULL);
    cr_assert_not_null(text, "the array script went to sbatch's stdin");
    cr_assert(strstr(text, "#SBATCH --array=0-3") && strstr(text, "cells/0003.yaml") &&
              strstr(text, "experiment \"${cells[$i]}\"") && strstr(text, "i=$SLURM_ARRAY_TASK_ID\n"), "%s", text);
    free(text);
}

Test(grid, local_run_skips_done_cells) {
    cr_redirect_stdout();
    cr_redirect_stderr();
    Grid *g = grid_load(grid_path);
    cr_assert_not_null(g, "%s", err_msg());
    // three cells already finished (with results), one not
    const char *ds1[] = {"visa"};
    for (int i = 0; i < 3; i++) {
        fixture_run(grid_cell(g, i)->run_dir, "kanoclip", NULL, "main", 0, 111, 1, ds1, 0.8 + 0.01 * i, 0.9, 1, 0);
        fixture_write(grid_cell(g, i)->run_dir, "DONE", "x");
    }
    char out[256];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    cr_assert_not_null(freopen(out, "w", stdout));
    char *argv[] = {"grid", grid_path, "--run"};
    cr_assert_eq(cmd_grid(3, argv), 1, "the unfinished cell cannot run (no checkpoint): the grid fails");
    fflush(stdout);
    char *text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "grid t: 4 cells, 3 done, 1 ran now, 1 failed"), "%s", text);
    cr_assert(strstr(text, "[cell 4/4] kanoclip experiment") && !strstr(text, "[cell 1/4]"), "only cell 4 ran: %s", text);
    free(text);

    // all done: nothing runs, the tables are written through the same binary
    fixture_run(grid_cell(g, 3)->run_dir, "kanoclip", NULL, "main", 0, 111, 1, ds1, 0.85, 0.9, 1, 0);
    fixture_write(grid_cell(g, 3)->run_dir, "DONE", "x");
    cr_assert_not_null(freopen(out, "w", stdout));
    cr_assert_eq(cmd_grid(3, argv), 0, "%s", err_msg());
    fflush(stdout);
    text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "grid t: 4 cells, 4 done, 0 ran now, 0 failed"), "%s", text);
    free(text);
    char *tables = fs_join(grid_dir(g), "tables/table1_industrial.md");
    cr_assert(fs_exists(tables), "tables written after the grid finished");
    free(tables);
    grid_free(g);
}

Test(grid, errors_name_file_and_cell) {
    char text[512];
    snprintf(text, sizeof text, "name: e\nout: %s\nconfig: [a.yaml]\n", dir);
    put("e1.yaml", text);
    char p[256];
    snprintf(p, sizeof p, "%s/e1.yaml", dir);
    cr_assert_null(grid_load(p));
    cr_assert(strstr(err_msg(), "e1.yaml:3:1: unknown key 'config' (did you mean 'configs'?)"), "%s", err_msg());
    snprintf(text, sizeof text, "name: e\nout: %s\nconfigs: [a.yaml]\noverrides: [[train.epoch=3]]\n", dir);
    put("e2.yaml", text);
    snprintf(p, sizeof p, "%s/e2.yaml", dir);
    cr_assert_null(grid_load(p));
    cr_assert(strstr(err_msg(), "e2.yaml: cell 0 (") && strstr(err_msg(), "did you mean 'train.epochs'"), "%s", err_msg());
    snprintf(text, sizeof text, "name: e\nout: %s\n", dir);
    put("e3.yaml", text);
    snprintf(p, sizeof p, "%s/e3.yaml", dir);
    cr_assert_null(grid_load(p));
    cr_assert(strstr(err_msg(), "the grid has no configs"), "%s", err_msg());
    snprintf(text, sizeof text, "name: e\nout: %s\nconfigs: [missing.yaml]\n", dir);
    put("e4.yaml", text);
    snprintf(p, sizeof p, "%s/e4.yaml", dir);
    cr_assert_null(grid_load(p));
    cr_assert(strstr(err_msg(), "missing.yaml"), "%s", err_msg());
}

Test(grid, committed_example_grid_expands) {
    Grid *g = grid_load("experiments/grids/example.yaml");
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_n_cells(g), 8);
    cr_assert_str_eq(grid_cell(g, 7)->dataset, "mpdd");
    cr_assert_str_eq(grid_cell(g, 7)->seed, "222");
    grid_free(g);
}

Test(grid, status_reads_the_run_folders_and_a_running_cell_is_not_submitted_again) {
    cr_redirect_stdout();
    Grid *g = grid_load(grid_path);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_freeze(g, 0), 0, "%s", err_msg());
    const char *ds1[] = {"visa"};
    // cell 0 done; cell 1 stopped before finishing; cell 2 running (its folder's lock held, as run_open holds it);
    // cell 3 not begun
    fixture_run(grid_cell(g, 0)->run_dir, "kanoclip", NULL, "main", 0, 111, 1, ds1, 0.8, 0.9, 1, 0);
    fixture_write(grid_cell(g, 0)->run_dir, "DONE", "x");
    fixture_write(grid_cell(g, 1)->run_dir, "log.txt", "run started\n");
    fs_mkdirs(grid_cell(g, 2)->run_dir);
    char *lock_path = fs_join(grid_cell(g, 2)->run_dir, ".lock");
    FileLock lock;
    cr_assert_eq(file_lock(lock_path, 0, &lock, NULL), 0, "%s", err_msg());
    const GridCellStatus want[4] = {CELL_DONE, CELL_FAILED, CELL_RUNNING, CELL_PENDING};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(grid_cell_status(g, i), want[i], "cell %d: %s", i, grid_cell_status_name(grid_cell_status(g, i)));
    char script[256];
    snprintf(script, sizeof script, "%s/job.sh", dir);
    cr_assert_eq(grid_write_slurm(g, script, "/bin/kanoclip", NULL), -1);
    cr_assert(strstr(err_msg(), "g.yaml: cell 2 is running") && strstr(err_msg(), grid_cell(g, 2)->run_dir), "%s", err_msg());
    cr_assert(!fs_exists(script));

    // the lock released (the run ended without DONE): failed; the script then submits cells 1-3 only
    file_unlock(&lock);
    cr_assert_eq(grid_cell_status(g, 2), CELL_FAILED);
    int n = 0;
    cr_assert_eq(grid_write_slurm(g, script, "/bin/kanoclip", &n), 0, "%s", err_msg());
    cr_assert_eq(n, 3);
    char *text = fs_read_file(script, NULL);
    cr_assert(strstr(text, "#SBATCH --array=1-3\n") && strstr(text, "for i in 1 2 3; do rm -f"), "%s", text);
    free(text);

    char out[256];
    snprintf(out, sizeof out, "%s/status.txt", dir);
    cr_assert_not_null(freopen(out, "w", stdout));
    char *argv[] = {"grid", grid_path, "--status"};
    cr_assert_eq(cmd_grid(3, argv), 0, "%s", err_msg());
    fflush(stdout);
    text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "grid t: 4 cells: 1 done, 0 running, 2 failed, 1 pending"), "%s", text);
    char *log = fs_join(grid_cell(g, 1)->run_dir, "log.txt");
    cr_assert(strstr(text, "     1  failed ") && strstr(text, log), "cell 1's log is named: %s", text);
    free(log);
    free(text);
    free(lock_path);
    grid_free(g);
}

Test(grid, slurm_settings_are_checked_and_gpus_asked_as_gres) {
    char text[512], p[256], script[256];
    snprintf(script, sizeof script, "%s/job.sh", dir);
    snprintf(text, sizeof text, "name: s\nout: %s\nconfigs: [a.yaml]\nslurm:\n  gpus: -1\n", dir);
    put("s1.yaml", text);
    snprintf(p, sizeof p, "%s/s1.yaml", dir);
    Grid *g = grid_load(p);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_write_slurm(g, script, "/bin/kanoclip", NULL), -1);
    cr_assert(strstr(err_msg(), "s1.yaml:5:") && strstr(err_msg(), "slurm.gpus: expected 0 or more, got -1"), "%s", err_msg());
    grid_free(g);
    snprintf(text, sizeof text, "name: s\nout: %s\nconfigs: [a.yaml]\nslurm:\n  gpus: 2\n  gpu_type: a100\n  max_parallel: 3\n", dir);
    put("s2.yaml", text);
    snprintf(p, sizeof p, "%s/s2.yaml", dir);
    g = grid_load(p);
    cr_assert_eq(grid_write_slurm(g, script, "/bin/kanoclip", NULL), 0, "%s", err_msg());
    char *s = fs_read_file(script, NULL);
    cr_assert(strstr(s, "#SBATCH --gres=gpu:a100:2\n") && strstr(s, "#SBATCH --array=0%3\n"), "%s", s);
    // the tables job asks for no GPU (its options, not the repository's path, which may hold any word)
    const char *tables = strstr(s, "tables_id=$(sbatch");
    cr_assert(tables && !strstr(tables, "--gres") && !strstr(tables, "--gpus"), "%s", s);
    free(s);
    grid_free(g);
}

// DIR/NAME's text (malloc'd); fails the test when it cannot be read.
static char *read_file_in(const char *d, const char *name) {
    char *p = fs_join(d, name), *text = fs_read_file(p, NULL);
    cr_assert_not_null(text, "%s: %s", p, err_msg());
    free(p);
    return text;
}

Test(grid, cells_that_split_their_features_wait_for_an_array_of_feature_shards) {
    char text[512], p[256], script[256], cmd[1024];
    snprintf(script, sizeof script, "%s/job.sh", dir);
    // cell 0 splits its extraction in 4 (the grid's common), cell 1 in 2 (its own override)
    snprintf(text, sizeof text, "name: f\nout: %s\nconfigs: [a.yaml, b.yaml]\ncommon: [train.epochs=1, cache.shards=4]\n"
                                "overrides: [[], [cache.shards=2]]\nslurm:\n  gpus: 1\n  max_parallel: 2\n  setup: [\"echo set up\"]\n", dir);
    put("f.yaml", text);
    snprintf(p, sizeof p, "%s/f.yaml", dir);
    Grid *g = grid_load(p);
    cr_assert_not_null(g, "%s", err_msg());
    cr_assert_eq(grid_n_cells(g), 4);
    cr_assert_eq(grid_cell(g, 0)->feature_shards, 4);
    cr_assert_eq(grid_cell(g, 1)->feature_shards, 2);
    cr_assert_eq(grid_feature_shards(g), 4);
    cr_assert_eq(grid_freeze(g, 0), 0, "%s", err_msg());
    // cell 2 done: the shards are extracted for the cells to run only
    const char *ds1[] = {"visa"};
    fixture_run(grid_cell(g, 2)->run_dir, "kanoclip", NULL, "main", 0, 111, 1, ds1, 0.8, 0.9, 1, 0);
    fixture_write(grid_cell(g, 2)->run_dir, "DONE", "x");
    cr_assert_eq(grid_write_slurm(g, script, "/bin/kanoclip", NULL), 0, "%s", err_msg());
    snprintf(cmd, sizeof cmd, "bash -n '%s'", script);
    cr_assert_eq(system(cmd), 0, "bash -n rejects the script");
    char *s = fs_read_file(script, NULL);
    char *feat = strstr(s, "<<'KANOCLIP_FEATURES'"), *cells = strstr(s, "<<'KANOCLIP_ARRAY'");
    cr_assert(feat && cells && feat < cells, "the features array is submitted before the cells: %s", s);
    feat = strndup(feat, (size_t)(cells - feat));
    cr_assert(strstr(feat, "#SBATCH --array=0-3%2\n") && strstr(feat, "#SBATCH --job-name=kanoclip-f-features\n") &&
                  strstr(feat, "/slurm/features-%a.out\n") && strstr(feat, "#SBATCH --gres=gpu:1\n") &&
                  strstr(feat, "echo set up\n"), "the shard tasks ask what the cells ask: %s", feat);
    cr_assert(strstr(feat, "cells/0000.yaml'\n  '") && strstr(feat, "cells/0001.yaml'\n  '") &&
                  strstr(feat, "cells/0003.yaml'\n)") && !strstr(feat, "cells/0002.yaml"), "%s", feat);
    cr_assert(strstr(feat, "shards=( 4 2 2 )\n") && strstr(feat, "features \"${cells[$k]}\" --shard \"$i/${shards[$k]}\""),
              "%s", feat);
    cr_assert(strstr(s, "array_id=$(sbatch --parsable --dependency=afterok:${features_id} --kill-on-invalid-dep=yes <<"),
              "the cells wait for every shard: %s", s);
    free(feat);
    free(s);

    // Through a stand-in sbatch: features (job 4242), then the cells after it, then the tables after them.
    char fake[256];
    snprintf(fake, sizeof fake, "%s/bin", dir);
    fs_mkdirs(fake);
    fixture_write(fake, "sbatch",
                  "#!/bin/sh\nn=$(cat \"$SBATCH_LOG.n\" 2>/dev/null || echo 0)\n"
                  "echo \"$@\" >> \"$SBATCH_LOG\"\n"
                  "if [ -t 0 ]; then :; else cat > \"$SBATCH_LOG.stdin$n\"; fi\n"
                  "echo $((n + 1)) > \"$SBATCH_LOG.n\"\necho $((4242 + n))\n");
    snprintf(cmd, sizeof cmd, "chmod +x '%s/sbatch' && cd / && SBATCH_LOG='%s/sbatch.log' PATH='%s':\"$PATH\" bash '%s' "
                              "</dev/null > '%s/submit.out'", fake, dir, fake, script, dir);
    cr_assert_eq(system(cmd), 0, "the script fails with a working sbatch");
    s = read_file_in(dir, "sbatch.log");
    cr_assert(!strncmp(s, "--parsable\n--parsable --dependency=afterok:4242 --kill-on-invalid-dep=yes\n", 74) &&
                  strstr(s, "--dependency=afterok:4243 --kill-on-invalid-dep=yes"), "%s", s);
    free(s);
    s = read_file_in(dir, "sbatch.log.stdin0");
    cr_assert(strstr(s, "#SBATCH --array=0-3%2\n"), "the first job is the shards': %s", s);
    free(s);
    s = read_file_in(dir, "submit.out");
    cr_assert(strstr(s, "submitted array job 4243 (cells 0-1,3) and tables job 4244\n") &&
                  strstr(s, "feature extraction: job 4242 (shards 0-3) runs first"), "%s", s);
    free(s);

    // --status names a failed shard: the cells that waited for it were cancelled
    char *mark = grid_features_slurm_file(g, 1, "failed"), *out = grid_features_slurm_file(g, 1, "out");
    fs_mkdirs(strcat(strcpy(p, grid_dir(g)), "/slurm"));
    cr_assert_eq(fs_write_atomic(mark, "1\n", 2), 0);
    snprintf(text, sizeof text, "%s/status.txt", dir);
    FILE *saved = stdout;
    stdout = fopen(text, "w");
    snprintf(p, sizeof p, "%s/f.yaml", dir);
    char *argv[] = {"grid", p, "--status"};
    int rc = cmd_grid(3, argv);
    fclose(stdout);
    stdout = saved;
    cr_assert_eq(rc, 0);
    s = read_file_in(dir, "status.txt");
    char line[512];
    snprintf(line, sizeof line, "feature shard 1 failed (the cells waiting for it were cancelled); its output: %s\n", out);
    cr_assert(strstr(s, line) && !strstr(s, "feature shard 0 failed"), "%s", s);
    free(s);
    free(mark);
    free(out);
    grid_free(g);

    // cache.shards out of range in a cell: the grid names it
    snprintf(text, sizeof text, "name: f\nout: %s\nconfigs: [a.yaml]\ncommon: [cache.shards=0]\n", dir);
    put("f0.yaml", text);
    snprintf(p, sizeof p, "%s/f0.yaml", dir);
    cr_assert_null(grid_load(p));
    cr_assert(strstr(err_msg(), "f0.yaml: cell 0: ") && strstr(err_msg(), "cache.shards: 0: expected 1..1000"), "%s", err_msg());
}
