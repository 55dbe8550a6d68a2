#include "common/fsutil.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *fs_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set("%s: %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap + 1);
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad) { free(buf); err_set("%s: cannot read: %s", path, bad == EISDIR ? "is a folder" : strerror(bad)); return NULL; }
    buf[n] = '\0';
    if (size) *size = n;
    return buf;
}

char *fs_temp_name(const char *path) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

int fs_commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set("%s: cannot replace: %s", path, strerror(e));
    }
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t size) {
    char *tmp = fs_temp_name(path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { int e = errno; free(tmp); return err_set("%s: cannot write: %s", path, strerror(e)); }
    // The first failing call's errno names the reason ("No space left on device"); a full disk may show only at
    // the flush or the close.
    int e = 0;
    if (fwrite(data, 1, size, f) != size) e = errno ? errno : EIO;
    if (fflush(f) != 0 && !e) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (e) { unlink(tmp); free(tmp); return err_set("%s: write failed: %s", path, strerror(e)); }
    int rc = fs_commit(tmp, path);
    free(tmp);
    return rc;
}

int fs_mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set("%s: bad folder name", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return err_set("%s: cannot create folder: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return fs_is_dir(path) ? 0 : err_set("%s: exists and is not a folder", path);
}

int fs_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

int fs_is_dir(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

char *fs_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *out = malloc(a + b + 2);
    memcpy(out, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') out[k++] = '/';
    memcpy(out + k, name, b + 1);
    return out;
}

int fs_find_repo_file(const char *rel, char *out, size_t cap) {
    if (fs_exists(rel)) {
        snprintf(out, cap, "%s", rel);
        return 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = '\0';
    int len = snprintf(out, cap, "%s/../%s", exe, rel);
    return len > 0 && (size_t)len < cap && fs_exists(out) ? 0 : -1;
}
