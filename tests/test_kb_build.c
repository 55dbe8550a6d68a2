// `kb build` end to end against the loopback chat server: the first run asks every question and fills the cache,
// a second run sends nothing (the server's count proves it), offline mode names what is missing, and the API key
// (from an environment variable) reaches the server but no file written. Also through the real command,
// build/kanoclip, run twice as a child process.
#include "tests/kb_test_server.h"
#include "tests/run_cli.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/dataset.h"
#include "datasets/synth.h"
#include "harness/kb/kb_build.h"
#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_loader.h"
#include "harness/kb/kb_settings.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image_write.h>

extern char **environ;

#define TEST_KEY_VAR "KANOCLIP_TEST_KB_KEY"
#define TEST_KEY "sk-kbtest-5f1c9e2a7d3b4c6e8f0a1b2c3d4e5f60"

static const char *answer =
    "Here are 5 descriptions:\n1. A dark crack near the rim.\n2. A brown stain at the centre.\n"
    "3. A small round hole at the bottom.\n4. A bent edge on the left side.\n5. Fine scratches across the top.";

static void setup(void) {
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
}

TestSuite(kb_build, .init = setup, .timeout = 30);

// A synthetic image folder in the MVTec layout: per class two defective and one good test image.
static char *make_images(const char *root, int n_classes) {
    char *imgs = fs_join(root, "images");
    unsigned seed = 99;
    for (int c = 0; c < n_classes; c++) {
        for (int k = 0; k < 3; k++) {
            char dir[512], path[600];
            snprintf(dir, sizeof dir, "%s/widget%d/test/%s", imgs, c, k < 2 ? "scratch" : "good");
            cr_assert_eq(fs_mkdirs(dir), 0);
            snprintf(path, sizeof path, "%s/%03d.png", dir, k);
            unsigned char px[16 * 16 * 3];
            for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)rand_r(&seed);
            cr_assert(stbi_write_png(path, 16, 16, 3, px, 16 * 3));
        }
    }
    return imgs;
}

// Concatenates every regular file under dir (recursively) and reports whether needle occurs in any.
static int any_file_contains(const char *dir, const char *needle, int *n_files) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = fs_join(dir, e->d_name);
        if (fs_is_dir(p)) found |= any_file_contains(p, needle, n_files);
        else {
            size_t n = 0;
            char *bytes = fs_read_file(p, &n);
            (*n_files)++;
            if (bytes && memmem(bytes, n, needle, strlen(needle))) found = 1;
            free(bytes);
        }
        free(p);
    }
    closedir(d);
    return found;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

// Removes a temporary test folder and everything in it.
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".json") != NULL && !strstr(e->d_name, ".tmp");
    closedir(d);
    return n;
}

Test(kb_build, second_run_sends_nothing_and_the_key_is_never_written) {
    char root[] = "/tmp/kanoclip-kbbuild-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *imgs = make_images(root, 3);
    char *cache = fs_join(root, "cache");
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = answer;
    setenv(TEST_KEY_VAR, TEST_KEY, 1);

    KbSettings st;
    kb_settings_defaults(&st);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", s.port);
    kb_settings_set(&st.base_url, base);
    kb_settings_set(&st.model, "loopback-model");
    kb_settings_set(&st.api_key_env, TEST_KEY_VAR);
    kb_settings_set(&st.cache_dir, cache);
    st.backoff_initial_s = 0.01;
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(imgs, NULL, &d), 0, "%s", err_msg());
    cr_assert_eq(d.n_classes, 3);
    cr_assert_eq(d.n_images, 6);

    // Offline before anything is cached: fails, naming the missing answers.
    st.offline = 1;
    KbBuildStats stats;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), -1);
    cr_assert(strstr(err_msg(), "offline: 9 of 9 answers missing"), "%s", err_msg());
    cr_assert(strstr(err_msg(), "llm widget0") && strstr(err_msg(), "vqa widget2/test/scratch/001.png"), "%s", err_msg());
    cr_assert_eq(kbs_requests(&s), 0);

    st.offline = 0;
    s.script[0] = (KbsReply){.status = 503};  // one transient failure on the way
    s.n_script = 1;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());
    cr_assert_eq(stats.n_questions, 9);
    cr_assert_eq(stats.n_llm, 3);
    cr_assert_eq(stats.n_vqa, 6);
    cr_assert_eq(stats.n_fetched, 9);
    cr_assert_eq(stats.n_cached, 0);
    cr_assert_eq(kbs_requests(&s), 10, "9 questions and one retry");
    cr_assert_str_eq(s.last_auth, "Bearer " TEST_KEY, "the key from the environment is sent");
    char *answers = fs_join(cache, "answers");
    cr_assert_eq(count_files(answers), 9);

    // Second run: everything is cached, the server sees no request.
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());
    cr_assert_eq(stats.n_cached, 9);
    cr_assert_eq(stats.n_fetched, 0);
    cr_assert_eq(kbs_requests(&s), 10);
    st.offline = 1;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());

    // The loader now returns fetched text: 5 LLM descriptions + 2 VQA answers per class.
    KbClassTexts *t;
    cr_assert_eq(kb_load_all(&st, &d, &t), 0, "%s", err_msg());
    for (int c = 0; c < 3; c++) {
        cr_assert_str_eq(t[c].llm_source, "fetched");
        cr_assert_eq(t[c].n_vqa, 2);
        cr_assert_eq(t[c].n, 7);
        cr_assert_str_eq(t[c].texts[0], "A dark crack near the rim.");
        kb_class_texts_free(&t[c]);
    }
    free(t);

    // No byte of the key in any file written.
    int n_files = 0;
    cr_assert_not(any_file_contains(cache, TEST_KEY, &n_files), "the API key was written to the cache");
    cr_assert_eq(n_files, 9);
    // ... while the check itself can see a key that is there.
    char *probe = fs_join(answers, "probe.txt");
    fs_write_atomic(probe, "x " TEST_KEY " y", strlen(TEST_KEY) + 4);
    n_files = 0;
    cr_assert(any_file_contains(cache, TEST_KEY, &n_files));
    unlink(probe);
    free(probe);

    kbs_stop(&s);
    kb_dataset_free(&d);
    kb_settings_free(&st);
    free(answers), free(cache), free(imgs);
    remove_tree(root);
}

Test(kb_build, failures_are_reported_and_the_rest_is_cached) {
    char root[] = "/tmp/kanoclip-kbbuild-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *cache = fs_join(root, "cache");
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = answer;
    s.script[0] = (KbsReply){.status = 400, .raw_body = "{\"error\":{\"message\":\"unknown model\"}}"};
    s.n_script = 1;
    KbSettings st;
    kb_settings_defaults(&st);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1/", s.port);
    kb_settings_set(&st.base_url, base);
    kb_settings_set(&st.cache_dir, cache);
    st.concurrency = 1;
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(NULL, "a,b,c", &d), 0);
    KbBuildStats stats;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), -1);
    cr_assert(strstr(err_msg(), "1 of 3 questions failed") && strstr(err_msg(), "llm a") &&
              strstr(err_msg(), "HTTP 400: unknown model"), "%s", err_msg());
    cr_assert_eq(stats.n_fetched, 2);
    // The rerun asks only the failed question.
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());
    cr_assert_eq(stats.n_fetched, 1);
    cr_assert_eq(kbs_requests(&s), 4);
    kbs_stop(&s);
    kb_dataset_free(&d);
    kb_settings_free(&st);
    free(cache);
    remove_tree(root);
}

// A cached answer that does not read (here truncated, as a full disk or a killed editor leaves it) is not counted
// as present: offline names the file, online asks that one question again; `kb show`'s loader then reads it.
Test(kb_build, truncated_cached_answer_is_not_counted) {
    char root[] = "/tmp/kanoclip-kbbuild-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *cache = fs_join(root, "cache"), *answers = fs_join(cache, "answers");
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = answer;
    KbSettings st;
    kb_settings_defaults(&st);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", s.port);
    kb_settings_set(&st.base_url, base);
    kb_settings_set(&st.cache_dir, cache);
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(NULL, "a,b", &d), 0);
    KbBuildStats stats;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());
    cr_assert_eq(kbs_requests(&s), 2);
    // truncate one answer file to its first half
    DIR *dir = opendir(answers);
    struct dirent *e;
    char *victim = NULL;
    while ((e = readdir(dir)) && !victim)
        if (strstr(e->d_name, ".json")) victim = fs_join(answers, e->d_name);
    closedir(dir);
    cr_assert_not_null(victim);
    size_t n = 0;
    char *text = fs_read_file(victim, &n);
    cr_assert_eq(fs_write_atomic(victim, text, n / 2), 0);
    free(text);
    KbClassTexts *t = NULL;
    cr_assert_eq(kb_load_all(&st, &d, &t), -1, "the loader (kb show, training) rejects the truncated file");

    st.offline = 1;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), -1, "offline counted a truncated answer as cached");
    cr_assert(strstr(err_msg(), "1 of 2 answers missing") && strstr(err_msg(), victim) &&
                  strstr(err_msg(), "unreadable"), "%s", err_msg());
    cr_assert_eq(kbs_requests(&s), 2);
    st.offline = 0;
    cr_assert_eq(kb_build(&st, &d, NULL, &stats), 0, "%s", err_msg());
    cr_assert_eq(kbs_requests(&s), 3, "only the unreadable answer is asked again");
    cr_assert_eq(stats.n_cached, 1);
    cr_assert_eq(stats.n_fetched, 1);
    cr_assert_eq(kb_load_all(&st, &d, &t), 0, "%s", err_msg());
    for (int c = 0; c < 2; c++) {
        cr_assert_eq(t[c].n, 5);
        kb_class_texts_free(&t[c]);
    }
    free(t);
    kbs_stop(&s);
    kb_dataset_free(&d);
    kb_settings_free(&st);
    free(victim), free(answers), free(cache);
    remove_tree(root);
}

// An answer with fewer descriptions than kb.llm_n is kept but said: on its progress line, and in the closing
// summary of every later build that finds it cached.
Test(kb_build, short_answer_is_named) {
    char root[] = "/tmp/kanoclip-kbbuild-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *cache = fs_join(root, "cache");
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = "1. A dark crack near the rim.";
    KbSettings st;
    kb_settings_defaults(&st);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", s.port);
    kb_settings_set(&st.base_url, base);
    kb_settings_set(&st.cache_dir, cache);
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(NULL, "bottle", &d), 0);
    KbBuildStats stats;
    for (int pass = 0; pass < 2; pass++) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        cr_assert_eq(kb_build(&st, &d, f, &stats), 0, "%s", err_msg());
        fclose(f);
        if (pass == 0) cr_assert(strstr(out, "llm bottle: only 1 of 5 descriptions (kb.llm_n)"), "%s", out);
        cr_assert(strstr(out, "1 answer holds fewer descriptions than asked (kb.llm_n 5") &&
                      strstr(out, "llm bottle (1 of 5)"), "pass %d: %s", pass, out);
        free(out);
    }
    cr_assert_eq(kbs_requests(&s), 1);
    kbs_stop(&s);
    kb_dataset_free(&d);
    kb_settings_free(&st);
    free(cache);
    remove_tree(root);
}

// Runs build/kanoclip with args (args[0] = "build/kanoclip"); stderr goes to err_path. Returns the exit status.
static int run_kanoclip(char *const args[], const char *err_path) { return run_cli(args, NULL, NULL, err_path); }

Test(kb_build, the_command_twice_fills_then_only_reads_the_cache) {
    char root[] = "/tmp/kanoclip-kbcmd-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *imgs = make_images(root, 2);
    char *cache = fs_join(root, "cache");
    char *err = fs_join(root, "stderr.txt");
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = answer;
    setenv(TEST_KEY_VAR, TEST_KEY, 1);
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", s.port);
    char *args[] = {"build/kanoclip", "kb", "build", "--base-url", base, "--model", "loopback-model",
                    "--dataset-type", "mvtec", "--images", imgs, "--cache-dir", cache, "--api-key-env",
                    TEST_KEY_VAR, "--concurrency", "2", NULL};
    cr_assert_eq(run_kanoclip(args, err), 0, "%s", fs_read_file(err, NULL));
    cr_assert_eq(kbs_requests(&s), 6, "2 classes: 2 LLM + 4 VQA questions");
    char *log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "6 questions (2 llm, 4 vqa) for 2 classes; 0 cached"), "%s", log);
    cr_assert(strstr(log, "[6/6]"), "%s", log);
    cr_assert_null(strstr(log, TEST_KEY), "the key is not logged");
    free(log);

    cr_assert_eq(run_kanoclip(args, err), 0, "%s", fs_read_file(err, NULL));
    cr_assert_eq(kbs_requests(&s), 6, "the second run sends no request");
    log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "6 cached") && strstr(log, "0 to ask"), "%s", log);
    free(log);

    // `kb show` prints the fetched texts per class as JSON.
    char *out = fs_join(root, "show.json");
    char *show[] = {"/bin/sh", "-c", NULL, NULL};
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "build/kanoclip kb show --model loopback-model --images '%s' --cache-dir '%s' > '%s'",
             imgs, cache, out);
    show[2] = cmd;
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, "/bin/sh", NULL, NULL, show, environ), 0);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *json = fs_read_file(out, NULL);
    cr_assert(strstr(json, "\"llm_source\":\t\"fetched\"") && strstr(json, "A brown stain at the centre."), "%s", json);
    free(json);

    // Bad usage: one line, exit 2.
    char *bad[] = {"build/kanoclip", "kb", "build", "--concurrency", NULL};
    cr_assert_eq(run_kanoclip(bad, err), 2);
    kbs_stop(&s);
    free(out), free(err), free(cache), free(imgs);
    remove_tree(root);
}

// The dataset seam: kb_dataset_load reads a synthetic MVTec-layout dataset through the mvtec reader (classes in the
// reader's order with its prompt names, anomalous test images grouped by class), and `kanoclip kb build CONFIG`
// takes the dataset from data.train and the endpoint from kb:, fills the cache, and a second run sends nothing.
Test(kb_build, config_and_reader_on_a_synthetic_dataset) {
    char root[] = "/tmp/kanoclip-kbcfg-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char *synth = fs_join(root, "synth"), *cache = fs_join(root, "cache"), *err = fs_join(root, "stderr.txt");
    SynthOptions o = {.out = synth, .layout = "mvtec", .n_classes = 2, .seed = 3, .size = 32, .n_test_normal = 1,
                      .n_test_anomalous = 3, .n_train_normal = 1};
    cr_assert_eq(synth_write(&o), 0, "%s", err_msg());

    KbDataset d;
    cr_assert_eq(kb_dataset_load("mvtec", synth, &d), 0, "%s", err_msg());
    cr_assert_str_eq(d.type, "mvtec");
    cr_assert_eq(d.n_classes, 2);
    const char *a = synth_class_name(0), *b = synth_class_name(1);
    const char *first = strcmp(a, b) < 0 ? a : b, *second = strcmp(a, b) < 0 ? b : a;
    cr_assert_str_eq(d.classes[0], first);
    cr_assert_str_eq(d.classes[1], second);
    char *words = dataset_prompt_from_name(first);
    cr_assert_str_eq(d.prompt_names[0], words);
    cr_assert_eq(d.n_images, 6, "3 anomalous test images per class; normal and train images are not asked about");
    for (int i = 0; i < d.n_images; i++) {
        const KbImage *im = &d.images[i];
        cr_assert_str_eq(im->class_name, d.classes[i / 3]);
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s/test/", im->class_name);
        cr_assert(!strncmp(im->rel, prefix, strlen(prefix)) && !strstr(im->rel, "/good/"), "%s", im->rel);
        cr_assert(fs_exists(im->path), "%s", im->path);
        if (i % 3) cr_assert_lt(strcmp(d.images[i - 1].rel, im->rel), 0, "sorted within a class");
    }
    kb_dataset_free(&d);
    cr_assert_eq(kb_dataset_load("nosuchtype", synth, &d), -1);
    cr_assert(strstr(err_msg(), "nosuchtype"), "%s", err_msg());
    char *missing = fs_join(root, "missing");
    cr_assert_eq(kb_dataset_load("mvtec", missing, &d), -1);
    cr_assert(strstr(err_msg(), missing), "%s", err_msg());
    free(missing);

    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = answer;
    char *cfg = fs_join(root, "exp.yaml");
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "data:\n  train:\n    type: mvtec\n    root: \"%s\"\n"
                     "kb:\n  base_url: \"http://127.0.0.1:%d/v1\"\n  model: loopback-model\n  cache_dir: \"%s\"\n"
                     "  concurrency: 2\n  backoff_initial_s: 0.01\n",
                     synth, s.port, cache);
    cr_assert_eq(fs_write_atomic(cfg, text, (size_t)n), 0);
    char *args[] = {"build/kanoclip", "kb", "build", cfg, NULL};
    cr_assert_eq(run_kanoclip(args, err), 0, "%s", fs_read_file(err, NULL));
    cr_assert_eq(kbs_requests(&s), 8, "2 LLM + 6 VQA questions");
    char *answers = fs_join(cache, "answers");
    cr_assert_eq(count_files(answers), 8);
    // The LLM question names the class by the reader's prompt name (no shipped entry for synthetic classes).
    char needle[256];
    snprintf(needle, sizeof needle, "abnormal image of %s looks like", words);
    int n_files = 0;
    cr_assert(any_file_contains(answers, needle, &n_files), "no question about '%s'", words);

    cr_assert_eq(run_kanoclip(args, err), 0, "%s", fs_read_file(err, NULL));
    cr_assert_eq(kbs_requests(&s), 8, "the second run sends no request");
    char *log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "8 cached") && strstr(log, "0 to ask"), "%s", log);
    free(log);
    // Overrides after CONFIG reach the settings: without VQA only the (cached) LLM questions remain.
    char *args2[] = {"build/kanoclip", "kb", "build", cfg, "kb.vqa=false", NULL};
    cr_assert_eq(run_kanoclip(args2, err), 0, "%s", fs_read_file(err, NULL));
    log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "2 questions (2 llm, 0 vqa)"), "%s", log);
    free(log);
    cr_assert_eq(kbs_requests(&s), 8);
    // A bad key in the config: one line naming it, exit 1.
    n = snprintf(text, sizeof text, "kb:\n  concurency: 2\n");
    fs_write_atomic(cfg, text, (size_t)n);
    cr_assert_eq(run_kanoclip(args, err), 1);
    log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "concurency"), "%s", log);
    free(log);

    kbs_stop(&s);
    free(words), free(answers), free(cfg), free(err), free(cache), free(synth);
    remove_tree(root);
}
