// The shared helpers: error messages, atomic writes, folders, SHA-256.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

Test(common, error_wrap_prefixes_message) {
    err_set("tensor %s missing", "w");
    err_wrap("model.safetensors: ");
    cr_assert_str_eq(err_msg(), "model.safetensors: tensor w missing");
}

// A message that quotes the current one (err_set("...: %s", err_msg())) must read as written, not as the buffer
// overwritten while it is being read (this used to give "model.checkpoint: model.checkpoint: sors: ...").
Test(common, error_set_may_quote_the_current_message) {
    err_set("%s: mask not found", "wood/test/scratch/021.png");
    err_set("data.train: dataset %s: %s", "mvtec", err_msg());
    cr_assert_str_eq(err_msg(), "data.train: dataset mvtec: wood/test/scratch/021.png: mask not found");
    // at full length: the quoted message is cut at the buffer's end, never read or written past it
    char long_msg[3000];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    err_set("%s", long_msg);
    size_t n = strlen(err_msg());
    cr_assert(n > 1000 && n < sizeof long_msg, "%zu", n);
    err_set("model.checkpoint: %s", err_msg());
    cr_assert_eq(strlen(err_msg()), n, "the message keeps the buffer's length");
    cr_assert_eq(strncmp(err_msg(), "model.checkpoint: xxxx", 22), 0, "%.40s", err_msg());
    cr_assert_eq(strspn(err_msg() + 18, "x"), n - 18);
    err_wrap("reading %s: ", "model.safetensors");
    cr_assert_eq(strncmp(err_msg(), "reading model.safetensors: model.checkpoint: xxx", 48), 0, "%.60s", err_msg());
}

Test(common, atomic_write_replaces_whole_file) {
    char dir[] = "/tmp/kanoclip-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *sub = fs_join(dir, "a/b/c");
    cr_assert_eq(fs_mkdirs(sub), 0, "%s", err_msg());
    char *path = fs_join(sub, "f.txt");
    cr_assert_eq(fs_write_atomic(path, "first", 5), 0);
    cr_assert_eq(fs_write_atomic(path, "second!", 7), 0);
    size_t n = 0;
    char *got = fs_read_file(path, &n);
    cr_assert_eq(n, 7);
    cr_assert_str_eq(got, "second!");
    free(got);
    cr_assert_null(fs_read_file("/nonexistent/x", NULL));
    cr_assert(strstr(err_msg(), "/nonexistent/x") != NULL);
    free(path);
    free(sub);
}

// A full disk names the system's reason. The temporary file of the atomic write is made /dev/full, which refuses
// every write with ENOSPC; the target is left as it was.
Test(common, atomic_write_on_full_disk_names_errno) {
    char dir[] = "/tmp/kanoclip-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *path = fs_join(dir, "metrics.json"), *tmp = fs_temp_name(path);
    cr_assert_eq(symlink("/dev/full", tmp), 0);
    cr_assert_eq(fs_write_atomic(path, "{}", 2), -1, "a write into /dev/full succeeded");
    cr_assert(strstr(err_msg(), "metrics.json") && strstr(err_msg(), "No space left on device"), "%s", err_msg());
    cr_assert(!fs_exists(path));
    unlink(tmp);
    rmdir(dir);
    free(tmp);
    free(path);
}

Test(common, sha256_known_vector) {
    char hex[65];
    sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
