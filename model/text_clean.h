// CLIP's text cleaning, on Unicode code points: what openai/CLIP's simple_tokenizer.py does to a string
// before its pre-token pattern sees it, minus ftfy's repairs other than NFC (see text_clean_clip).
#ifndef MODEL_TEXT_CLEAN_H
#define MODEL_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

// A growable code-point buffer.
typedef struct {
    uint32_t *cp; // (n)
    size_t n, cap;
} CpBuf;

void cpbuf_free(CpBuf *b);

// Strict UTF-8 (as Python's decoder: no overlongs, no surrogates, nothing above U+10FFFF). Appends to out.
// -1 with an error naming the byte offset on invalid input.
int utf8_decode(const char *s, size_t n, CpBuf *out);
// Writes the UTF-8 bytes of cp (at most 4) to out; returns the byte count.
int utf8_encode(uint32_t cp, char *out);

// Each step reads in[0..n) and replaces *out's contents. 0 on success, -1 only when out of memory.
// NFC (Unicode canonical composition, full: decomposition, canonical ordering, composition, Hangul).
int text_nfc(const uint32_t *in, size_t n, CpBuf *out);
// Python's html.unescape(): HTML5 named references (with the legacy no-semicolon forms and longest-prefix
// rule), &#N; and &#xN; with its fix-ups. One pass; CLIP applies it twice.
int text_html_unescape(const uint32_t *in, size_t n, CpBuf *out);
// re.sub(r'\s+', ' ', s).strip() with Python's str.isspace() whitespace.
int text_whitespace_clean(const uint32_t *in, size_t n, CpBuf *out);
// Python's str.lower(): full Unicode lowercase mapping, including the final-sigma rule.
int text_lower(const uint32_t *in, size_t n, CpBuf *out);

// The whole CLIP cleaning of a UTF-8 string: NFC (the part of ftfy.fix_text we do), html.unescape twice,
// strip, whitespace collapse, lower. ftfy's other repairs (mojibake, quote uncurling, ligatures, width,
// control characters) are not done. -1 with err set on invalid UTF-8.
int text_clean_clip(const char *text, size_t len, CpBuf *out);

// Unicode predicates from the generated tables.
int uni_is_space(uint32_t cp);
int uni_is_letter(uint32_t cp); // [\p{L}] under IGNORECASE
int uni_is_number(uint32_t cp); // [\p{N}] under IGNORECASE
int uni_is_other(uint32_t cp);  // [^\s\p{L}\p{N}] under IGNORECASE

#endif
