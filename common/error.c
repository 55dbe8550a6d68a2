#include "common/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[2048];
static _Thread_local int last_retryable;

// Formats into a buffer of its own, then copies: an argument may be err_msg() itself (a message that quotes the
// previous one), which formatting straight into last_error would overwrite while reading it.
int err_set(const char *fmt, ...) {
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof last_error);
    last_retryable = 0;
    return -1;
}

int err_mark_retryable(void) {
    last_retryable = 1;
    return -1;
}

int err_retryable(void) { return last_retryable; }

int err_wrap(const char *fmt, ...) {
    char prefix[1024], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s%s", prefix, old);
    return -1;
}

const char *err_msg(void) { return last_error; }

void err_clear(void) {
    last_error[0] = '\0';
    last_retryable = 0;
}
