// Test helpers: build dataset trees of empty (or small text) files in a temporary folder.
#ifndef TESTS_DATASETS_TREE_H
#define TESTS_DATASETS_TREE_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"

// A fresh temporary folder whose name has a space in it (paths with spaces must work everywhere).
static inline char *tree_tmpdir(void) {
    char tmpl[] = "/tmp/kanoclip ds-XXXXXX";
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d, "mkdtemp");
    return strdup(d);
}

// Creates root/rel (and its folders) with the given content ("" for an empty file).
static inline void tree_put(const char *root, const char *rel, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    cr_assert_eq(fs_mkdirs(path), 0, "%s", err_msg());
    *slash = '/';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0, "cannot create %s", path);
    size_t n = strlen(content);
    if (n) cr_assert_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
}

static inline void tree_touch(const char *root, const char *rel) { tree_put(root, rel, ""); }

static inline void tree_touchf(const char *root, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tree_touchf(const char *root, const char *fmt, ...) {
    char rel[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    tree_touch(root, rel);
}

static inline void tree_mkdir(const char *root, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    cr_assert_eq(fs_mkdirs(path), 0, "%s", err_msg());
}

static int tree_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

static inline void tree_remove(char *root) {
    nftw(root, tree_rm_one, 32, FTW_DEPTH | FTW_PHYS);
    free(root);
}

#endif
