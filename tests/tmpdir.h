// Removes a test's temporary folder (made with mkdtemp under /tmp/kanoclip-) and everything in it, for a
// suite's .fini.
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tmpdir_remove(const char *dir) {
    // mkdtemp names are letters, digits and '-': safe to pass to the shell unquoted-free.
    if (!dir || strncmp(dir, "/tmp/kanoclip-", 14) || strspn(dir + 5, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(dir + 5))
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "/bin/rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
