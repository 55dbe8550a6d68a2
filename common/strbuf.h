// A growable NUL-terminated string, for text built piece by piece (tables, YAML, prompts).
#ifndef COMMON_STRBUF_H
#define COMMON_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;         // NULL until something is added; NUL-terminated after
    size_t len, cap; // bytes used (without the NUL), bytes allocated
} StrBuf;

// Appends n bytes of s. Out of memory aborts with a message (the text has nowhere else to go).
void strbuf_put(StrBuf *b, const char *s, size_t n);
// Appends printf-formatted text.
void strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The string, now the caller's to free ("" when nothing was added); b is left empty.
char *strbuf_take(StrBuf *b);

#endif
