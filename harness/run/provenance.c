#include "harness/run/provenance.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int run_capture(const char *cmd, char *out, size_t size) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return rc == 0 ? (int)n : -1;
}

void provenance_git(char commit[64], int *dirty) {
    char buf[4096];
    strcpy(commit, "unknown");
    *dirty = -1;
    if (run_capture("git rev-parse HEAD 2>/dev/null", buf, sizeof buf) < 40) return;
    buf[strcspn(buf, "\r\n")] = '\0';
    snprintf(commit, 64, "%s", buf);
    int n = run_capture("git status --porcelain --untracked-files=no 2>/dev/null", buf, sizeof buf);
    *dirty = n < 0 ? -1 : n > 0;
}

int provenance_weights_hash(const char *dir, char hex[65]) {
    static const char *names[] = {"model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = fs_join(dir, names[i]);
        if (fs_exists(p)) {
            int rc = sha256_file_hex(p, hex);
            free(p);
            return rc;
        }
        free(p);
    }
    return err_set("%s: no model.safetensors or pytorch_model.bin", dir);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int walk(const char *root, const char *rel, Sha256 *h, long *n) {
    char *dir = *rel ? fs_join(root, rel) : strdup(root);
    struct dirent **ents;
    int k = scandir(dir, &ents, NULL, by_name);
    if (k < 0) { err_set("%s: cannot list folder", dir); free(dir); return -1; }
    int rc = 0;
    for (int i = 0; i < k; i++) {
        const char *name = ents[i]->d_name;
        if (rc == 0 && strcmp(name, ".") && strcmp(name, "..")) {
            char *sub = *rel ? fs_join(rel, name) : strdup(name);
            char *full = fs_join(root, sub);
            struct stat st;
            if (stat(full, &st) == 0) {
                if (S_ISDIR(st.st_mode)) {
                    rc = walk(root, sub, h, n);
                } else if (S_ISREG(st.st_mode)) {
                    // The content, not only the name and size: a file replaced in place changes the manifest.
                    char line[128], hex[65];
                    if (sha256_file_hex(full, hex) < 0) rc = -1;
                    sha256_update(h, sub, strlen(sub));
                    snprintf(line, sizeof line, "\t%lld\t%s\n", (long long)st.st_size, hex);
                    sha256_update(h, line, strlen(line));
                    (*n)++;
                }
            }
            free(sub);
            free(full);
        }
        free(ents[i]);
    }
    free(ents);
    free(dir);
    return rc;
}

int provenance_manifest_hash(const char *root, char hex[65], long *n_files) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    Sha256 h;
    sha256_init(&h);
    long n = 0;
    int rc = walk(root, "", &h, &n);
    sha256_final_hex(&h, hex);
    if (n_files) *n_files = n;
    return rc;
}

void provenance_now(char buf[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
