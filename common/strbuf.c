#include "common/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Room for n more bytes and the NUL.
static void reserve(StrBuf *b, size_t n) {
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = (b->len + n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        fprintf(stderr, "kanoclip: out of memory building a %zu-byte string\n", cap);
        abort();
    }
    b->s = s;
    b->cap = cap;
}

void strbuf_put(StrBuf *b, const char *s, size_t n) {
    reserve(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_printf(StrBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *strbuf_take(StrBuf *b) {
    char *s = b->s ? b->s : strdup("");
    *b = (StrBuf){0};
    return s;
}
