// Runs that can be trusted (the shrunk demo, tests/experiment_test_util.h): a run is never answered from a folder
// made with other weights or data, --force starts over, zero epochs is the untrained model, and runs that share a
// folder or a cache are kept apart by locks: a second process of one run is refused while the first lives, and
// four processes sharing one feature cache extract it once and finish as four sequential runs would.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <time.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/run/log.h"
#include "model/checkpoint_write.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

extern char **environ;

static char tmp[64];

static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-trust-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    cr_redirect_stderr();
}
static void teardown(void) { tmpdir_remove(tmp); }
TestSuite(trust, .init = setup, .fini = teardown, .timeout = 300);

static int run_demo(const char *root, const char *name, int n_extra, const char *const *extra) {
    return experiment_run_demo(root, name, n_extra, extra);
}

// The demo's tiny CLIP written again with another seed: new weights at the same path.
static void replace_weights(const char *root) {
    char ck[256];
    snprintf(ck, sizeof ck, "%s/ckpt", root);
    ClipConfig c = {.vision = {.width = 64, .layers = 4, .heads = 4, .mlp = 256, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .text = {.width = 64, .layers = 2, .heads = 4, .mlp = 256, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .vocab_size = 49408, .context_length = 77, .eos_token_id = 49407, .image_size = 32,
                    .patch_size = 8, .channels = 3, .projection_dim = 48, .logit_scale_init = 2.6592f};
    cr_assert_eq(clip_write_random(ck, &c, 99), 0, "%s", err_msg());
}

Test(trust, replaced_weights_never_answer_with_stale_results) {
    cr_assert_eq(run_demo(tmp, "w", 0, NULL), 0, "%s", err_msg());
    char *dir = run_folder_in(tmp, "w");
    char *before = read_in(dir, "metrics.json", NULL);
    // The first run's provenance names its data by content (generated before the run's identity is taken).
    char *prov = read_in(dir, "provenance.json", NULL);
    cJSON *p = cJSON_Parse(prov);
    const char *m = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "datasets"), "synthetic"),
                                        "manifest_sha256")->valuestring;
    cr_assert_eq(strlen(m), 64, "manifest %s", m);
    cJSON_Delete(p);
    replace_weights(tmp);
    cr_assert_eq(run_demo(tmp, "w", 0, NULL), 1, "a finished run with other weights is not reported as finished");
    cr_assert(strstr(err_msg(), "finished with other inputs") && strstr(err_msg(), "weights"), "%s", err_msg());
    char *after = read_in(dir, "metrics.json", NULL);
    cr_assert_str_eq(before, after, "the old results are kept as they are");
    const char *force[1] = {"--force"};
    cr_assert_eq(run_demo(tmp, "w", 1, force), 0, "%s", err_msg());
    free(before); free(after); free(prov); free(dir);
}

Test(trust, a_partial_run_does_not_resume_on_other_data) {
    const char *ep[1] = {"train.epochs=3"};
    setenv("KANOCLIP_STOP_AFTER_EPOCHS", "1", 1);
    cr_assert_neq(run_demo(tmp, "d", 1, ep), 0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    // One image rewritten in place with other bytes of the same length: only a content hash sees it.
    char img[512];
    snprintf(img, sizeof img, "%s/data/rubber_ring/test/good/000.png", tmp);
    size_t n = 0;
    char *bytes = fs_read_file(img, &n);
    cr_assert_not_null(bytes, "%s", img);
    bytes[n - 13] ^= 1;  // inside the IEND chunk's CRC: the file keeps its size
    cr_assert_eq(fs_write_atomic(img, bytes, n), 0);
    free(bytes);
    cr_assert_eq(run_demo(tmp, "d", 1, ep), 1);
    cr_assert(strstr(err_msg(), "a partial run with other inputs") && strstr(err_msg(), "dataset synthetic"), "%s",
              err_msg());
}

Test(trust, force_starts_an_unfinished_run_from_scratch) {
    const char *ep[2] = {"train.epochs=3", "--force"};
    setenv("KANOCLIP_STOP_AFTER_EPOCHS", "1", 1);
    cr_assert_neq(run_demo(tmp, "f", 1, ep), 0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    cr_assert_eq(run_demo(tmp, "f", 2, ep), 0, "%s", err_msg());
    char *dir = run_folder_in(tmp, "f");
    char *log = read_in(dir, "log.txt", NULL);
    const char *last = strstr(log, "after --force");
    cr_assert_not_null(last, "%s", log);
    cr_assert_null(strstr(last, "resuming from"), "--force resumed the unfinished run:\n%s", log);
    char *prov = read_in(dir, "provenance.json", NULL);
    cr_assert(strstr(prov, "\"attempt\":\t1"), "a forced run is a first attempt: %s", prov);
    free(prov); free(log); free(dir);
}

// "(resumable: ...)" only where a rerun helps: an interrupted run says it, a corrupt image does not.
Test(trust, resumable_is_said_only_where_a_rerun_helps) {
    const char *ep[1] = {"train.epochs=3"};
    setenv("KANOCLIP_STOP_AFTER_EPOCHS", "1", 1);
    cr_assert_neq(run_demo(tmp, "r", 1, ep), 0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    char *dir = run_folder_in(tmp, "r");
    char *log = read_in(dir, "log.txt", NULL);
    cr_assert(strstr(log, "stopped after epoch 1 (KANOCLIP_STOP_AFTER_EPOCHS=1) (resumable: rerun the same command)"),
              "%s", log);
    free(log);
    free(dir);
    char img[512];
    snprintf(img, sizeof img, "%s/data/woven_fabric/test/good/001.png", tmp);
    cr_assert_eq(fs_write_atomic(img, "not an image", 12), 0);
    cr_assert_neq(run_demo(tmp, "c", 0, NULL), 0);
    cr_assert(strstr(err_msg(), "not a PNG, JPEG or BMP image"), "%s", err_msg());
    dir = run_folder_in(tmp, "c");
    log = read_in(dir, "log.txt", NULL);
    cr_assert(strstr(log, "run failed: ") && !strstr(log, "resumable"), "a rerun cannot get past a bad image:\n%s", log);
    free(log);
    free(dir);
}

Test(trust, zero_epochs_is_the_untrained_model_and_reports) {
    const char *ov[3] = {"train.epochs=0", "report.plots=true", "report.tables=true"};
    cr_assert_eq(run_demo(tmp, "z", 3, ov), 0, "%s", err_msg());
    char *dir = run_folder_in(tmp, "z");
    char *text = read_in(dir, "metrics.json", NULL);
    cJSON *m = cJSON_Parse(text);
    double ia = json_num(m, "datasets", "synthetic", "image", "auroc");
    cr_assert(ia >= 0 && ia <= 1);
    cJSON_Delete(m);
    free(text);
    free(dir);
}

// ---- concurrency: real processes of the built command ----------------------------------------------------

static pid_t spawn_demo(const char *root, const char *name, const char *extra) {
    static char ov[N_DEMO_PATHS + 1][512];
    char *argv[48];
    argv[0] = "build/kanoclip";
    argv[1] = "experiment";
    int n = demo_argv(argv, 2, ov, root, name);
    argv[n++] = "run.threads=1";
    argv[n++] = "--quiet";
    if (extra) argv[n++] = (char *)extra;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0, "cannot start %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int wait_exit(pid_t pid) {
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(trust, a_second_process_of_one_run_is_refused_while_the_first_lives) {
    cr_assert_eq(run_demo(tmp, "l", 0, NULL), 0, "%s", err_msg());
    char *dir = run_folder_in(tmp, "l");
    char *lock = fs_join(dir, ".lock");
    // A live holder of the run folder (as a running process would be): --force must not clear it under it.
    int fd = open(lock, O_RDWR);
    cr_assert(fd >= 0);
    pid_t child = fork();
    if (child == 0) {
        int cfd = open(lock, O_RDWR);
        if (cfd < 0 || flock(cfd, LOCK_EX) < 0) _exit(1);
        pause();
        _exit(0);
    }
    usleep(200000);
    const char *force[1] = {"--force"};
    cr_assert_eq(run_demo(tmp, "l", 1, force), 1);
    cr_assert(strstr(err_msg(), "in use by another run"), "%s", err_msg());
    char *metrics = fs_join(dir, "metrics.json");
    cr_assert(fs_exists(metrics), "the live run's folder is untouched");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    // The holder is gone (killed): its lock went with it.
    cr_assert_eq(run_demo(tmp, "l", 1, force), 0, "%s", err_msg());
    close(fd);
    free(metrics); free(lock); free(dir);
}

Test(trust, four_processes_share_one_feature_cache) {
    static const char *heads[4] = {"method.adapter=false", "method.bicmci=false", "train.lr=0.002",
                                   "method.kd_form=triplet"};
    static const char *names[4] = {"h0", "h1", "h2", "h3"};
    char par[128], seq[128];
    snprintf(par, sizeof par, "%s/par", tmp);
    snprintf(seq, sizeof seq, "%s/seq", tmp);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) pids[i] = spawn_demo(par, names[i], heads[i]);
    for (int i = 0; i < 4; i++) cr_assert_eq(wait_exit(pids[i]), 0, "parallel run %s failed", names[i]);
    for (int i = 0; i < 4; i++) cr_assert_eq(wait_exit(spawn_demo(seq, names[i], heads[i])), 0, "sequential %s", names[i]);
    for (int i = 0; i < 4; i++) {
        char *dp = run_folder_in(par, names[i]), *ds = run_folder_in(seq, names[i]);
        char *a = read_in(dp, "metrics.json", NULL), *b = read_in(ds, "metrics.json", NULL);
        cr_assert_str_eq(a, b, "%s: the parallel run differs from the sequential one", names[i]);
        char *la = read_in(dp, "log.txt", NULL);
        cr_assert_null(strstr(la, "rebuilt"), "%s rebuilt a cache another run was writing:\n%s", names[i], la);
        free(a); free(b); free(la); free(dp); free(ds);
    }
    // One extraction per dataset role for the four runs: every other run waited and read.
    int extracted = 0;
    for (int i = 0; i < 4; i++) {
        char *dp = run_folder_in(par, names[i]);
        char *la = read_in(dp, "log.txt", NULL);
        for (const char *q = la; (q = strstr(q, "images to extract")); q++) extracted++;
        free(la);
        free(dp);
    }
    cr_assert_eq(extracted, 2, "the training and the evaluation features are extracted once each (%d)", extracted);
}

// ---- kill -9 anywhere: the resumed run's files are the uninterrupted run's --------------------------------

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// Every file under a (relative paths, sorted), but those that record attempts and times rather than results:
// log.txt, provenance.json and DONE (whose content is the finishing time; its presence is checked).
static int list_files(const char *root, const char *rel, char names[][256], int n, int cap) {
    char path[512];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    struct dirent **ents;
    int k = scandir(path, &ents, NULL, alphasort);
    for (int i = 0; i < k; i++) {
        const char *nm = ents[i]->d_name;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", nm);
        char full[768];
        snprintf(full, sizeof full, "%s/%s", root, sub);
        if (nm[0] != '.' && strcmp(sub, "log.txt") && strcmp(sub, "provenance.json") && strcmp(sub, "DONE")) {
            if (fs_is_dir(full)) n = list_files(root, sub, names, n, cap);
            else if (n < cap) snprintf(names[n++], 256, "%s", sub);
        }
        free(ents[i]);
    }
    free(ents);
    return n;
}

Test(trust, kill_9_at_five_random_points_resumes_to_identical_files, .timeout = 600) {
    static const char *extra = "report.tables=true";
    double t0 = now_s();
    cr_assert_eq(wait_exit(spawn_demo(tmp, "k", extra)), 0);
    double span = now_s() - t0;
    // The uninterrupted run's folder is set aside, and with it everything it made (cache, data, checkpoint), so the
    // killed runs make it all again under the same paths (the same config, so the same run folder name).
    const char *made[4] = {"results", "cache", "data", "ckpt"};
    for (int i = 0; i < 4; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/%s", tmp, made[i]);
        snprintf(b, sizeof b, "%s/whole-%s", tmp, made[i]);
        cr_assert_eq(rename(a, b), 0, "%s", a);
    }
    // Five kills at points spread over a whole run's time (seeded).
    unsigned seed = 12345;
    int kills = 0;
    for (int i = 0; i < 5; i++) {
        double at = span * (0.05 + 0.9 * (rand_r(&seed) / (double)RAND_MAX));
        pid_t pid = spawn_demo(tmp, "k", extra);
        usleep((useconds_t)(at * 1e6));
        if (kill(pid, SIGKILL) == 0) kills++;
        waitpid(pid, NULL, 0);
    }
    cr_assert_eq(wait_exit(spawn_demo(tmp, "k", extra)), 0, "the run after five kills did not finish");
    char *dk = run_folder_in(tmp, "k"), dw[512];
    snprintf(dw, sizeof dw, "%s/whole-results/%s", tmp, strrchr(dk, '/') + 1);
    static char fw[256][256], fk[256][256];
    int nw = list_files(dw, "", fw, 0, 256), nk = list_files(dk, "", fk, 0, 256);
    char *done = fs_join(dk, "DONE");
    cr_assert(fs_exists(done), "the resumed run is not marked finished");
    free(done);
    if (nw != nk)
        for (int i = 0; i < (nw > nk ? nw : nk); i++)
            fprintf(stderr, "  %-40s %s\n", i < nw ? fw[i] : "", i < nk ? fk[i] : "");
    cr_assert_eq(nw, nk, "%d files vs %d after the kills (uninterrupted | after the kills, above)", nw, nk);
    cr_assert_gt(nw, 8);
    for (int i = 0; i < nw; i++) {
        cr_assert_str_eq(fw[i], fk[i]);
        size_t a = 0, b = 0;
        char *x = read_in(dw, fw[i], &a), *y = read_in(dk, fk[i], &b);
        cr_assert(a == b && !memcmp(x, y, a), "%s differs after %d kills", fw[i], kills);
        free(x);
        free(y);
    }
    free(dk);
}

// A process killed in the middle of an atomic write leaves NAME.tmp.PID behind; the run that resumes the folder
// (holding its lock, so no one else writes there) removes such files, so the finished folder holds only results.
Test(trust, a_resumed_run_removes_what_killed_writers_left) {
    cr_assert_eq(run_demo(tmp, "t", 0, NULL), 0, "%s", err_msg());
    char *dir = run_folder_in(tmp, "t");
    char *done = fs_join(dir, "DONE"), *t1 = fs_join(dir, "state.bin.tmp.424242"), *t2 = fs_join(dir, "metrics.json.tmp.7");
    char *keep = fs_join(dir, "notes.tmp.txt");
    cr_assert_eq(unlink(done), 0);
    cr_assert_eq(fs_write_atomic(t1, "x", 1), 0);
    cr_assert_eq(fs_write_atomic(t2, "x", 1), 0);
    cr_assert_eq(fs_write_atomic(keep, "x", 1), 0);
    cr_assert_eq(run_demo(tmp, "t", 0, NULL), 0, "%s", err_msg());
    cr_assert(fs_exists(done), "the resumed run did not finish");
    cr_assert(!fs_exists(t1) && !fs_exists(t2), "a killed writer's temporary file is still there");
    cr_assert(fs_exists(keep), "a file that only looks like a temporary one was removed");
    free(done); free(t1); free(t2); free(keep); free(dir);
}
