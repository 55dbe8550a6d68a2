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

// Appends n bytes of text that came from outside (a server, a file) so that it prints as one harmless line:
// printable ASCII and well-formed UTF-8 as they are; newline, tab and CR as \n \t \r; every other byte (escape
// sequences, C1 controls, DEL, malformed UTF-8) as \xNN, so nothing reaches the terminal raw.
void strbuf_put_escaped(StrBuf *b, const char *s, size_t n);
// The same into a new string (caller frees), of at most max input bytes, cut at a character boundary and then
// ending in "...".
char *str_escaped(const char *s, size_t n, size_t max);

#endif
