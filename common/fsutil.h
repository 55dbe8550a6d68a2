// Small file-system helpers shared by every layer: whole-file reads, atomic writes, directories.
#ifndef COMMON_FSUTIL_H
#define COMMON_FSUTIL_H

#include <stddef.h>

// Reads a whole file into a NUL-terminated malloc'd buffer; *size gets the byte count (without the NUL).
// NULL with err_set() naming the path on failure.
char *fs_read_file(const char *path, size_t *size);
// Writes data to path atomically: a temporary file in the same folder, fsync, then rename.
int fs_write_atomic(const char *path, const void *data, size_t size);
// The temporary name used for an atomic write of path (caller frees); for writers that stream (HDF5).
char *fs_temp_name(const char *path);
// Renames tmp over path after fsync'ing it; removes tmp on failure.
int fs_commit(const char *tmp, const char *path);
// mkdir -p; 0 if the folder exists afterwards.
int fs_mkdirs(const char *path);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
// path joined with name by one '/', malloc'd.
char *fs_join(const char *dir, const char *name);
// A file that ships with the repository (experiments/defaults.yaml, plots/roc.gp): rel itself when it exists
// (run from the repository root), else <folder of the running binary>/../rel (build/kanoclip run from
// elsewhere), written to out (cap bytes). 0 when found, -1 when neither exists (no error set).
int fs_find_repo_file(const char *rel, char *out, size_t cap);

#endif
