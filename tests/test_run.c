// Run folders, provenance, the experiment command's orchestration (with a stand-in executor), log and progress.
#define _GNU_SOURCE // strptime, timegm
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "model/checkpoint_write.h"
#include "tmpdir.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "harness/run/experiment.h"
#include "harness/run/log.h"
#include "harness/run/progress.h"
#include "harness/run/provenance.h"

#pragma weak experiment_check_dataset

static char dir[64];
static char cfg_path[256];

static char *in_dir(const char *name) { return fs_join(dir, name); }

static void put(const char *name, const char *text) {
    char *p = in_dir(name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    fs_mkdirs(p);
    *slash = '/';
    cr_assert_eq(fs_write_atomic(p, text, strlen(text)), 0, "%s", err_msg());
    free(p);
}

static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-run-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    log_set_echo(0);
    // A real (tiny, random) checkpoint: the experiment checks config.json and the weights before a run starts.
    ClipConfig c = {.vision = {.width = 32, .layers = 2, .heads = 2, .mlp = 128, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .text = {.width = 32, .layers = 1, .heads = 2, .mlp = 128, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .vocab_size = 49408, .context_length = 77, .eos_token_id = 49407, .image_size = 32,
                    .patch_size = 8, .channels = 3, .projection_dim = 24, .logit_scale_init = 2.6592f};
    char *ck = in_dir("ck");
    fs_mkdirs(ck);
    cr_assert_eq(clip_write_random(ck, &c, 5), 0, "%s", err_msg());
    free(ck);
    put("train/good/a.png", "aaaa");
    put("visa/candle/b.png", "bbbbbb");
    char text[2048];
    snprintf(text, sizeof text,
             "run:\n  name: t\n  out_dir: %s/results\n  seed: 7\n"
             "model:\n  checkpoint: %s/ck\n  image_size: 32\n  layers: [1, 2]\n  vv_from: 1\n"
             "data:\n  train: {type: mvtec, root: %s/train}\n"
             "eval:\n  datasets: [{name: visa, type: visa, root: %s/visa}]\n  image_size: 32\n",
             dir, dir, dir, dir);
    put("exp.yaml", text);
    snprintf(cfg_path, sizeof cfg_path, "%s/exp.yaml", dir);
}

static void teardown(void) { tmpdir_remove(dir); }
TestSuite(run, .init = setup, .fini = teardown);

static cJSON *read_json(const char *path) {
    char *t = fs_read_file(path, NULL);
    cr_assert_not_null(t, "%s", err_msg());
    cJSON *j = cJSON_Parse(t);
    free(t);
    cr_assert_not_null(j, "%s: bad JSON", path);
    return j;
}

Test(run, folder_named_by_hash_with_config_provenance_log) {
    Config *cfg = config_load(cfg_path, "experiments/defaults.yaml", 0, NULL);
    cr_assert_not_null(cfg, "%s", err_msg());
    RunOptions opt = {.command_line = "kanoclip experiment exp.yaml"};
    Run *run = run_open(cfg, &opt);
    cr_assert_not_null(run, "%s", err_msg());
    cr_assert_eq(run_state(run), RUN_NEW);
    char want[512];
    snprintf(want, sizeof want, "%s/results/t-%.12s", dir, config_hash(cfg));
    cr_assert_str_eq(run_dir(run), want);

    char *p = run_path(run, "config.yaml");
    char *text = fs_read_file(p, NULL);
    cr_assert_str_eq(text, config_yaml(cfg));
    free(text);
    free(p);

    p = run_path(run, "provenance.json");
    cJSON *j = read_json(p);
    free(p);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "config_sha256")->valuestring, config_hash(cfg));
    cr_assert_eq(cJSON_GetObjectItem(j, "seed")->valueint, 7);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "command_line")->valuestring, "kanoclip experiment exp.yaml");
    char hex[65];
    size_t wlen = 0;
    char *wpath = in_dir("ck/model.safetensors"), *wbytes = fs_read_file(wpath, &wlen);
    sha256_hex(wbytes, wlen, hex);
    free(wbytes);
    free(wpath);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "weights_sha256")->valuestring, hex);
    const char *commit = cJSON_GetObjectItem(j, "git_commit")->valuestring;
    cr_assert(!strcmp(commit, "unknown") || strlen(commit) == 40, "git_commit '%s'", commit);
    cJSON *ds = cJSON_GetObjectItem(j, "datasets");
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "visa"), "files")->valueint, 1);
    char *vroot = in_dir("visa");
    cr_assert_eq(provenance_manifest_hash(vroot, hex, NULL), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "visa"), "manifest_sha256")->valuestring, hex);
    free(vroot);
    cr_assert_not_null(cJSON_GetObjectItem(j, "host"));
    cr_assert_not_null(cJSON_GetObjectItem(j, "started"));
    cJSON_Delete(j);

    cr_assert_eq(run_set_provenance(run, "dataset_manifest_sha256", "abc"), 0);
    cr_assert_eq(run_finish(run), 0);
    p = run_path(run, "DONE");
    cr_assert(fs_exists(p));
    free(p);
    p = run_path(run, "log.txt");
    text = fs_read_file(p, NULL);
    cr_assert(strstr(text, "run started") && strstr(text, "run finished"), "log: %s", text);
    free(text);
    free(p);
    run_close(run);
    config_free(cfg);
}

Test(run, manifest_hash_moves_with_files) {
    char *root = in_dir("visa");
    char a[65], b[65], c[65];
    long n;
    cr_assert_eq(provenance_manifest_hash(root, a, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(provenance_manifest_hash(root, b, &n), 0);
    cr_assert_str_eq(a, b);
    put("visa/candle/c.png", "c");
    cr_assert_eq(provenance_manifest_hash(root, c, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_neq(a, c);
    cr_assert_eq(provenance_manifest_hash("/nonexistent-dir", c, &n), -1);
    free(root);
}

// A stand-in executor: writes metrics.json; fails once when asked to, after saving state (a killed run).
static int calls, fail_next, saw_state;
static int fake_execute(Run *run, const Settings *s) {
    calls++;
    char *st = run_path(run, "state.bin");
    saw_state = fs_exists(st);
    free(st);
    if (fail_next) {
        fail_next = 0;
        run_write_file(run, "state.bin", "epoch 3", 7);
        return err_set("simulated failure");
    }
    const char *m = "{\"method\": \"fake\", \"datasets\": {}}\n";
    return run_write_file(run, "metrics.json", m, strlen(m));
}

static int run_cmd(int n, ...) {
    char *argv[16] = {"experiment"};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    return experiment_main(n + 1, argv, fake_execute);
}

Test(run, experiment_done_skip_force_and_resume) {
    cr_redirect_stdout();
    cr_redirect_stderr();
    calls = 0;
    fail_next = 1;
    cr_assert_eq(run_cmd(2, cfg_path, "--quiet"), 1, "a failing executor fails the command");
    cr_assert_eq(calls, 1);
    Config *cfg = config_load(cfg_path, "experiments/defaults.yaml", 0, NULL);
    char *rdir = run_dir_for(cfg);
    char *done = fs_join(rdir, "DONE");
    cr_assert(!fs_exists(done), "no DONE after a failure");

    cr_assert_eq(run_cmd(2, cfg_path, "--quiet"), 0, "%s", err_msg());
    cr_assert_eq(calls, 2);
    cr_assert_eq(saw_state, 1, "the second attempt resumes the partial folder");
    cr_assert(fs_exists(done));
    char *prov = fs_join(rdir, "provenance.json");
    cJSON *j = read_json(prov);
    cr_assert_eq(cJSON_GetObjectItem(j, "attempt")->valueint, 2);
    cJSON_Delete(j);

    cr_assert_eq(run_cmd(2, cfg_path, "--quiet"), 0);
    cr_assert_eq(calls, 2, "a finished run is not redone");

    cr_assert_eq(run_cmd(3, cfg_path, "--force", "--quiet"), 0);
    cr_assert_eq(calls, 3, "--force reruns");
    cr_assert_eq(saw_state, 0, "--force starts from scratch");
    cr_assert(fs_exists(done));

    // an override makes another run (another hash, another folder)
    cr_assert_eq(run_cmd(3, cfg_path, "train.epochs=1", "--quiet"), 0);
    cr_assert_eq(calls, 4);
    free(prov);
    free(done);
    free(rdir);
    config_free(cfg);
}

Test(run, experiment_reports_already_finished) {
    calls = 0;
    fail_next = 0;
    char out[256];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    FILE *saved = freopen(out, "w", stdout);
    cr_assert_not_null(saved);
    cr_assert_eq(run_cmd(2, cfg_path, "--quiet"), 0);
    fflush(stdout);
    cr_assert_eq(run_cmd(2, cfg_path, "--quiet"), 0);
    fflush(stdout);
    char *text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "already finished: ") && strstr(text, "; --force reruns"), "got: %s", text);
    free(text);
}

Test(run, dry_run_checks_paths) {
    char out[256];
    snprintf(out, sizeof out, "%s/dry.txt", dir);
    cr_assert_not_null(freopen(out, "w", stdout));
    cr_redirect_stderr();
    int rc = run_cmd(2, cfg_path, "--dry-run");
    fflush(stdout);
    char *text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "ok   model.checkpoint") && strstr(text, "model.safetensors"), "%s", text);
    cr_assert(strstr(text, "warn tokenizer: no vocab.json + merges.txt"), "%s", text);
    // each dataset root gets a line (ok or not: a datasets layer linked in may check the real layout)
    cr_assert(strstr(text, "eval.datasets visa (visa) ") && strstr(text, "data.train mvtec (mvtec) "), "%s", text);
    if (!experiment_check_dataset)  // without one, a folder that exists passes
        cr_assert(strstr(text, "ok   eval.datasets visa (visa) ") && strstr(text, ": folder exists"), "%s", text);
    free(text);
    (void)rc;  // 0 when an executor is linked in, 1 otherwise (reported as a FAIL line)

    // A missing dataset is listed; missing weights stop the dry run with the run's one line naming the key.
    char *ov = "eval.datasets=[{name: gone, type: mpdd, root: /nonexistent/mpdd}]";
    cr_assert_not_null(freopen(out, "w", stdout));
    cr_assert_eq(run_cmd(3, cfg_path, ov, "--dry-run"), 1);
    fflush(stdout);
    text = fs_read_file(out, NULL);
    cr_assert(strstr(text, "FAIL eval.datasets gone (mpdd) /nonexistent/mpdd"), "%s", text);
    free(text);
    char *w = in_dir("ck/model.safetensors");
    unlink(w);
    free(w);
    cr_assert_eq(run_cmd(2, cfg_path, "--dry-run"), 1);
    cr_assert(strstr(err_msg(), "model.checkpoint: ") && strstr(err_msg(), "model.safetensors"), "%s", err_msg());
    char *results = in_dir("results");
    cr_assert(!fs_exists(results), "a dry run creates nothing");
    free(results);
}

Test(run, config_errors_fail_the_command) {
    cr_redirect_stderr();
    cr_assert_eq(run_cmd(2, cfg_path, "train.epoch=3"), 1);
    cr_assert(strstr(err_msg(), "did you mean 'train.epochs'"), "%s", err_msg());
    cr_assert_eq(run_cmd(0), 2, "no config is a usage error");
    cr_assert_eq(run_cmd(2, cfg_path, "--bogus"), 2);
}

// Ctrl-C during a run leaves a time-stamped "interrupted" line at the end of log.txt; the process still dies of
// SIGINT (so a shell or a scheduler sees why).
Test(run, interrupt_leaves_a_line_in_log) {
    char *p = in_dir("log.txt");
    pid_t pid = fork();
    if (pid == 0) {
        log_set_echo(0);
        if (log_open(p) != 0) _exit(3);
        log_msg("epoch 1/15");
        raise(SIGINT);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %d", status);
    char *text = fs_read_file(p, NULL);
    cr_assert_not_null(text);
    char *last = strstr(text, "epoch 1/15\n");
    cr_assert_not_null(last, "%s", text);
    last += strlen("epoch 1/15\n");
    cr_assert_eq(strlen(last), 20 + strlen("interrupted (SIGINT)\n"), "%s", text);
    cr_assert_str_eq(last + 19, " interrupted (SIGINT)\n", "%s", text);
    // a UTC time stamp in log_msg's format, within a few seconds of log_msg's own
    struct tm a = {0}, b = {0};
    cr_assert_not_null(strptime(text, "%Y-%m-%d %H:%M:%S", &a), "%s", text);
    cr_assert_not_null(strptime(last, "%Y-%m-%d %H:%M:%S", &b), "%s", text);
    double gap = difftime(timegm(&b), timegm(&a));
    cr_assert(gap >= 0 && gap < 5, "stamps %.19s and %.19s", text, last);
    free(text);
    free(p);
}

Test(run, progress_summary_in_log) {
    char *p = in_dir("log.txt");
    cr_assert_eq(log_open(p), 0);
    progress_start("extract", 5);
    for (int i = 0; i < 5; i++) progress_step(1);
    progress_end();
    log_msg("value %d", 42);
    log_close();
    char *text = fs_read_file(p, NULL);
    cr_assert(strstr(text, "extract: 5/5 done in 0:00"), "%s", text);
    cr_assert(strstr(text, " value 42\n"), "%s", text);
    cr_assert(text[4] == '-' && text[10] == ' ', "lines start with a date: %s", text);
    char buf[32];
    progress_format_time(3725, buf, sizeof buf);
    cr_assert_str_eq(buf, "1:02:05");
    free(text);
    free(p);
}

Test(run, progress_bar_on_a_terminal) {
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    int saved = dup(STDERR_FILENO);
    dup2(slave, STDERR_FILENO);
    log_set_echo(1);
    progress_start("extract", 4);
    for (int i = 0; i < 4; i++) progress_step(1);
    progress_end();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(slave);
    char buf[4096];
    // The pty may hand the output over in pieces: read until it stays quiet.
    size_t n = 0;
    struct pollfd pfd = {master, POLLIN, 0};
    while (n < sizeof buf - 1 && poll(&pfd, 1, 200) > 0) {
        ssize_t k = read(master, buf + n, sizeof buf - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_assert(strstr(buf, "\rextract [") && strstr(buf, "] 4/4 ") && strstr(buf, "ETA"), "%s", buf);
    cr_assert(strstr(buf, "##############################]"), "a full bar at the end: %s", buf);
    close(master);
}
