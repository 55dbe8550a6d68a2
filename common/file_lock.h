// Advisory locks between processes that share files (run folders, feature caches, generated data), held on a
// small lock file beside what they guard. flock(2): the kernel drops a lock when its holder exits, a kill -9
// included, so a crashed run never leaves a stale lock behind. The holder's pid is written into the file, for
// messages that say who holds it.
#ifndef COMMON_FILE_LOCK_H
#define COMMON_FILE_LOCK_H

typedef struct { int fd; } FileLock;

// Takes the exclusive lock on path (created if missing). wait = 0: returns 1 at once when another process holds
// it (*holder, when not NULL, gets its pid or 0); wait = 1: blocks until it is free. 0 when taken; -1 with err_set
// when path cannot be opened.
int file_lock(const char *path, int wait, FileLock *out, long *holder);
// Whether another process holds the lock on path, without waiting and without creating the file: its pid (or 1
// when it wrote none), 0 when nobody holds it or the file does not exist.
long file_lock_holder(const char *path);
// Releases the lock (the file stays: removing it could split later lockers between two files).
void file_unlock(FileLock *l);

#endif
