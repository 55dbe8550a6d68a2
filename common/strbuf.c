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

// Length of the well-formed UTF-8 sequence at s (at most n bytes) that is safe on a terminal, or 0: overlong
// forms, surrogates, code points past U+10FFFF and the C1 controls U+0080..U+009F (CSI and friends) are not.
static size_t safe_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp <= 0x9F) return 0;
    return len;
}

void strbuf_put_escaped(StrBuf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c >= 0x20 && c < 0x7F) { strbuf_put(b, s + i, 1); i++; continue; }
        size_t k = c >= 0x80 ? safe_utf8_len(u + i, n - i) : 0;
        if (k) { strbuf_put(b, s + i, k); i += k; continue; }
        if (c == '\n') strbuf_put(b, "\\n", 2);
        else if (c == '\t') strbuf_put(b, "\\t", 2);
        else if (c == '\r') strbuf_put(b, "\\r", 2);
        else strbuf_printf(b, "\\x%02x", c);
        i++;
    }
}

char *str_escaped(const char *s, size_t n, size_t max) {
    StrBuf b = {0};
    size_t k = n;
    if (k > max) { // cut at a character boundary, not inside a UTF-8 sequence
        k = max;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    }
    strbuf_put_escaped(&b, s, k);
    if (k < n) strbuf_put(&b, "...", 3);
    return strbuf_take(&b);
}
