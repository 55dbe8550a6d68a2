// Slurm submission scripts for grids (see grid.h: grid_write_slurm).
#define _GNU_SOURCE
#include "harness/run/grid.h"
#include "harness/config/config.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// 'text' for the shell: single quotes, each ' written as '\''.
static void sh_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

// The indices in a Slurm --array list, runs written as ranges: "0-3,5,7-9".
static void array_list(FILE *f, const int *idx, int n) {
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1) j++;
        fprintf(f, "%s%d", i ? "," : "", idx[i]);
        if (j > i) fprintf(f, "-%d", idx[j]);
        i = j + 1;
    }
}

typedef struct {
    const char *partition, *account, *time, *mem, *gpu_type;
    long gpus, cpus, max_parallel;
} SlurmSettings;

static int slurm_settings(const Grid *g, SlurmSettings *ss) {
    const Config *s = grid_spec(g);
    config_get_str(s, "slurm.partition", &ss->partition);
    config_get_str(s, "slurm.account", &ss->account);
    config_get_str(s, "slurm.time", &ss->time);
    config_get_str(s, "slurm.mem", &ss->mem);
    config_get_str(s, "slurm.gpu_type", &ss->gpu_type);
    config_get_int(s, "slurm.gpus", &ss->gpus);
    config_get_int(s, "slurm.cpus", &ss->cpus);
    config_get_int(s, "slurm.max_parallel", &ss->max_parallel);
    const char *keys[3] = {"slurm.gpus", "slurm.cpus", "slurm.max_parallel"};
    long vals[3] = {ss->gpus, ss->cpus, ss->max_parallel};
    for (int i = 0; i < 3; i++)
        if (vals[i] < 0) return err_set("%s: %s: expected 0 or more, got %ld", config_origin(s, keys[i]), keys[i], vals[i]);
    if (strchr(ss->gpu_type, ':') || strchr(ss->gpu_type, ' '))
        return err_set("%s: slurm.gpu_type: expected a GPU type name as in the cluster's gres.conf (e.g. a100)",
                       config_origin(s, "slurm.gpu_type"));
    return 0;
}

// The resources every task of the grid asks for (slurm.*).
static void write_resources(FILE *f, const SlurmSettings *ss) {
    if (*ss->partition) fprintf(f, "#SBATCH --partition=%s\n", ss->partition);
    if (*ss->account) fprintf(f, "#SBATCH --account=%s\n", ss->account);
    if (*ss->time) fprintf(f, "#SBATCH --time=%s\n", ss->time);
    // Generic resources are how every Slurm version schedules GPUs (slurm.conf GresTypes=gpu, gres.conf);
    // Slurm sets CUDA_VISIBLE_DEVICES to the GPUs it gave the task.
    if (ss->gpus > 0 && *ss->gpu_type) fprintf(f, "#SBATCH --gres=gpu:%s:%ld\n", ss->gpu_type, ss->gpus);
    else if (ss->gpus > 0) fprintf(f, "#SBATCH --gres=gpu:%ld\n", ss->gpus);
    if (ss->cpus > 0) fprintf(f, "#SBATCH --cpus-per-task=%ld\n", ss->cpus);
    if (*ss->mem) fprintf(f, "#SBATCH --mem=%s\n", ss->mem);
}

// What a task does before its command: the working folder, the threads, the grid's setup lines.
static void write_prologue(FILE *f, const Grid *g, const char *cwd) {
    fprintf(f, "cd ");
    sh_quote(f, cwd);
    // Without task binding OpenMP would start a thread per core of the node, not per CPU of the task.
    fprintf(f, "\nif [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi\n");
    int n_setup = config_list_len(grid_spec(g), "slurm.setup");
    for (int i = 0; i < n_setup; i++) fprintf(f, "%s\n", config_list_str(grid_spec(g), "slurm.setup", i));
}

// The array task: runs its cell; on failure says which cell and where its logs are, and marks it failed for
// `kanoclip grid --status`.
static void write_array_job(FILE *f, const Grid *g, const SlurmSettings *ss, const int *todo, int n_todo,
                            const char *cwd, const char *slurm_dir, const char *exe) {
    fprintf(f, "#!/usr/bin/env bash\n#SBATCH --job-name=kanoclip-%s\n#SBATCH --array=", grid_name(g));
    array_list(f, todo, n_todo);
    if (ss->max_parallel > 0) fprintf(f, "%%%ld", ss->max_parallel);
    fprintf(f, "\n#SBATCH --output=%s/cell-%%a.out\n#SBATCH --open-mode=append\n", slurm_dir);
    write_resources(f, ss);
    fprintf(f, "set -euo pipefail\ncells=(\n");
    for (int i = 0; i < grid_n_cells(g); i++) {
        fprintf(f, "  ");
        sh_quote(f, grid_cell(g, i)->cell_config);
        fputc('\n', f);
    }
    fprintf(f, ")\nruns=(\n");
    for (int i = 0; i < grid_n_cells(g); i++) {
        fprintf(f, "  ");
        sh_quote(f, grid_cell(g, i)->run_dir);
        fputc('\n', f);
    }
    fprintf(f, ")\ni=$SLURM_ARRAY_TASK_ID\nfailed=");
    sh_quote(f, slurm_dir);
    // On any failure (a setup line, the run itself): say which cell and where its logs are, mark it failed.
    fprintf(f, "\"/cell-$i.failed\"\nrm -f \"$failed\"\n"
               "trap 'rc=$?; if [ $rc -ne 0 ]; then echo $rc > \"$failed\"; echo \"kanoclip grid: cell $i failed "
               "(exit $rc): ${cells[$i]}; its log: ${runs[$i]}/log.txt\" >&2; fi' EXIT\n"
               "echo \"== $(date '+%%F %%T') job ${SLURM_ARRAY_JOB_ID}_$i on $(hostname): cell $i"
               "${CUDA_VISIBLE_DEVICES:+, GPUs $CUDA_VISIBLE_DEVICES}\"\n");
    write_prologue(f, g, cwd);
    sh_quote(f, exe);
    fprintf(f, " experiment \"${cells[$i]}\"\n");
}

// The feature extraction array (cache.shards N > 1): task I extracts shard I of every cell to run that splits its
// features (`kanoclip features CELL --shard I/N`; cells sharing features find the shard done and go on), so the
// N shards of each dataset are extracted at once. Cells whose cache.shards is 1 extract in their own run.
static void write_features_job(FILE *f, const Grid *g, const SlurmSettings *ss, const int *todo, int n_todo,
                               int n_shards, const char *cwd, const char *slurm_dir, const char *exe) {
    fprintf(f, "#!/usr/bin/env bash\n#SBATCH --job-name=kanoclip-%s-features\n#SBATCH --array=0-%d", grid_name(g),
            n_shards - 1);
    if (ss->max_parallel > 0) fprintf(f, "%%%ld", ss->max_parallel);
    fprintf(f, "\n#SBATCH --output=%s/features-%%a.out\n#SBATCH --open-mode=append\n", slurm_dir);
    write_resources(f, ss);
    fprintf(f, "set -euo pipefail\ncells=(\n");
    for (int k = 0; k < n_todo; k++)
        if (grid_cell(g, todo[k])->feature_shards > 1) {
            fprintf(f, "  ");
            sh_quote(f, grid_cell(g, todo[k])->cell_config);
            fputc('\n', f);
        }
    fprintf(f, ")\nshards=(");
    for (int k = 0; k < n_todo; k++)
        if (grid_cell(g, todo[k])->feature_shards > 1) fprintf(f, " %d", grid_cell(g, todo[k])->feature_shards);
    fprintf(f, " )\ni=$SLURM_ARRAY_TASK_ID\nout_dir=");
    sh_quote(f, slurm_dir);
    fprintf(f, "\nfailed=\"$out_dir/features-$i.failed\"\nrm -f \"$failed\"\n"
               "trap 'rc=$?; if [ $rc -ne 0 ]; then echo $rc > \"$failed\"; echo \"kanoclip grid: feature shard $i "
               "failed (exit $rc); its output: $out_dir/features-$i.out\" >&2; fi' EXIT\n"
               "echo \"== $(date '+%%F %%T') job ${SLURM_ARRAY_JOB_ID}_$i on $(hostname): feature shard $i"
               "${CUDA_VISIBLE_DEVICES:+, GPUs $CUDA_VISIBLE_DEVICES}\"\n");
    write_prologue(f, g, cwd);
    fprintf(f, "for k in \"${!cells[@]}\"; do\n  if [ \"$i\" -lt \"${shards[$k]}\" ]; then\n    ");
    sh_quote(f, exe);
    fprintf(f, " features \"${cells[$k]}\" --shard \"$i/${shards[$k]}\"\n  fi\ndone\n");
}

int grid_write_slurm(const Grid *g, const char *out_path, const char *exe, int *n_submitted) {
    SlurmSettings ss;
    if (slurm_settings(g, &ss) < 0) return -1;
    int *todo = malloc(sizeof(int) * (size_t)(grid_n_cells(g) ? grid_n_cells(g) : 1)), n_todo = 0;
    for (int i = 0; i < grid_n_cells(g); i++) {
        GridCellStatus st = grid_cell_status(g, i);
        if (st == CELL_RUNNING) {
            free(todo);
            return err_set("%s: cell %d is running (%s is in use): wait for it, or cancel its job, then submit again",
                           grid_file(g), i, grid_cell(g, i)->run_dir);
        }
        if (st != CELL_DONE) todo[n_todo++] = i;
    }
    int n_shards = 1;  // the feature shards the cells to run split their extraction into
    for (int k = 0; k < n_todo; k++)
        if (grid_cell(g, todo[k])->feature_shards > n_shards) n_shards = grid_cell(g, todo[k])->feature_shards;
    char *tmp = fs_temp_name(out_path);
    FILE *f = fopen(tmp, "w");
    if (!f) { int e = errno; free(tmp); free(todo); return err_set("%s: cannot write: %s", out_path, strerror(e)); }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
    char *slurm_dir = fs_join(grid_dir(g), "slurm"), *tables_dir = fs_join(grid_dir(g), "tables");

    fprintf(f, "#!/usr/bin/env bash\n"
               "# Generated by `kanoclip grid %s --slurm %s`: %d of the %d frozen cells of %s/cells.tsv (the\n"
               "# others were done). Submit with `bash %s`: an array job, one cell per task (output in\n"
               "# %s/cell-I.out), then, once every task succeeded (afterok), a job that writes the tables to\n"
               "# %s. `kanoclip grid %s --status` says how far it got; after a failure, write and submit\n"
               "# the script again: it runs only the cells not done.\n"
               "set -euo pipefail\n",
            grid_file(g), out_path, n_todo, grid_n_cells(g), grid_dir(g), out_path, slurm_dir, tables_dir, grid_file(g));
    if (n_shards > 1)
        fprintf(f, "# Before the cells: their feature extraction (cache.shards %d), an array job of one task per shard\n"
                   "# (output in %s/features-I.out); the cells start once every shard succeeded, and the first\n"
                   "# cell that needs a cache merges its shards.\n", n_shards, slurm_dir);
    fprintf(f, "cd ");
    sh_quote(f, cwd);
    fprintf(f, "\nmkdir -p ");
    sh_quote(f, slurm_dir);
    fputc('\n', f);
    if (n_shards > 1) {
        fprintf(f, "rm -f ");
        sh_quote(f, slurm_dir);
        fprintf(f, "/features-*.failed\nfeatures_id=$(sbatch --parsable <<'KANOCLIP_FEATURES'\n");
        write_features_job(f, g, &ss, todo, n_todo, n_shards, cwd, slurm_dir, exe);
        fprintf(f, "KANOCLIP_FEATURES\n)\nfeatures_id=${features_id%%%%;*}\n");
    }
    if (n_todo > 0) {
        // A cell submitted again is pending, not failed, until its new task runs.
        fprintf(f, "for i in");
        for (int k = 0; k < n_todo; k++) fprintf(f, " %d", todo[k]);
        fprintf(f, "; do rm -f ");
        sh_quote(f, slurm_dir);
        // After the feature shards (every task succeeded: afterok; one failed: the cells are cancelled).
        fprintf(f, "\"/cell-$i.failed\"; done\narray_id=$(sbatch --parsable%s <<'KANOCLIP_ARRAY'\n",
                n_shards > 1 ? " --dependency=afterok:${features_id} --kill-on-invalid-dep=yes" : "");
        write_array_job(f, g, &ss, todo, n_todo, cwd, slurm_dir, exe);
        fprintf(f, "KANOCLIP_ARRAY\n)\n");
        fprintf(f, "array_id=${array_id%%%%;*}\n");  // --parsable prints "id" or "id;cluster"
    }

    // The aggregation job's command, quoted once for --wrap.
    char *cmd = NULL;
    size_t cmd_len = 0;
    FILE *c = open_memstream(&cmd, &cmd_len);
    fprintf(c, "cd ");
    sh_quote(c, cwd);
    fprintf(c, " && ");
    sh_quote(c, exe);
    fprintf(c, " tables");
    for (int i = 0; i < grid_n_cells(g); i++) {
        fputc(' ', c);
        sh_quote(c, grid_cell(g, i)->run_dir);
    }
    fprintf(c, " --out ");
    sh_quote(c, tables_dir);
    // the paper's numbers beside ours, as grid --run's tables have them (harness/cli/cmd_grid.c)
    if (fs_exists("experiments/paper_numbers.csv")) fprintf(c, " --paper experiments/paper_numbers.csv");
    fclose(c);
    fprintf(f, "tables_id=$(sbatch --parsable --job-name=kanoclip-%s-tables", grid_name(g));
    // --kill-on-invalid-dep: a failed cell cancels the tables job instead of leaving it pending forever.
    if (n_todo > 0) fprintf(f, " --dependency=afterok:${array_id} --kill-on-invalid-dep=yes");
    if (*ss.partition) fprintf(f, " --partition=%s", ss.partition);
    if (*ss.account) fprintf(f, " --account=%s", ss.account);
    fprintf(f, " --output=");
    sh_quote(f, slurm_dir);
    fprintf(f, "/tables.out --open-mode=append --time=00:30:00 --wrap=");
    sh_quote(f, cmd);
    fprintf(f, ")\ntables_id=${tables_id%%%%;*}\n");
    if (n_todo > 0) {
        fprintf(f, "echo \"submitted array job ${array_id} (cells ");
        array_list(f, todo, n_todo);
        fprintf(f, ") and tables job ${tables_id}\"\n");
    } else {
        fprintf(f, "echo \"every cell is done: submitted tables job ${tables_id}\"\n");
    }
    if (n_shards > 1)
        fprintf(f, "echo \"feature extraction: job ${features_id} (shards 0-%d) runs first; the cells start once "
                   "every shard succeeded (afterok)\"\n", n_shards - 1);
    fprintf(f, "echo \"$(date '+%%F %%T') %sarray ${array_id:-none} tables ${tables_id}\" >> ",
            n_shards > 1 ? "features ${features_id} " : "");
    sh_quote(f, slurm_dir);
    fprintf(f, "/submitted.txt\n");
    free(cmd);
    free(slurm_dir);
    free(tables_dir);
    free(todo);
    if (n_submitted) *n_submitted = n_todo;
    int bad = fflush(f) != 0;
    fclose(f);
    if (bad) { unlink(tmp); free(tmp); return err_set("%s: write failed", out_path); }
    int rc = fs_commit(tmp, out_path);
    free(tmp);
    return rc;
}
