// kanoclip grid --slurm on a real single-node Slurm cluster (scripts/slurm_local.sh), started once for the suite
// in the runner process and stopped after the last test (also when a test fails or crashes; if the runner itself
// is killed, the cluster stops itself: OWNER_PID). The grids are the shrunk demo's (tests/experiment_test_util.h):
// the baselines grid (experiments/grids/baselines-demo.yaml) and the Table 3 switches, each compared byte for byte
// with `grid --run`; a failing cell, --status and a resubmission; cells asking for GPUs (the node has 2 stand-ins);
// a four-shard feature extraction (cache.shards 4) whose merged caches are the bytes one process writes. A cluster
// that cannot start fails every test with the reason.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "experiment_test_util.h"
#include "h5_compare.h"
#include "harness/config/config.h"
#include "tmpdir.h"

// ---- the cluster, owned by the runner process (Criterion runs each test in a child that inherits the environment)

static char cluster_root[64];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
    (void)set;
    strcpy(cluster_root, "/tmp/kanoclip-slurm-XXXXXX");
    if (!mkdtemp(cluster_root)) {
        setenv("KANOCLIP_TEST_SLURM_ERROR", "cannot make a temporary folder under /tmp", 1);
        cluster_root[0] = '\0';
        return;
    }
    char cmd[512], err_path[128];
    snprintf(err_path, sizeof err_path, "%s/start.err", cluster_root);
    snprintf(cmd, sizeof cmd, "GPUS=2 OWNER_PID=%ld bash scripts/slurm_local.sh start %s/cluster >/dev/null 2>%s",
             (long)getpid(), cluster_root, err_path);
    double t0 = now_s();
    int rc = system(cmd);
    double took = now_s() - t0;
    if (rc != 0) {
        char *why = fs_read_file(err_path, NULL);
        char msg[2048];
        snprintf(msg, sizeof msg, "the local Slurm cluster did not start (scripts/slurm_local.sh start, exit %d): %s",
                 WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, why && *why ? why : "no message");
        setenv("KANOCLIP_TEST_SLURM_ERROR", msg, 1);
        free(why);
        return;
    }
    fprintf(stderr, "slurm: the local cluster started in %.1f s\n", took);
    snprintf(cmd, sizeof cmd, "%s/cluster/slurm.conf", cluster_root);
    setenv("SLURM_CONF", cmd, 1);
    setenv("KANOCLIP_TEST_SLURM_ROOT", cluster_root, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
    (void)stats;
    if (!cluster_root[0]) return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s/cluster/pids", cluster_root);
    if (fs_exists(cmd)) {
        snprintf(cmd, sizeof cmd, "bash scripts/slurm_local.sh stop %s/cluster", cluster_root);
        if (system(cmd) != 0) fprintf(stderr, "slurm: stopping the local cluster failed\n");
    }
    tmpdir_remove(cluster_root);
}

// ---- per test: a folder for the grids' runs

static char dir[64];

static void setup(void) {
    const char *err = getenv("KANOCLIP_TEST_SLURM_ERROR");
    cr_assert_null(err, "%s", err);
    cr_assert_not_null(getenv("SLURM_CONF"), "the suite's cluster was not started");
    strcpy(dir, "/tmp/kanoclip-grid-slurm-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char bin[PATH_MAX];
    cr_assert_not_null(realpath("build/kanoclip", bin), "build/kanoclip is built by make test");
    setenv("KANOCLIP_BIN", bin, 1);
}
static void teardown(void) {
    // No job of this test may outlive it (its folder goes): cancel what is left.
    if (system("scancel --quiet --full --partition=local 2>/dev/null")) {}
    tmpdir_remove(dir);
}
TestSuite(slurm, .init = setup, .fini = teardown, .timeout = 240);

// Runs a shell command; its stdout (malloc'd) and exit status.
static char *sh(const char *cmd, int *rc) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) fwrite(buf, 1, n, m);
    fclose(m);
    int st = pclose(p);
    if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

// The grid file ROOT/NAME.yaml over the shrunk demo under ROOT: configs (absolute), override sets, slurm keys.
static void write_grid(const char *root, const char *name, const char *configs, const char *overrides,
                       const char *slurm_extra) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "name: %s\nout: %s/out\nconfigs: [%s]\noverrides: %s\ncommon:\n", name, root, configs, overrides);
    for (size_t i = 0; i < N_DEMO_PATHS; i++) {
        char ov[512];
        snprintf(ov, sizeof ov, DEMO_PATH_FMT[i], root);
        char q[600];
        snprintf(q, sizeof q, "'%s'", ov);  // flow text in a YAML item: single-quoted
        fprintf(f, "  - %s\n", q);
    }
    for (size_t i = 0; i < N_DEMO_TINY; i++) fprintf(f, "  - %s\n", DEMO_TINY[i]);
    // one CPU a task (the node's 2 run two at once), no GPU unless slurm_extra asks, the node's memory
    fprintf(f, "  - eval.overlays=0\nslurm:\n  cpus: 1\n  mem: \"\"\n  time: \"00:10:00\"\n%s%s",
            slurm_extra && strstr(slurm_extra, "gpus:") ? "" : "  gpus: 0\n", slurm_extra ? slurm_extra : "");
    fclose(f);
    char leaf[64];
    snprintf(leaf, sizeof leaf, "%s.yaml", name);
    fs_mkdirs(root);
    char *p = fs_join(root, leaf);
    cr_assert_eq(fs_write_atomic(p, text, strlen(text)), 0, "%s", err_msg());
    free(p);
    free(text);
}

// The configs of the committed baselines grid, absolute and comma-separated (malloc'd); *n_out their count.
static char *baselines_configs(int *n_out) {
    Config *spec = config_load("experiments/grids/baselines-demo.yaml", "experiments/grid_defaults.yaml", 0, NULL);
    cr_assert_not_null(spec, "%s", err_msg());
    char cwd[PATH_MAX], *out = NULL;
    size_t len = 0;
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    FILE *f = open_memstream(&out, &len);
    int n = config_list_len(spec, "configs");
    cr_assert_gt(n, 1);
    for (int i = 0; i < n; i++) fprintf(f, "%s'%s/experiments/grids/%s'", i ? ", " : "", cwd, config_list_str(spec, "configs", i));
    fclose(f);
    *n_out = n;
    config_free(spec);
    return out;
}

// `kanoclip grid ROOT/NAME.yaml ARGS` through the binary; its stdout (malloc'd), *rc its exit status.
static char *kanoclip_grid(const char *root, const char *name, const char *args, int *rc) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' grid %s/%s.yaml %s 2>&1", getenv("KANOCLIP_BIN"), root, name, args);
    return sh(cmd, rc);
}

// The states of a job (an array job: one per task), space-separated (malloc'd).
static char *job_states(const char *id) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "scontrol show job %s 2>&1 | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 | tr '\\n' ' '", id);
    return sh(cmd, NULL);
}

static int all_ended(const char *states) {
    static const char *const running[] = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"};
    if (!*states) return 0;
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (strstr(states, running[i])) return 0;
    return 1;
}

// Waits (up to 180 s) until every job named has ended; their states, "ID: STATES; ..." (malloc'd).
static char *wait_jobs(const char *const *ids, int n) {
    double end = now_s() + 180;
    for (;;) {
        int done = 1;
        for (int i = 0; i < n && done; i++) {
            char *st = job_states(ids[i]);
            done = all_ended(st);
            free(st);
        }
        if (done || now_s() > end) break;
        usleep(200000);
    }
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    for (int i = 0; i < n; i++) {
        char *st = job_states(ids[i]);
        fprintf(f, "%s: %s; ", ids[i], st);
        free(st);
    }
    fclose(f);
    return out;
}

// Writes the Slurm script for ROOT/NAME.yaml and submits it; the array and tables job ids (array "" when every
// cell was done). Returns the submission's output (malloc'd).
static char *submit(const char *root, const char *name, char *array_id, char *tables_id) {
    char args[256];
    snprintf(args, sizeof args, "--slurm %s/job.sh", root);
    int rc;
    char *out = kanoclip_grid(root, name, args, &rc);
    cr_assert_eq(rc, 0, "grid --slurm: %s", out);
    free(out);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "bash %s/job.sh 2>&1", root);
    out = sh(cmd, &rc);
    cr_assert_eq(rc, 0, "bash job.sh: %s", out);
    array_id[0] = '\0';
    if (sscanf(out, "submitted array job %31[0-9] (cells %*[^)]) and tables job %31[0-9]", array_id, tables_id) != 2)
        cr_assert_eq(sscanf(out, "every cell is done: submitted tables job %31[0-9]", tables_id), 1, "%s", out);
    return out;
}

// Every file of A/tables equals B/tables' byte for byte (and there are some).
static void assert_same_tables(const char *a, const char *b) {
    DIR *d = opendir(a);
    cr_assert_not_null(d, "no tables in %s", a);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t la = 0, lb = 0;
        char *ta = read_in(a, e->d_name, &la), *tb = read_in(b, e->d_name, &lb);
        cr_assert(la == lb && !memcmp(ta, tb, la), "%s/%s differs from %s/%s", a, e->d_name, b, e->d_name);
        free(ta);
        free(tb);
        n++;
    }
    closedir(d);
    cr_assert_gt(n, 0, "no tables in %s", a);
    // and no table of B is missing from A
    d = opendir(b);
    int nb = 0;
    while ((e = readdir(d))) nb += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(n, nb, "%s has %d tables, %s %d", a, n, b, nb);
}

// The start and end times (seconds) of every task of a job, from the cluster's job-completion log; their count.
static int job_times(const char *id, long *s, long *e, int max) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "scontrol show job %s | grep -o '^JobId=[0-9]*' | cut -d= -f2 | sort -u | while read -r j; do "
             "grep \"^JobId=$j \" \"$(dirname \"$SLURM_CONF\")/jobcomp.log\" | "
             "sed 's/.*StartTime=\\([^ ]*\\) EndTime=\\([^ ]*\\).*/\\1 \\2/'; done",
             id);
    char *out = sh(cmd, NULL);
    int n = 0;
    for (char *line = strtok(out, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        struct tm a = {0}, b = {0};
        char *p = strptime(line, "%Y-%m-%dT%H:%M:%S", &a);
        if (!p || !strptime(p + 1, "%Y-%m-%dT%H:%M:%S", &b)) continue;
        s[n] = (long)timegm(&a);
        e[n] = (long)timegm(&b);
        n++;
    }
    free(out);
    return n;
}

// The most array tasks that ran at the same time.
static int most_at_once(const char *array_id) {
    long s[256], e[256];
    int n = job_times(array_id, s, e, 256), best = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++) k += s[j] <= s[i] && e[j] >= s[i];
        if (k > best) best = k;
    }
    return best;
}

// Runs grid NAME in ROOT under Slurm and, in ROOT-run, with --run; the tables must be the same bytes.
static void slurm_matches_run(const char *name, const char *configs, const char *overrides, int n_cells,
                              char *array_id) {
    char slurm_root[128], run_root[128];
    snprintf(slurm_root, sizeof slurm_root, "%s/slurm", dir);
    snprintf(run_root, sizeof run_root, "%s/run", dir);
    write_grid(slurm_root, name, configs, overrides, NULL);
    write_grid(run_root, name, configs, overrides, NULL);

    char tables_id[32];
    double t0 = now_s();
    char *out = submit(slurm_root, name, array_id, tables_id);
    cr_assert(*array_id, "%s", out);
    free(out);
    const char *ids[2] = {array_id, tables_id};
    char *states = wait_jobs(ids, 2);
    double t_slurm = now_s() - t0;
    cr_assert(!strstr(states, "FAILED") && !strstr(states, "CANCELLED") && strstr(states, "COMPLETED"),
              "every task and the tables job complete: %s", states);
    free(states);

    t0 = now_s();
    int rc;
    out = kanoclip_grid(run_root, name, "--run", &rc);
    double t_run = now_s() - t0;
    cr_assert_eq(rc, 0, "grid --run: %s", out);
    free(out);
    fprintf(stderr, "slurm: grid %s (%d cells): %.1f s under Slurm (submission to tables), %.1f s with grid --run\n",
            name, n_cells, t_slurm, t_run);

    char a[256], b[256];
    snprintf(a, sizeof a, "%s/out/grid-%s/tables", slurm_root, name);
    snprintf(b, sizeof b, "%s/out/grid-%s/tables", run_root, name);
    assert_same_tables(a, b);
    out = kanoclip_grid(slurm_root, name, "--status", &rc);
    char line[128];
    snprintf(line, sizeof line, "grid %s: %d cells: %d done, 0 running, 0 failed, 0 pending", name, n_cells, n_cells);
    cr_assert(rc == 0 && strstr(out, line), "%s", out);
    free(out);
}

Test(slurm, baselines_grid_through_sbatch_gives_the_tables_of_grid_run) {
    int n;
    char *configs = baselines_configs(&n), array_id[32];
    slurm_matches_run("baselines", configs, "[[]]", n, array_id);
    free(configs);
    cr_assert_geq(most_at_once(array_id), 2, "the node's 2 CPUs run 2 one-CPU tasks at once");
}

// From every cell's log.txt under ROOT/results: asserts that no feature cache file was extracted by two cells;
// *n_files: the files extracted, *n_shared: the times a cell found a cache another had extracted.
static void features_extracted_once(const char *root, int *n_files, int *n_shared) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/results/*/log.txt | grep -o 'images to extract .* into [^ ]*' | "
                              "sed 's/.* into //' | sort | uniq -c | sort -rn | head -1 | awk '{print $1}'", root);
    char *most = sh(cmd, NULL);
    cr_assert_eq(atoi(most), 1, "a feature cache was extracted by more than one cell");
    free(most);
    snprintf(cmd, sizeof cmd, "cat %s/results/*/log.txt | grep -o 'images to extract .* into [^ ]*' | wc -l", root);
    char *n = sh(cmd, NULL);
    *n_files = atoi(n);
    free(n);
    snprintf(cmd, sizeof cmd, "cat %s/results/*/log.txt | grep -c 'feature cache .*: reused'", root);
    n = sh(cmd, NULL);
    *n_shared = atoi(n);
    free(n);
}

Test(slurm, table3_switches_share_features_and_match_grid_run) {
    char cwd[PATH_MAX], configs[PATH_MAX + 64], array_id[32];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(configs, sizeof configs, "'%s/experiments/demo.yaml'", cwd);
    slurm_matches_run("table3", configs,
                      "[[], [method.knpl=false], [model.vv_from=0], [method.bicmci=false], [method.adapter=false]]", 5,
                      array_id);
    char root[128];
    snprintf(root, sizeof root, "%s/slurm", dir);
    int extracted, reused;
    features_extracted_once(root, &extracted, &reused);
    // Two feature sets (vv_from 2 and 0) of two datasets (synthetic-train, synthetic): 4 files, each extracted by
    // one cell; the 3 other cells with vv_from 2 read both of theirs.
    cr_assert_eq(extracted, 4, "feature files extracted: %d", extracted);
    cr_assert_eq(reused, 6, "cells that read features another cell extracted: %d", reused);
}

Test(slurm, failed_cell_stops_the_tables_and_a_resubmission_runs_only_it) {
    char root[128], cwd[PATH_MAX], configs[PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/g", dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(configs, sizeof configs, "'%s/experiments/demo.yaml'", cwd);
    // Cell 1's task fails in its setup (as where a module is missing on a node) until ROOT/ready exists.
    char setup[512];
    snprintf(setup, sizeof setup,
             "  setup: ['[ $SLURM_ARRAY_TASK_ID != 1 ] || [ -e %s/ready ] || { echo \"%s/ready: missing\" >&2; exit 3; }']\n",
             root, root);
    write_grid(root, "f", configs, "[[], [train.epochs=1], [train.lr=1e-4]]", setup);
    char array_id[32], tables_id[32];
    char *out = submit(root, "f", array_id, tables_id);
    free(out);
    const char *ids[2] = {array_id, tables_id};
    char *states = wait_jobs(ids, 2);
    cr_assert(strstr(states, "FAILED"), "cell 1 fails: %s", states);
    free(states);
    char *tables_state = job_states(tables_id);
    cr_assert(!strncmp(tables_state, "CANCELLED", 9) || !strncmp(tables_state, "PENDING", 7),
              "the tables job never starts: %s", tables_state);
    free(tables_state);
    char p[256];
    snprintf(p, sizeof p, "%s/out/grid-f/tables", root);
    cr_assert(!fs_exists(p), "no tables after a failed cell");
    snprintf(p, sizeof p, "%s/out/grid-f/slurm", root);
    char *log = read_in(p, "cell-1.out", NULL);
    cr_assert(strstr(log, "kanoclip grid: cell 1 failed (exit 3)") && strstr(log, "/log.txt"),
              "the task says which cell failed and where its log is: %s", log);
    free(log);

    int rc;
    out = kanoclip_grid(root, "f", "--status", &rc);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "grid f: 3 cells: 2 done, 0 running, 1 failed, 0 pending"), "%s", out);
    cr_assert(strstr(out, "     1  failed ") && strstr(out, "logs:") && strstr(out, "slurm/cell-1.out"), "%s", out);
    free(out);

    // Fixed; submitting again runs cell 1 alone, then the tables.
    snprintf(p, sizeof p, "%s/ready", root);
    cr_assert_eq(fs_write_atomic(p, "", 0), 0);
    out = submit(root, "f", array_id, tables_id);
    cr_assert(strstr(out, "(cells 1)"), "only the failed cell is submitted: %s", out);
    free(out);
    states = wait_jobs(ids, 2);
    snprintf(p, sizeof p, "%s/out/grid-f/slurm", root);
    log = read_in(p, "cell-1.out", NULL);
    cr_assert(!strstr(states, "FAILED") && !strstr(states, "CANCELLED"), "%s\ncell 1's output:\n%s", states, log);
    free(log);
    free(states);
    snprintf(p, sizeof p, "%s/out/grid-f/tables", root);
    cr_assert(fs_exists(p), "tables after the resubmission");
    out = kanoclip_grid(root, "f", "--status", &rc);
    cr_assert(strstr(out, "grid f: 3 cells: 3 done, 0 running, 0 failed, 0 pending"), "%s", out);
    free(out);
    // the cells done the first time ran once: one attempt in each of their logs (and cell 1 one)
    snprintf(p, sizeof p, "awk -F'\t' 'NR > 1 {print $3}' %s/out/grid-f/cells.tsv | "
                          "while read -r d; do grep -c '(attempt ' \"$d/log.txt\"; done | tr '\\n' ' '", root);
    out = sh(p, NULL);
    cr_assert_str_eq(out, "1 1 1 ", "each cell ran once");
    free(out);

    // Everything done: the script submits only the tables job.
    out = submit(root, "f", array_id, tables_id);
    cr_assert(!*array_id && strstr(out, "every cell is done"), "%s", out);
    free(out);
    states = wait_jobs(ids + 1, 1);
    cr_assert(strstr(states, "COMPLETED"), "%s", states);
    free(states);
}

Test(slurm, cells_get_the_gpus_they_ask_for) {
    char root[128], cwd[PATH_MAX], configs[PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/gpu", dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(configs, sizeof configs, "'%s/experiments/demo.yaml'", cwd);
    write_grid(root, "g", configs, "[[], [train.epochs=1]]", "  gpus: 1\n");
    char array_id[32], tables_id[32];
    char *out = submit(root, "g", array_id, tables_id);
    free(out);
    const char *ids[2] = {array_id, tables_id};
    char *states = wait_jobs(ids, 2);
    cr_assert(!strstr(states, "FAILED") && !strstr(states, "CANCELLED"), "%s", states);
    free(states);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "scontrol show job %s | grep -c 'TresPerNode=gres:gpu:1'", array_id);
    out = sh(cmd, NULL);
    cr_assert_eq(atoi(out), 2, "each task asked for one GPU");
    free(out);
    snprintf(cmd, sizeof cmd, "%s/out/grid-g/slurm", root);
    for (int i = 0; i < 2; i++) {
        char leaf[32];
        snprintf(leaf, sizeof leaf, "cell-%d.out", i);
        char *log = read_in(cmd, leaf, NULL);
        cr_assert(strstr(log, ", GPUs 0\n") || strstr(log, ", GPUs 1\n"), "Slurm gave the task a GPU: %s", log);
        free(log);
    }
    // More GPUs than the node has: sbatch refuses the array, and the script fails with its message.
    write_grid(root, "g3", configs, "[[train.lr=1e-4]]", "  gpus: 3\n");  // a cell not run yet
    int rc;
    char args[256];
    snprintf(args, sizeof args, "--slurm %s/job3.sh", root);
    out = kanoclip_grid(root, "g3", args, &rc);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "bash %s/job3.sh 2>&1", root);
    out = sh(cmd, &rc);
    cr_assert(rc != 0 && strstr(out, "Requested node configuration is not available"), "%s", out);
    free(out);
}

// The feature caches (*.h5) under ROOT/cache/features, sorted, space-separated (malloc'd).
static char *feature_caches(const char *root) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cd %s/cache/features && ls | grep -v '\\.lock$' | tr '\\n' ' '", root);
    return sh(cmd, NULL);
}

static int count_in_logs(const char *root, const char *text) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/results/*/log.txt | grep -c '%s'", root, text);
    char *out = sh(cmd, NULL);
    int n = atoi(out);
    free(out);
    return n;
}

Test(slurm, four_feature_shards_through_sbatch_merge_into_the_one_process_caches) {
    char root[128], one[128], cwd[PATH_MAX], configs[PATH_MAX + 64];
    snprintf(root, sizeof root, "%s/sh", dir);
    snprintf(one, sizeof one, "%s/one", dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(configs, sizeof configs, "'%s/experiments/demo.yaml'", cwd);
    // Two cells sharing their features (the adapter is not part of them). Batches of 2: 9 of the 18 training
    // images and 6 of the 12 eval images, so each of the 4 shards of each dataset holds some.
    write_grid(root, "sh", configs,
               "[[cache.shards=4, eval.batch_size=2], [cache.shards=4, eval.batch_size=2, method.adapter=false]]", NULL);
    char array_id[32], tables_id[32], features_id[32] = "";
    double t0 = now_s();
    char *out = submit(root, "sh", array_id, tables_id);
    const char *line = strstr(out, "feature extraction: job ");
    cr_assert(line && sscanf(line, "feature extraction: job %31[0-9] (shards 0-3)", features_id) == 1, "%s", out);
    free(out);
    const char *ids[3] = {features_id, array_id, tables_id};
    char *states = wait_jobs(ids, 1);
    double t_shards = now_s() - t0;
    free(states);
    states = wait_jobs(ids, 3);
    cr_assert(!strstr(states, "FAILED") && !strstr(states, "CANCELLED"), "%s", states);
    char *fstates = job_states(features_id);
    cr_assert_str_eq(fstates, "COMPLETED COMPLETED COMPLETED COMPLETED ", "four shard tasks: %s", fstates);
    free(fstates);
    free(states);
    // The cells started once every shard had ended (afterok).
    long fs[8], fe[8], cs[8], ce[8];
    int nf = job_times(features_id, fs, fe, 8), nc = job_times(array_id, cs, ce, 8);
    cr_assert(nf == 4 && nc == 2, "%d shard tasks, %d cell tasks in the job log", nf, nc);
    long f_first = fs[0], f_last = fe[0], c_first = cs[0];
    for (int i = 1; i < 4; i++) f_first = fs[i] < f_first ? fs[i] : f_first, f_last = fe[i] > f_last ? fe[i] : f_last;
    for (int i = 1; i < 2; i++) c_first = cs[i] < c_first ? cs[i] : c_first;
    cr_assert_leq(f_last, c_first, "a cell started (%ld) before the last shard ended (%ld)", c_first, f_last);
    char slurm_dir[256];
    snprintf(slurm_dir, sizeof slurm_dir, "%s/out/grid-sh/slurm", root);
    char *log0 = read_in(slurm_dir, "features-3.out", NULL);
    cr_assert(strstr(log0, "feature shard 3") && strstr(log0, "shard 3 of 4: images "), "%s", log0);
    free(log0);
    // The first cell merged each cache (two datasets), the other reused them; no cell extracted anything.
    cr_assert_eq(count_in_logs(root, "merged from 4 shards"), 2);
    cr_assert_eq(count_in_logs(root, "images to extract"), 0);

    // One process: the first cell's config with its cache elsewhere and no shards.
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' features %s/out/grid-sh/cells/0000.yaml cache.shards=1 cache.dir=%s/cache --quiet 2>&1",
             getenv("KANOCLIP_BIN"), root, one);
    int rc;
    t0 = now_s();
    out = sh(cmd, &rc);
    double t_one = now_s() - t0;
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char *merged = feature_caches(root), *whole = feature_caches(one);
    cr_assert_str_eq(merged, whole, "the same cache files, no shard left");
    int n = 0;
    for (char *leaf = strtok(whole, " "); leaf; leaf = strtok(NULL, " "), n++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/cache/features/%s", root, leaf);
        snprintf(b, sizeof b, "%s/cache/features/%s", one, leaf);
        h5_assert_same_attributes(a, b);
        assert_same_bytes(a, b);
    }
    cr_assert_eq(n, 2, "%s", merged);
    fprintf(stderr, "slurm: 4 feature shards of the shrunk demo (18 + 12 images): %.1f s from submission until the "
                    "last shard ended (%ld s from the first shard's start, by the job log); one process: %.1f s\n",
            t_shards, f_last - f_first, t_one);
    free(merged);
    free(whole);
}
