// HDF5 caches: float16 round trip against numpy, attribute/index mismatch -> rebuild with the reason logged,
// resume after a killed extraction, the text-embedding cache.
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "tmpdir.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "harness/cache/cache_embed.h"
#include "harness/cache/cache_feature.h"
#include "harness/cache/cache_float16.h"
#include "harness/cache/cache_h5.h"
#include "harness/cache/h5_writer.h"
#include "harness/run/log.h"

static char dir[64];
static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-cache-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    log_set_echo(0);
}
static void teardown(void) { tmpdir_remove(dir); }
TestSuite(cache, .init = setup, .fini = teardown);

enum { T = 37, D = 24, P = 8, N = 6 };
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
    FeatureCacheKey k = {.model_hash = "m0", .preprocess = "bicubic", .dataset = "visa:abc", .code_version = "1",
                         .input_size = 518, .n_layers = 2, .layers = layers, .vv_from = 6, .n_images = N,
                         .tokens = T, .width = D, .global_dim = P, .image_hashes = hash_ptrs};
    return k;
}

// Deterministic features of image i, stage s (values representable in float16, so the round trip is exact).
static void features(int i, int s, float *out, int n) {
    for (int j = 0; j < n; j++) out[j] = (float)((i * 7 + s * 3 + j) % 64 - 32) / 8.0f;
}

static void fill(FeatureCache *fc, int from, int to) {
    float buf[T * D];
    for (int i = from; i < to; i++) {
        for (int s = 0; s < 2; s++) {
            features(i, s, buf, T * D);
            cr_assert_eq(feature_cache_put(fc, i, s, buf), 0, "%s", err_msg());
        }
        features(i, 9, buf, P);
        cr_assert_eq(feature_cache_put(fc, i, FEATURE_GLOBAL, buf), 0, "%s", err_msg());
        cr_assert_eq(feature_cache_mark_done(fc, i), 0, "%s", err_msg());
    }
}

static void check_all(FeatureCache *fc) {
    float got[T * D], want[T * D];
    for (int i = 0; i < N; i++) {
        for (int s = 0; s < 2; s++) {
            cr_assert_eq(feature_cache_get(fc, i, s, got), 0, "%s", err_msg());
            features(i, s, want, T * D);
            cr_assert_arr_eq(got, want, sizeof got, "image %d stage %d", i, s);
        }
        cr_assert_eq(feature_cache_get(fc, i, FEATURE_GLOBAL, got), 0);
        features(i, 9, want, P);
        cr_assert_arr_eq(got, want, sizeof(float) * P);
    }
}

static char *log_text(const char *path) {
    log_close();
    char *t = fs_read_file(path, NULL);
    cr_assert_not_null(t);
    return t;
}

Test(cache, float16_round_trip_matches_numpy) {
    // numpy's float16 rounding (tests/ref_cache.py) of values from 1e-7 to 65504.
    hid_t f = H5Fopen("build/fixtures/cache/f16.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "run make fixtures (tests/ref_cache.py)");
    float input[T * D], expect[T * D], via_h5py[T * D], got[T * D];
    hid_t d;
    d = H5Dopen2(f, "input", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, input);
    H5Dclose(d);
    d = H5Dopen2(f, "expect", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, expect);
    H5Dclose(d);
    // Our float16 file type is the one h5py writes, and reading h5py's float16 gives numpy's values.
    d = H5Dopen2(f, "h5py_f16", H5P_DEFAULT);
    hid_t ft = H5Dget_type(d), ours = h5_float16_type();
    cr_assert(H5Tequal(ft, ours) > 0, "h5py's float16 type differs from h5_float16_type()");
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, via_h5py);
    // Bit for bit: our float->half equals numpy's on every value.
    uint16_t bits[T * D];
    H5Dread(d, ours, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits);
    for (int j = 0; j < T * D; j++) {
        cr_assert_eq(float_to_half(input[j]), bits[j], "value %d: %g -> 0x%04x, numpy 0x%04x", j, input[j],
                     float_to_half(input[j]), bits[j]);
        cr_assert_eq(half_to_float(bits[j]), expect[j], "value %d", j);
    }
    cr_assert_eq(float_to_half(1e6f), 0x7c00, "overflow gives inf");
    cr_assert_eq(float_to_half(65519.0f), 0x7bff, "just below the rounding boundary: max half");
    cr_assert_eq(float_to_half(65520.0f), 0x7c00, "the boundary ties away to inf (even)");
    cr_assert(isnan(half_to_float(float_to_half(NAN))));
    H5Tclose(ft);
    H5Tclose(ours);
    H5Dclose(d);
    H5Fclose(f);
    cr_assert_arr_eq(via_h5py, expect, sizeof expect);

    // Through the cache: float32 in, float16 on disk, float32 out.
    FeatureCacheKey k = make_key();
    k.n_layers = 1;
    k.global_dim = 0;
    char *path = fs_join(dir, "f16.h5");
    FeatureCache *fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    for (int i = 0; i < N; i++) {
        cr_assert_eq(feature_cache_put(fc, i, 0, input), 0, "%s", err_msg());
        feature_cache_mark_done(fc, i);
    }
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    cr_assert_eq(feature_cache_get(fc, 3, 0, got), 0, "%s", err_msg());
    int mismatches = 0;
    double max_rel = 0;
    for (int j = 0; j < T * D; j++) {
        if (got[j] != expect[j]) mismatches++;
        if (fabsf(input[j]) >= 6.103515625e-05f) {  // normal half range: relative error at most 2^-11
            double rel = fabs((double)got[j] - input[j]) / fabs((double)input[j]);
            if (rel > max_rel) max_rel = rel;
        } else {  // subnormal range: absolute error at most half the subnormal step 2^-25
            cr_assert_leq(fabs((double)got[j] - input[j]), ldexp(1.0, -25) + 1e-12, "value %d: %g -> %g", j, input[j], got[j]);
        }
    }
    cr_assert_eq(mismatches, 0, "%d of %d values differ from numpy's float16 rounding", mismatches, T * D);
    cr_assert_leq(max_rel, ldexp(1.0, -11), "max relative error %g", max_rel);
    feature_cache_close(fc);
    free(path);
}

Test(cache, complete_cache_is_reused) {
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "feat.h5");
    FeatureCache *fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert_eq(feature_cache_complete(fc), 0);
    fill(fc, 0, N);
    float buf[T * D];
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    cr_assert_eq(feature_cache_complete(fc), 1);
    check_all(fc);
    cr_assert_eq(feature_cache_put(fc, 0, 0, buf), -1, "a complete cache is read-only");
    feature_cache_close(fc);
    char *partial = fs_join(dir, "feat.h5.partial");
    cr_assert(fs_exists(path) && !fs_exists(partial), "the partial file was renamed into place");

    fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert_eq(feature_cache_complete(fc), 1);
    cr_assert_str_eq(feature_cache_reason(fc), "");
    check_all(fc);
    feature_cache_close(fc);
    free(partial);
    free(path);
}

Test(cache, attribute_mismatch_rebuilds_with_reason) {
    char *logp = fs_join(dir, "log.txt");
    log_open(logp);
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "feat.h5");
    FeatureCache *fc = feature_cache_open(path, &k);
    fill(fc, 0, N);
    cr_assert_eq(feature_cache_finish(fc), 0);
    feature_cache_close(fc);

    k.input_size = 336;
    fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert_eq(feature_cache_complete(fc), 0, "a mismatching cache is never used");
    cr_assert_eq(feature_cache_n_done(fc), 0);
    cr_assert_str_eq(feature_cache_reason(fc), "attribute input_size was '518', now '336'");
    fill(fc, 0, N);
    cr_assert_eq(feature_cache_finish(fc), 0);
    feature_cache_close(fc);
    fc = feature_cache_open(path, &k);
    cr_assert_eq(feature_cache_complete(fc), 1, "the rebuilt cache replaced the old one");
    feature_cache_close(fc);

    int other[2] = {6, 18};
    k.layers = other;
    fc = feature_cache_open(path, &k);
    cr_assert_str_eq(feature_cache_reason(fc), "attribute layers was '6,12', now '6,18'");
    feature_cache_close(fc);
    k.layers = layers;
    k.model_hash = "m1";
    fc = feature_cache_open(path, &k);
    cr_assert_str_eq(feature_cache_reason(fc), "attribute model_hash was 'm0', now 'm1'");
    feature_cache_close(fc);

    // The same key with one image changed: the index tells.
    k.input_size = 336;
    k.model_hash = "m0";
    unlink(path);
    char *partial = fs_join(dir, "feat.h5.partial");
    unlink(partial);
    fc = feature_cache_open(path, &k);
    fill(fc, 0, N);
    feature_cache_finish(fc);
    feature_cache_close(fc);
    sha256_hex("changed", 7, hashes[2]);
    fc = feature_cache_open(path, &k);
    cr_assert(strstr(feature_cache_reason(fc), "index: image 2 content hash was "), "%s", feature_cache_reason(fc));
    feature_cache_close(fc);

    char *text = log_text(logp);
    cr_assert(strstr(text, "attribute input_size was '518', now '336'; rebuilding"), "%s", text);
    cr_assert(strstr(text, path), "the log line names the file");
    free(text);
    free(partial);
    free(path);
    free(logp);
}

Test(cache, killed_extraction_resumes) {
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "feat.h5");
    pid_t pid = fork();
    if (pid == 0) {  // the extraction that gets killed: 5 images done, progress flushed every 2
        FeatureCache *fc = feature_cache_open(path, &k);
        if (!fc) _exit(3);
        feature_cache_set_flush_every(fc, 2);
        fill(fc, 0, 5);
        raise(SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child was killed");
    cr_assert(!fs_exists(path), "no finished file after a kill");

    char *logp = fs_join(dir, "log.txt");
    log_open(logp);
    FeatureCache *fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert_eq(feature_cache_complete(fc), 0);
    cr_assert_eq(feature_cache_n_done(fc), 4, "images 0-3 were flushed; image 4 was not");
    for (int i = 0; i < 4; i++) cr_assert(feature_cache_has(fc, i));
    cr_assert(!feature_cache_has(fc, 4) && !feature_cache_has(fc, 5));
    float got[T * D], want[T * D];
    cr_assert_eq(feature_cache_get(fc, 3, 1, got), 0, "%s", err_msg());
    features(3, 1, want, T * D);
    cr_assert_arr_eq(got, want, sizeof got, "data flushed before the kill is intact");
    cr_assert_eq(feature_cache_get(fc, 5, 0, got), -1, "an image not done cannot be read");
    cr_assert_eq(feature_cache_finish(fc), -1);
    cr_assert(strstr(err_msg(), "2 of 6 images are missing"), "%s", err_msg());
    fill(fc, 4, N);
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    check_all(fc);
    feature_cache_close(fc);
    char *text = log_text(logp);
    cr_assert(strstr(text, "resuming, 4 of 6 images already done"), "%s", text);
    free(text);
    free(logp);
    free(path);
}

Test(cache, damaged_partial_starts_over) {
    FeatureCacheKey k = make_key();
    char *path = fs_join(dir, "feat.h5");
    char *partial = fs_join(dir, "feat.h5.partial");
    fs_write_atomic(partial, "not hdf5 at all", 15);
    FeatureCache *fc = feature_cache_open(path, &k);
    cr_assert_not_null(fc, "%s", err_msg());
    cr_assert(strstr(feature_cache_reason(fc), "partial file cannot be opened"), "%s", feature_cache_reason(fc));
    fill(fc, 0, N);
    cr_assert_eq(feature_cache_finish(fc), 0, "%s", err_msg());
    feature_cache_close(fc);
    free(partial);
    free(path);
}

// Writes as much as writer `which` (0 the feature cache, 1 the embedding cache, 2 the maps writer) would under a
// 4 KiB file-size limit in a child process (SIGXFSZ ignored: the write()s fail with EFBIG, as they fail with ENOSPC
// on a full disk); returns the child's error message (malloc'd), or NULL when everything was written.
static char *refused_write_message(int which, const char *path, const char *errp) {
    FeatureCacheKey k = make_key();
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit lim = rl;
        lim.rlim_cur = 4096;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(3);
        int rc = 0;
        float buf[T * D] = {0}, global[P] = {0};
        if (which == 0) {
            FeatureCache *fc = feature_cache_open(path, &k);
            rc = fc ? 0 : -1;
            for (int i = 0; i < N && rc == 0; i++) {
                for (int s = 0; s < 2 && rc == 0; s++) rc = feature_cache_put(fc, i, s, buf);
                if (rc == 0) rc = feature_cache_put(fc, i, FEATURE_GLOBAL, global);
                if (rc == 0) feature_cache_mark_done(fc, i);
            }
            if (rc == 0) rc = feature_cache_finish(fc);
        } else if (which == 1) {
            EmbedCache *ec = embed_cache_open(path, "enc", T * D, "1");
            rc = ec ? 0 : -1;
            for (int i = 0; i < 8 && rc == 0; i++) {
                char text[32];
                snprintf(text, sizeof text, "description %d", i);
                rc = embed_cache_put(ec, text, buf);
            }
            if (rc == 0) rc = embed_cache_close(ec);
        } else {
            H5Writer *w = h5w_open(path);
            hsize_t dims[2] = {8, T * D};
            rc = w ? h5w_dataset(w, "maps", 2, dims) : -1;
            for (int i = 0; i < 8 && rc == 0; i++) rc = h5w_write_rows(w, "maps", i, 1, buf);
            if (w) rc = h5w_close(w, rc == 0) < 0 ? -1 : rc;
        }
        if (rc == 0) _exit(4);
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(fs_write_atomic(errp, err_msg(), strlen(err_msg())) == 0 ? 0 : 5);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "the child died (status %d)", status);
    if (WEXITSTATUS(status) == 4) return NULL;
    cr_assert_eq(WEXITSTATUS(status), 0, "child exit %d", WEXITSTATUS(status));
    return fs_read_file(errp, NULL);
}

// A write the file system refuses stops the caches and the maps writer with the system's reason named, not a bare
// "flush failed" or "cannot close".
Test(cache, refused_write_names_the_system_error) {
    const char *names[3] = {"feat.h5", "text-enc.h5", "maps.h5"};
    for (int which = 0; which < 3; which++) {
        char *path = fs_join(dir, names[which]), *errp = fs_join(dir, "err.txt");
        char *msg = refused_write_message(which, path, errp);
        cr_assert_not_null(msg, "%s: a 4 KiB file-size limit did not stop the writer", names[which]);
        cr_assert(strstr(msg, strerror(EFBIG)) && strstr(msg, names[which]), "%s", msg);
        free(msg);
        free(errp);
        free(path);
    }
}

Test(cache, bad_keys_are_refused) {
    FeatureCacheKey k = make_key();
    const char *bad[N] = {"short"};
    k.image_hashes = bad;
    char *path = fs_join(dir, "feat.h5");
    cr_assert_null(feature_cache_open(path, &k));
    cr_assert(strstr(err_msg(), "image 0: expected a 64-digit content hash"), "%s", err_msg());
    free(path);
}

Test(cache, embedding_cache_round_trip_and_encoder_change) {
    char *path = fs_join(dir, "emb.h5");
    enum { E = 5 };
    EmbedCache *ec = embed_cache_open(path, "enc-a", E, "1");
    cr_assert_not_null(ec, "%s", err_msg());
    float v[E], got[E];
    char text[64];
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < E; j++) v[j] = (float)(i * 0.37 + j * 1.1e-3);
        snprintf(text, sizeof text, "a photo of a damaged thing #%d", i);
        embed_cache_put(ec, text, v);
    }
    cr_assert_eq(embed_cache_get(ec, "never seen", got), 0);
    cr_assert_eq(embed_cache_close(ec), 0, "%s", err_msg());

    ec = embed_cache_open(path, "enc-a", E, "1");
    cr_assert_not_null(ec, "%s", err_msg());
    cr_assert_eq(embed_cache_size(ec), 200);
    for (int i = 0; i < 200; i += 17) {
        snprintf(text, sizeof text, "a photo of a damaged thing #%d", i);
        cr_assert_eq(embed_cache_get(ec, text, got), 1, "%s", text);
        for (int j = 0; j < E; j++) cr_assert_eq(got[j], (float)(i * 0.37 + j * 1.1e-3), "float32 kept exactly");
    }
    embed_cache_close(ec);

    ec = embed_cache_open(path, "enc-b", E, "1");
    cr_assert_eq(embed_cache_size(ec), 0, "another encoder: the cache starts empty");
    cr_assert_str_eq(embed_cache_reason(ec), "attribute encoder_hash was 'enc-a', now 'enc-b'");
    embed_cache_close(ec);
    ec = embed_cache_open(path, "enc-a", E, "1");
    cr_assert_eq(embed_cache_size(ec), 0, "and the next save replaced the old file");
    embed_cache_close(ec);
    free(path);
}
