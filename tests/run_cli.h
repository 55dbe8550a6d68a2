// Test helper: runs a program (build/kanoclip) in a child process, without a shell, so arguments need no
// quoting and the exit status is the program's own.
#ifndef TESTS_RUN_CLI_H
#define TESTS_RUN_CLI_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

// Runs args[0] with args (NULL-terminated) in folder cwd (NULL: this one), stdout to out_path and stderr to
// err_path (NULL: inherited; both opened before the chdir). Returns the exit status, 128 + signal when killed,
// 127 when it could not be started.
static int run_cli(char *const args[], const char *cwd, const char *out_path, const char *err_path) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        const char *paths[2] = {out_path, err_path};
        for (int k = 0; k < 2; k++) {
            if (!paths[k]) continue;
            int fd = open(paths[k], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, k + 1) < 0) _exit(127);
            close(fd);
        }
        if (cwd && chdir(cwd) != 0) _exit(127);
        execv(args[0], args);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
