// Folder listings and mask lookup by name for the readers.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int is_image_name(const char *name) {
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot, exts[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **list_names(const char *dir, int kind, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) { err_set("%s: cannot list folder: %s", dir, strerror(errno)); return NULL; }
    int cap = 64;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int is_dir;
        if (e->d_type == DT_DIR) is_dir = 1;
        else if (e->d_type == DT_REG) is_dir = 0;
        else { // DT_UNKNOWN or a link: ask stat, following links
            char *p = fs_join(dir, e->d_name);
            struct stat st;
            int ok = stat(p, &st) == 0;
            free(p);
            if (!ok) continue;
            if (S_ISDIR(st.st_mode)) is_dir = 1;
            else if (S_ISREG(st.st_mode)) is_dir = 0;
            else continue;
        }
        if (kind == LIST_DIRS ? !is_dir : (is_dir || !is_image_name(e->d_name))) continue;
        if (*n == cap) { cap *= 2; names = realloc(names, cap * sizeof *names); }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

void names_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char *find_subdir_ci(const char *dir, const char *name) {
    char *exact = fs_join(dir, name);
    if (fs_is_dir(exact)) return exact;
    free(exact);
    DIR *d = opendir(dir);
    if (!d) return NULL;
    // Sorted candidates so that two folders differing only in case resolve the same way every time.
    char *best = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcasecmp(e->d_name, name) != 0) continue;
        if (best && strcmp(e->d_name, best) >= 0) continue;
        char *p = fs_join(dir, e->d_name);
        int ok = fs_is_dir(p);
        free(p);
        if (ok) { free(best); best = strdup(e->d_name); }
    }
    closedir(d);
    if (!best) return NULL;
    char *p = fs_join(dir, best);
    free(best);
    return p;
}

char *find_subdir_any(const char *dir, const char *const *names) {
    for (int i = 0; names[i]; i++) {
        char *p = find_subdir_ci(dir, names[i]);
        if (p) return p;
    }
    return NULL;
}

int name_in_list(const char *name, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcasecmp(name, list[i])) return 1;
    return 0;
}

char *stem_of(const char *name) {
    char *s = strdup(name);
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = '\0';
    return s;
}

char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t i = n;
    while (i > 0 && path[i - 1] != '/') i--;
    char *s = malloc(n - i + 1);
    memcpy(s, path + i, n - i);
    s[n - i] = '\0';
    return s;
}

struct MaskIndex {
    char *dir;
    struct MaskEntry { char *stem, *path; } *e; // (n), sorted by stem, then by file name
    int n;
};

static int cmp_entry(const void *a, const void *b) {
    const struct MaskEntry *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : strcmp(x->path, y->path);
}

MaskIndex *mask_index_open(const char *dir) {
    MaskIndex *mi = calloc(1, sizeof *mi);
    if (!dir || !fs_is_dir(dir)) return mi;
    int n = 0;
    char **names = list_names(dir, LIST_IMAGES, &n);
    if (!names) { err_clear(); return mi; }
    mi->e = calloc(n ? n : 1, sizeof *mi->e);
    for (int i = 0; i < n; i++) {
        mi->e[i].stem = stem_of(names[i]);
        mi->e[i].path = fs_join(dir, names[i]);
    }
    mi->n = n;
    names_free(names, n);
    qsort(mi->e, mi->n, sizeof *mi->e, cmp_entry);
    return mi;
}

static const char *mask_index_lookup(const MaskIndex *mi, const char *stem) {
    int lo = 0, hi = mi->n; // first entry with entry.stem >= stem
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(mi->e[mid].stem, stem) < 0) lo = mid + 1;
        else hi = mid;
    }
    return (lo < mi->n && !strcmp(mi->e[lo].stem, stem)) ? mi->e[lo].path : NULL;
}

const char *mask_index_find(const MaskIndex *mi, const char *stem, const char *const *suffixes) {
    char buf[4096];
    for (int i = 0; suffixes[i]; i++) {
        snprintf(buf, sizeof buf, "%s%s", stem, suffixes[i]);
        const char *p = mask_index_lookup(mi, buf);
        if (p) return p;
    }
    return NULL;
}

void mask_index_free(MaskIndex *mi) {
    if (!mi) return;
    for (int i = 0; i < mi->n; i++) { free(mi->e[i].stem); free(mi->e[i].path); }
    free(mi->e);
    free(mi->dir);
    free(mi);
}
