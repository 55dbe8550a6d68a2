// Sharded feature extraction. The cache layer: shard ranges at batch boundaries; four shards merged into the
// cache equal, byte for byte, the cache one process writes; a missing shard, a shard still being written, a shard
// of another config, dataset or image list, and the half shard a killed writer leaves are refused, naming the
// shard file, before anything is written. The command: `kanoclip features --shard I/4` four times, then the run
// merges the shards into the cache `kanoclip features` writes in one process; a missing shard stops the run with
// one line naming it; the settings and the option are checked.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <glob.h>
#include <hdf5.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "experiment_test_util.h"
#include "h5_compare.h"
#include "harness/cache/cache_feature.h"
#include "harness/cache/cache_h5.h"
#include "harness/cache/feature_shards.h"
#include "harness/run/log.h"
#include "run_cli.h"
#include "tmpdir.h"

static char dir[64];
static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-shards-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    log_set_echo(0);
}
static void teardown(void) { tmpdir_remove(dir); }
TestSuite(shards, .init = setup, .fini = teardown);

// ---- the cache layer: a key over N images whose features are a function of (image, stage)

enum { T = 17, D = 24, P = 8, N = 10, BATCH = 2 };
static const int layers[2] = {6, 12};
static char hashes[N][65];
static const char *hash_ptrs[N];

static FeatureCacheKey make_key(void) {
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "image %d", i);
        sha256_hex(text, strlen(text), hashes[i]);
        hash_ptrs[i] = hashes[i];
    }
    FeatureCacheKey k = {.model_hash = "m0", .preprocess = "bicubic", .dataset = "mvtec:abc", .code_version = "1",
                         .input_size = 518, .n_layers = 2, .layers = layers, .vv_from = 6, .n_images = N,
                         .tokens = T, .width = D, .global_dim = P, .image_hashes = hash_ptrs};
    return k;
}

// Image i's features (float16-exact values), stage s; FEATURE_GLOBAL: the global feature.
static void features(int i, int s, float *out, int n) {
    for (int j = 0; j < n; j++) out[j] = (float)((i * 7 + (s + 2) * 3 + j) % 64 - 32) / 8.0f;
}

// Puts dataset images [first + from, first + to) as fc's images [from, to).
static void fill(FeatureCache *fc, int first, int from, int to) {
    float buf[T * D];
    for (int i = from; i < to; i++) {
        for (int s = 0; s < 2; s++) {
            features(first + i, s, buf, T * D);
            cr_assert_eq(feature_cache_put(fc, i, s, buf), 0, "%s", err_msg());
        }
        features(first + i, FEATURE_GLOBAL, buf, P);
        cr_assert_eq(feature_cache_put(fc, i, FEATURE_GLOBAL, buf), 0, "%s", err_msg());
        cr_assert_eq(feature_cache_mark_done(fc, i), 0, "%s", err_msg());
    }
}

// The cache one process writes, at DIR/NAME.
static char *write_whole(const char *name, const FeatureCacheKey *k) {
    char *path = fs_join(dir, name);
    FeatureCache *fc = feature_cache_open(path, k);
    cr_assert_not_null(fc, "%s", err_msg());
    fill(fc, 0, 0, k->n_images);
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    feature_cache_close(fc);
    return path;
}

// Shard s of n of the cache at path, written completely.
static void write_shard(const char *path, const FeatureCacheKey *k, int s, int n, int batch) {
    int first = -1, count = -1;
    FeatureCache *fc = feature_shard_open(path, k, s, n, batch, &first, &count);
    cr_assert_not_null(fc, "%s", err_msg());
    fill(fc, first, 0, count);
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    feature_cache_close(fc);
}

static char *shard_file(const char *path, int s, int n) { return feature_shard_path(path, s, n); }

// a and b hold the same features, attributes and bytes.
static void same_cache(const char *a, const char *b, const FeatureCacheKey *k) {
    FeatureCache *ca = feature_cache_open_read(a, k), *cb = feature_cache_open_read(b, k);
    cr_assert_not_null(ca, "%s", err_msg());
    cr_assert_not_null(cb, "%s", err_msg());
    float fa[T * D], fb[T * D];
    for (int i = 0; i < k->n_images; i++)
        for (int s = FEATURE_GLOBAL; s < 2; s++) {
            cr_assert_eq(feature_cache_get(ca, i, s, fa), 0, "%s", err_msg());
            cr_assert_eq(feature_cache_get(cb, i, s, fb), 0, "%s", err_msg());
            cr_assert_arr_eq(fa, fb, sizeof(float) * (s == FEATURE_GLOBAL ? P : T * D), "image %d stage %d", i, s);
        }
    feature_cache_close(ca);
    feature_cache_close(cb);
    h5_assert_same_attributes(a, b);
    assert_same_bytes(a, b);
}

Test(shards, ranges_cover_the_images_once_at_batch_boundaries) {
    const int cases[][3] = {{10, 4, 2}, {48, 4, 8}, {12, 4, 8}, {3, 4, 1}, {0, 4, 8}, {1000, 7, 16}, {5, 1, 8}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n_images = cases[c][0], n = cases[c][1], batch = cases[c][2], next = 0, nonempty = 0;
        for (int s = 0; s < n; s++) {
            int first, count;
            feature_shard_range(n_images, s, n, batch, &first, &count);
            cr_assert_eq(first, next, "%d images, shard %d of %d: starts at %d, not %d", n_images, s, n, first, next);
            cr_assert_geq(count, 0);
            cr_assert(first % batch == 0, "shard %d starts inside a batch (%d)", s, first);
            next = first + count;
            nonempty += count > 0;
        }
        cr_assert_eq(next, n_images, "every image in exactly one shard");
        int batches = (n_images + batch - 1) / batch;
        cr_assert_eq(nonempty, batches < n ? batches : n, "%d batches over %d shards", batches, n);
    }
}

Test(shards, four_merged_shards_are_the_bytes_of_the_one_process_cache) {
    FeatureCacheKey k = make_key();
    char *whole = write_whole("whole.h5", &k), *path = fs_join(dir, "merged.h5");
    for (int s = 0; s < 4; s++) write_shard(path, &k, s, 4, BATCH);
    int first, count;
    feature_shard_range(N, 3, 4, BATCH, &first, &count);
    cr_assert(first == 6 && count == 4, "5 batches of 2 over 4 shards: the last holds 2 (%d, %d)", first, count);
    // a shard file records which part it holds
    char *s3 = shard_file(path, 3, 4), text[64];
    hid_t f = H5Fopen(s3, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "%s", s3);
    const char *want[][2] = {{"shard_index", "3"}, {"shard_count", "4"}, {"first_image", "6"}, {"n_images", "4"},
                             {"dataset", "mvtec:abc"}, {"model_hash", "m0"}, {"layers", "6,12"}, {"vv_from", "6"},
                             {"input_size", "518"}, {"code_version", "1"}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        cr_assert_eq(h5_get_attr_text(f, want[i][0], text, sizeof text), 0, "%s: no attribute %s", s3, want[i][0]);
        cr_assert_str_eq(text, want[i][1], "%s: attribute %s", s3, want[i][0]);
    }
    H5Fclose(f);

    cr_assert(feature_shards_present(path, 4));
    cr_assert_eq(feature_shards_merge(path, &k, 4, BATCH), 0, "%s", err_msg());
    same_cache(path, whole, &k);
    for (int s = 0; s < 4; s++) {
        char *sp = shard_file(path, s, 4);
        cr_assert(!fs_exists(sp), "%s is removed after the merge", sp);
        free(sp);
    }
    cr_assert(!feature_shards_present(path, 4));
    cr_assert_eq(feature_shards_merge(path, &k, 4, BATCH), 0, "merging a complete cache again is a no-op");
    free(s3);
    free(whole);
    free(path);
}

Test(shards, more_shards_than_batches_leaves_some_empty_and_still_merges) {
    FeatureCacheKey k = make_key();
    char *whole = write_whole("whole.h5", &k), *path = fs_join(dir, "merged.h5");
    // 10 images in batches of 4: 3 batches over 4 shards, so one shard holds none
    int empty = 0;
    for (int s = 0; s < 4; s++) {
        int first, count;
        feature_shard_range(N, s, 4, 4, &first, &count);
        empty += count == 0;
        write_shard(path, &k, s, 4, 4);
    }
    cr_assert_eq(empty, 1);
    cr_assert_eq(feature_shards_merge(path, &k, 4, 4), 0, "%s", err_msg());
    same_cache(path, whole, &k);
    free(whole);
    free(path);
}

// The merge fails naming shard s's file and `what`; neither the cache nor its .partial was begun.
static void refused(const char *path, const FeatureCacheKey *k, int s, const char *what) {
    cr_assert_eq(feature_shards_merge(path, k, 4, BATCH), -1, "the merge is refused (%s)", what);
    char *sp = shard_file(path, s, 4), head[512];
    snprintf(head, sizeof head, "%s: ", sp);
    cr_assert(!strncmp(err_msg(), head, strlen(head)), "the message begins with the shard file: %s", err_msg());
    cr_assert(strstr(err_msg(), what), "'%s' in: %s", what, err_msg());
    cr_assert(!strchr(err_msg(), '\n'), "one line: %s", err_msg());
    char partial[512];
    snprintf(partial, sizeof partial, "%s.partial", path);
    cr_assert(!fs_exists(path) && !fs_exists(partial), "nothing written before every shard was checked");
    free(sp);
}

Test(shards, a_missing_shard_or_one_still_being_written_is_refused_naming_it) {
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "c.h5");
    for (int s = 0; s < 4; s++)
        if (s != 2) write_shard(path, &k, s, 4, BATCH);
    refused(path, &k, 2, "shard 2 of 4 is missing");
    // its writer at work: the lock of the shard file is held (as features_extract_shard holds it)
    char *sp = shard_file(path, 2, 4), lock_path[512], msg[64];
    snprintf(lock_path, sizeof lock_path, "%s.lock", sp);
    FileLock lock;
    cr_assert_eq(file_lock(lock_path, 0, &lock, NULL), 0, "%s", err_msg());
    snprintf(msg, sizeof msg, "still being extracted (pid %ld", (long)getpid());
    refused(path, &k, 2, msg);
    file_unlock(&lock);
    write_shard(path, &k, 2, 4, BATCH);
    cr_assert_eq(feature_shards_merge(path, &k, 4, BATCH), 0, "%s", err_msg());
    free(sp);
    free(path);
}

Test(shards, a_shard_of_another_config_dataset_or_split_is_refused_naming_it) {
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "c.h5"), *other = fs_join(dir, "other.h5");
    for (int s = 0; s < 4; s++) write_shard(path, &k, s, 4, BATCH);
    char *s1 = shard_file(path, 1, 4), *o1 = shard_file(other, 1, 4);
    // A shard made for another config (input size, layers), dataset (manifest), image list, or another split
    // (batch size), planted in place of shard 1.
    static const int layers3[3] = {6, 12, 18};
    FeatureCacheKey bad[5] = {k, k, k, k, k};
    bad[0].input_size = 336;
    bad[1].n_layers = 3, bad[1].layers = layers3;
    bad[2].dataset = "mvtec:def";
    static char other_hash[65];
    static const char *other_hashes[N];
    sha256_hex("another image", 13, other_hash);
    for (int i = 0; i < N; i++) other_hashes[i] = i == 3 ? other_hash : hash_ptrs[i];
    bad[3].image_hashes = other_hashes;
    // (made with batches of 3, shard 1 holds images 3..5)
    const char *what[5] = {"attribute input_size is '336', expected '518'", "attribute layers is '6,12,18', expected '6,12'",
                           "attribute dataset is 'mvtec:def', expected 'mvtec:abc'", "index: image 1 content hash",
                           "attribute n_images is '3', expected '2'"};
    for (int b = 0; b < 5; b++) {
        unlink(o1);
        int batch = b == 4 ? 3 : BATCH;
        write_shard(other, &bad[b], 1, 4, batch);
        cr_assert_eq(rename(o1, s1), 0);
        refused(path, &k, 1, what[b]);
        cr_assert(strstr(err_msg(), "not shard 1 of 4 of this cache"), "%s", err_msg());
    }
    write_shard(path, &k, 1, 4, BATCH);
    cr_assert_eq(feature_shards_merge(path, &k, 4, BATCH), 0, "%s", err_msg());
    free(s1);
    free(o1);
    free(other);
    free(path);
}

Test(shards, a_killed_shard_writer_leaves_no_half_shard) {
    FeatureCacheKey k = make_key();
    char *whole = write_whole("whole.h5", &k), *path = fs_join(dir, "c.h5");
    for (int s = 0; s < 3; s++) write_shard(path, &k, s, 4, BATCH);
    // Shard 3 (images 6..9): its writer is killed (SIGKILL: no handler, no flush) after two of its four images.
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int first, count;
        FeatureCache *fc = feature_shard_open(path, &k, 3, 4, BATCH, &first, &count);
        if (!fc) _exit(1);
        feature_cache_set_flush_every(fc, 1);
        fill(fc, first, 0, 2);
        raise(SIGKILL);
        _exit(2);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the writer was killed");
    char *s3 = shard_file(path, 3, 4), partial[512];
    snprintf(partial, sizeof partial, "%s.partial", s3);
    cr_assert(!fs_exists(s3), "no shard file under its final name");
    cr_assert(fs_exists(partial), "its progress is in %s", partial);
    refused(path, &k, 3, "shard 3 of 4 is unfinished (only ");
    // The task run again resumes the shard where it stopped, then the merge goes through.
    int first, count;
    FeatureCache *fc = feature_shard_open(path, &k, 3, 4, BATCH, &first, &count);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert_eq(feature_cache_n_done(fc), 2, "the two images flushed before the kill are kept");
    fill(fc, first, 2, count);
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    feature_cache_close(fc);
    cr_assert(!fs_exists(partial));
    cr_assert_eq(feature_shards_merge(path, &k, 4, BATCH), 0, "%s", err_msg());
    // A resumed shard holds the same features; the merged cache is still the one-process cache's bytes.
    same_cache(path, whole, &k);
    free(s3);
    free(whole);
    free(path);
}

// ---- the command: the shrunk demo (tests/experiment_test_util.h) with everything under ROOT

// build/kanoclip CMD experiments/demo.yaml <the shrunk demo under root> extra..., stderr to ROOT/err.txt; the
// exit status.
static int demo_cli(const char *root, const char *cmd, const char *const *extra, int n_extra) {
    static char ov[N_DEMO_PATHS][512];
    char bin[PATH_MAX], err[256];
    cr_assert_not_null(realpath("build/kanoclip", bin), "build/kanoclip is built by make test");
    char *argv[64];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = (char *)cmd;
    argv[n++] = "experiments/demo.yaml";
    for (size_t i = 0; i < N_DEMO_PATHS; i++) {
        snprintf(ov[i], sizeof ov[i], DEMO_PATH_FMT[i], root);
        argv[n++] = ov[i];
    }
    for (size_t i = 0; i < N_DEMO_TINY; i++) argv[n++] = (char *)DEMO_TINY[i];
    argv[n++] = "eval.batch_size=2";  // 6 batches of the 12 eval images, 9 of the 18 training ones: 4 real shards
    argv[n++] = "--quiet";
    for (int i = 0; i < n_extra; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    fs_mkdirs(root);
    snprintf(err, sizeof err, "%s/err.txt", root);
    return run_cli(argv, NULL, "/dev/null", err);
}

static char *err_of(const char *root) { return read_in(root, "err.txt", NULL); }

// The feature cache files under ROOT/cache/features (*.h5), sorted, space-separated (malloc'd).
static char *cache_files(const char *root) {
    char pat[256];
    snprintf(pat, sizeof pat, "%s/cache/features/*.h5*", root);
    glob_t g;
    char *out = calloc(1, 4096);
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *leaf = strrchr(g.gl_pathv[i], '/') + 1;
            if (strstr(leaf, ".lock")) continue;
            snprintf(out + strlen(out), 4096 - strlen(out), "%s%s", *out ? " " : "", leaf);
        }
        globfree(&g);
    }
    return out;
}

Test(shards, four_shard_commands_then_the_run_merges_the_one_process_cache) {
    char one[128], four[128];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(four, sizeof four, "%s/four", dir);
    cr_assert_eq(demo_cli(one, "features", NULL, 0), 0, "%s", err_of(one));
    char *names = cache_files(one);
    cr_assert(strstr(names, "synthetic-train-mvtec-") && strstr(names, "synthetic-mvtec-"), "two caches: %s", names);
    for (int s = 0; s < 4; s++) {
        char shard[16];
        snprintf(shard, sizeof shard, "%d/4", s);
        const char *extra[] = {"cache.shards=4", "--shard", shard};
        cr_assert_eq(demo_cli(four, "features", extra, 3), 0, "shard %d: %s", s, err_of(four));
    }
    char *shards = cache_files(four);
    for (int s = 0; s < 4; s++) {
        char leaf[32];
        snprintf(leaf, sizeof leaf, ".h5.shard-%d-of-4 ", s);
        char *with_space = NULL;
        cr_assert(asprintf(&with_space, "%s ", shards) > 0);
        cr_assert(strstr(with_space, leaf), "shard %d of each dataset: %s", s, shards);
        free(with_space);
    }
    cr_assert(!strstr(shards, ".partial"), "%s", shards);
    // the run merges (and reuses); its log says so
    const char *extra[] = {"cache.shards=4", "run.name=merged"};
    cr_assert_eq(demo_cli(four, "experiment", extra, 2), 0, "%s", err_of(four));
    char *run = run_folder_in(four, "merged"), *log = read_in(run, "log.txt", NULL);
    cr_assert(strstr(log, "merged from 4 shards (18 images)") && strstr(log, "merged from 4 shards (12 images)"), "%s", log);
    cr_assert(!strstr(log, "images to extract"), "the run extracts nothing: %s", log);
    char *merged = cache_files(four);
    cr_assert_str_eq(merged, names, "the shard files are gone, the caches are there");
    for (char *leaf = strtok(names, " "); leaf; leaf = strtok(NULL, " ")) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/cache/features/%s", one, leaf);
        snprintf(b, sizeof b, "%s/cache/features/%s", four, leaf);
        h5_assert_same_attributes(a, b);
        assert_same_bytes(a, b);
    }
    free(run);
    free(log);
    free(merged);
    free(shards);
    free(names);
}

Test(shards, a_run_missing_a_shard_stops_with_one_line_naming_it) {
    char root[128];
    snprintf(root, sizeof root, "%s/r", dir);
    for (int s = 0; s < 4; s++) {
        if (s == 1) continue;
        char shard[16];
        snprintf(shard, sizeof shard, "%d/4", s);
        const char *extra[] = {"cache.shards=4", "--shard", shard};
        cr_assert_eq(demo_cli(root, "features", extra, 3), 0, "shard %d: %s", s, err_of(root));
    }
    const char *extra[] = {"cache.shards=4"};
    cr_assert_eq(demo_cli(root, "experiment", extra, 1), 1);
    char *err = err_of(root);
    cr_assert(!strncmp(err, "kanoclip: features of synthetic-train: ", 39) && strstr(err, ".h5.shard-1-of-4: shard 1 of 4 is missing") &&
                  strstr(err, "kanoclip features CONFIG --shard I/4"), "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(err);
}

Test(shards, settings_and_the_option_are_checked) {
    char root[128];
    snprintf(root, sizeof root, "%s/s", dir);
    struct { const char *args[4]; int n, rc; const char *what; } cases[] = {
        {{"cache.shards=0"}, 1, 1, "cache.shards: 0"},
        {{"cache.shards=1001"}, 1, 1, "cache.shards: 1001"},
        {{"cache.shards=4", "cache.features=false"}, 2, 1, "cache.shards: 4, but cache.features is false"},
        {{"cache.shards=4", "--shard", "1/3"}, 3, 1, "--shard 1/3: the config's cache.shards is 4"},
        {{"cache.shards=4", "--shard", "4/4"}, 3, 2, "--shard needs I/N with 0 <= I < N"},
        {{"cache.shards=4", "--shard", "x"}, 3, 2, "--shard needs I/N"},
        {{"--shard"}, 1, 2, "--shard needs I/N"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int rc = demo_cli(root, "features", cases[c].args, cases[c].n);
        char *err = err_of(root);
        cr_assert_eq(rc, cases[c].rc, "case %zu: exit %d: %s", c, rc, err);
        cr_assert(strstr(err, cases[c].what), "case %zu: '%s' in: %s", c, cases[c].what, err);
        free(err);
    }
    char *names = cache_files(root);
    cr_assert_str_eq(names, "", "nothing extracted");
    free(names);
}
