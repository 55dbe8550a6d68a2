// One-line error messages passed from where a failure is understood to where it is reported.
// A fallible function returns 0 (or a valid pointer) on success; on failure it calls err_set()
// with a message naming the file, key, tensor or field at fault, and returns -1 (or NULL).
// The command prints err_msg() once, prefixed by "kanoclip: ", and exits non-zero.
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

#include <stdarg.h>

// Sets the thread's last error (printf-style) and returns -1, so `return err_set(...)` reads well. An argument
// may be err_msg() (formatting goes through a buffer of its own), though err_wrap says "add context" better.
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Prepends context ("reading foo.h5: ") to the current message; returns -1.
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The thread's last error message ("" if none).
const char *err_msg(void);
void err_clear(void);
// Marks the current error as one a rerun can get past (an interruption, a full disk, a write that failed): the
// work done is kept and the same command continues from it. err_set clears the mark. Returns -1.
int err_mark_retryable(void);
int err_retryable(void);

#endif
