// Advisory inter-process locks (see file_lock.h).
#include "common/file_lock.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static long read_holder(int fd) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

int file_lock(const char *path, int wait, FileLock *out, long *holder) {
    out->fd = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return err_set("%s: cannot open the lock file (%s)", path, strerror(errno));
    int rc;
    while ((rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR) {}
    if (rc < 0) {
        int e = errno;
        if (!wait && e == EWOULDBLOCK) {
            if (holder) *holder = read_holder(fd);
            close(fd);
            return 1;
        }
        close(fd);
        return err_set("%s: cannot lock (%s)", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) { /* the pid is for messages only */ }
    out->fd = fd;
    return 0;
}

long file_lock_holder(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    long holder = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            holder = read_holder(fd);
            if (holder <= 0) holder = 1;
        }
    } else {
        flock(fd, LOCK_UN);
    }
    close(fd);
    return holder;
}

void file_unlock(FileLock *l) {
    if (l->fd < 0) return;
    flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
}
