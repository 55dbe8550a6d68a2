// CLIP's text cleaning on code points: UTF-8, NFC, html.unescape, whitespace collapse, lowercase.
// Each step reproduces the Python function openai/CLIP calls (see model/text_clean.h); the data comes from
// the generated tables in model/unicode_tables.c and model/html_entities.c.
#include "model/text_clean.h"
#include "model/unicode_tables.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void cpbuf_free(CpBuf *b) {
    free(b->cp);
    b->cp = NULL;
    b->n = b->cap = 0;
}

static int cpbuf_reserve(CpBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    uint32_t *p = realloc(b->cp, cap * sizeof *p);
    if (!p) return err_set("out of memory (text of %zu code points)", b->n + extra);
    b->cp = p;
    b->cap = cap;
    return 0;
}

static inline int cpbuf_push(CpBuf *b, uint32_t cp) {
    if (b->n == b->cap && cpbuf_reserve(b, 1)) return -1;
    b->cp[b->n++] = cp;
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Table look-ups

static int in_ranges(const UniRange *r, int count, uint32_t cp) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static const UniMap *find_map(const UniMap *m, int count, uint32_t cp) {
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < m[mid].from) hi = mid - 1;
        else if (cp > m[mid].from) lo = mid + 1;
        else return &m[mid];
    }
    return NULL;
}

int uni_is_space(uint32_t cp) {
    if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 28 && cp <= 31);
    return in_ranges(uni_space, uni_space_count, cp);
}
int uni_is_letter(uint32_t cp) {
    if (cp < 128) return (cp | 32) >= 'a' && (cp | 32) <= 'z';
    return in_ranges(uni_letter, uni_letter_count, cp);
}
int uni_is_number(uint32_t cp) {
    if (cp < 128) return cp >= '0' && cp <= '9';
    return in_ranges(uni_number, uni_number_count, cp);
}
int uni_is_other(uint32_t cp) { return in_ranges(uni_other, uni_other_count, cp); }

static int ccc_of(uint32_t cp) {
    if (cp < 0x300) return 0;
    int lo = 0, hi = uni_ccc_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_ccc[mid].lo) hi = mid - 1;
        else if (cp > uni_ccc[mid].hi) lo = mid + 1;
        else return uni_ccc[mid].cls;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// UTF-8

int utf8_decode(const char *s, size_t n, CpBuf *out) {
    const unsigned char *u = (const unsigned char *)s;
    if (cpbuf_reserve(out, n)) return -1;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        uint32_t cp;
        int len;
        unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c < 0x80) { out->cp[out->n++] = c; i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3; cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;       // overlong
            if (c == 0xED) hi = 0x9F;       // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4; cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;       // overlong
            if (c == 0xF4) hi = 0x8F;       // above U+10FFFF
        } else return err_set("text is not valid UTF-8 (byte 0x%02X at byte offset %zu)", c, i);
        for (int k = 1; k < len; k++) {
            unsigned b = i + k < n ? u[i + k] : 0;
            unsigned blo = k == 1 ? lo : 0x80, bhi = k == 1 ? hi : 0xBF;
            if (b < blo || b > bhi)
                return err_set("text is not valid UTF-8 (incomplete sequence at byte offset %zu)", i);
            cp = (cp << 6) | (b & 0x3F);
        }
        out->cp[out->n++] = cp;
        i += len;
    }
    return 0;
}

int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// ---------------------------------------------------------------------------------------------------------
// NFC (UAX #15): full canonical decomposition, canonical ordering of combining marks, canonical composition.

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int decompose_push(uint32_t cp, CpBuf *out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        if (cpbuf_push(out, LBASE + s / NCOUNT) || cpbuf_push(out, VBASE + (s % NCOUNT) / TCOUNT)) return -1;
        return s % TCOUNT ? cpbuf_push(out, TBASE + s % TCOUNT) : 0;
    }
    int lo = 0, hi = uni_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_decomp[mid].cp) hi = mid - 1;
        else if (cp > uni_decomp[mid].cp) lo = mid + 1;
        else {
            if (decompose_push(uni_decomp[mid].first, out)) return -1;
            return uni_decomp[mid].second ? decompose_push(uni_decomp[mid].second, out) : 0;
        }
    }
    return cpbuf_push(out, cp);
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = (uint64_t)a << 32 | b;
    int lo = 0, hi = uni_compose_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint64_t k = (uint64_t)uni_compose[mid].first << 32 | uni_compose[mid].second;
        if (key < k) hi = mid - 1;
        else if (key > k) lo = mid + 1;
        else return uni_compose[mid].cp;
    }
    return 0;
}

int text_nfc(const uint32_t *in, size_t n, CpBuf *out) {
    out->n = 0;
    size_t i = 0;
    while (i < n && in[i] < 0x300) i++;
    if (i == n) { // nothing below U+0300 decomposes or composes (checked by the table generator)
        if (cpbuf_reserve(out, n)) return -1;
        if (n) memcpy(out->cp, in, n * sizeof *in);
        out->n = n;
        return 0;
    }
    CpBuf d = {0};
    for (i = 0; i < n; i++)
        if (decompose_push(in[i], &d)) { cpbuf_free(&d); return -1; }
    // Canonical ordering: stable sort of each run of non-starters by combining class.
    for (size_t k = 1; k < d.n; k++) {
        int c = ccc_of(d.cp[k]);
        if (!c) continue;
        uint32_t x = d.cp[k];
        size_t j = k;
        while (j > 0) {
            int cp = ccc_of(d.cp[j - 1]);
            if (cp <= c) break;
            d.cp[j] = d.cp[j - 1];
            j--;
        }
        d.cp[j] = x;
    }
    // Composition: a mark joins the last starter unless something between blocks it (a starter, or a mark of
    // equal or higher class; after ordering, the last kept mark has the highest class).
    if (cpbuf_reserve(out, d.n)) { cpbuf_free(&d); return -1; }
    long starter = -1;
    for (size_t k = 0; k < d.n; k++) {
        uint32_t c = d.cp[k];
        int cc = ccc_of(c);
        if (starter >= 0) {
            size_t last = out->n - 1;
            if ((long)last == starter || ccc_of(out->cp[last]) < cc) {
                uint32_t p = compose_pair(out->cp[starter], c);
                if (p) { out->cp[starter] = p; continue; }
            }
        }
        if (cc == 0) starter = (long)out->n;
        out->cp[out->n++] = c;
    }
    cpbuf_free(&d);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// html.unescape: the pattern &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and its replacement.

static int is_hex(uint32_t c) { return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f'); }

// Compares the code points name[0..len) with the ASCII entity name; code points order as bytes do.
static int name_cmp(const uint32_t *name, size_t len, const char *ent) {
    for (size_t i = 0;; i++) {
        uint32_t a = i < len ? name[i] : 0, b = (unsigned char)ent[i];
        if (i >= len) return b ? -1 : 0;
        if (a != b) return a < b ? -1 : 1;
    }
}

static const HtmlEntity *find_entity(const uint32_t *name, size_t len) {
    int lo = 0, hi = html_entities_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = name_cmp(name, len, html_entities[mid].name);
        if (c < 0) hi = mid - 1;
        else if (c > 0) lo = mid + 1;
        else return &html_entities[mid];
    }
    return NULL;
}

static int push_numeric_ref(uint64_t num, CpBuf *out) {
    const UniMap *m = num <= 0xFF ? find_map(html_invalid_charrefs, html_invalid_charrefs_count, (uint32_t)num) : NULL;
    if (m) return cpbuf_push(out, m->to);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return cpbuf_push(out, 0xFFFD);
    for (int i = 0; i < html_invalid_codepoints_count; i++)
        if (html_invalid_codepoints[i] == num) return 0;
    return cpbuf_push(out, (uint32_t)num);
}

int text_html_unescape(const uint32_t *in, size_t n, CpBuf *out) {
    out->n = 0;
    if (cpbuf_reserve(out, n)) return -1;
    size_t i = 0;
    while (i < n) {
        if (in[i] != '&') { if (cpbuf_push(out, in[i++])) return -1; continue; }
        size_t j = i + 1;
        if (j < n && in[j] == '#') {
            int hex = j + 1 < n && (in[j + 1] == 'x' || in[j + 1] == 'X') && j + 2 < n && is_hex(in[j + 2]);
            int dec = j + 1 < n && in[j + 1] >= '0' && in[j + 1] <= '9';
            if (dec || hex) {
                size_t k = j + (hex ? 2 : 1);
                uint64_t num = 0;
                for (; k < n && (hex ? is_hex(in[k]) : (in[k] >= '0' && in[k] <= '9')); k++) {
                    uint32_t c = in[k];
                    unsigned v = c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
                    num = num > 0x10FFFFu ? num : num * (hex ? 16 : 10) + v; // saturates past U+10FFFF
                }
                if (k < n && in[k] == ';') k++;
                if (push_numeric_ref(num, out)) return -1;
                i = k;
                continue;
            }
            if (cpbuf_push(out, '&')) return -1; // '#' cannot start a name: no match at this '&'
            i++;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32) {
            uint32_t c = in[k];
            if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
            k++;
        }
        if (k == j) { if (cpbuf_push(out, '&')) return -1; i++; continue; }
        if (k < n && in[k] == ';') k++;
        size_t len = k - j; // the matched name, with its ';' if any
        const HtmlEntity *e = find_entity(in + j, len);
        size_t used = len;
        for (size_t x = len - 1; !e && x >= 2; x--) { // longest known prefix, as the HTML5 standard says
            e = find_entity(in + j, x);
            used = x;
        }
        if (e) {
            if (cpbuf_push(out, e->cp[0]) || (e->cp[1] && cpbuf_push(out, e->cp[1]))) return -1;
            for (size_t q = j + used; q < k; q++) if (cpbuf_push(out, in[q])) return -1;
        } else {
            for (size_t q = i; q < k; q++) if (cpbuf_push(out, in[q])) return -1;
        }
        i = k;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Whitespace and case

int text_whitespace_clean(const uint32_t *in, size_t n, CpBuf *out) {
    out->n = 0;
    if (cpbuf_reserve(out, n)) return -1;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        if (uni_is_space(in[i])) { pending_space = out->n > 0; continue; }
        if (pending_space) out->cp[out->n++] = ' ';
        pending_space = 0;
        out->cp[out->n++] = in[i];
    }
    return 0;
}

static int is_cased(uint32_t c) { return in_ranges(uni_cased, uni_cased_count, c); }
static int is_case_ignorable(uint32_t c) { return in_ranges(uni_case_ignorable, uni_case_ignorable_count, c); }

// CPython's handle_capital_sigma: final form after \p{Cased}\p{Case_Ignorable}* and not before
// \p{Case_Ignorable}*\p{Cased}.
static uint32_t lower_sigma(const uint32_t *in, size_t n, size_t i) {
    long j = (long)i - 1;
    while (j >= 0 && is_case_ignorable(in[j])) j--;
    int final = j >= 0 && is_cased(in[j]);
    if (final) {
        size_t k = i + 1;
        while (k < n && is_case_ignorable(in[k])) k++;
        final = k == n || !is_cased(in[k]);
    }
    return final ? 0x3C2 : 0x3C3;
}

int text_lower(const uint32_t *in, size_t n, CpBuf *out) {
    out->n = 0;
    if (cpbuf_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c < 128) { out->cp[out->n++] = c >= 'A' && c <= 'Z' ? c + 32 : c; continue; }
        if (c == 0x3A3) { out->cp[out->n++] = lower_sigma(in, n, i); continue; }
        const UniMap *m = find_map(uni_lower, uni_lower_count, c);
        if (m) { out->cp[out->n++] = m->to; continue; }
        int multi = 0;
        for (int k = 0; k < uni_lower_multi_count && !multi; k++) {
            if (uni_lower_multi[k].from != c) continue;
            multi = 1;
            for (int q = 0; q < 3 && uni_lower_multi[k].to[q]; q++)
                if (cpbuf_push(out, uni_lower_multi[k].to[q])) return -1;
        }
        if (!multi && cpbuf_push(out, c)) return -1;
    }
    return 0;
}

int text_clean_clip(const char *text, size_t len, CpBuf *out) {
    CpBuf a = {0}, b = {0};
    out->n = 0;
    int rc = -1;
    if (utf8_decode(text, len, &a)) goto done;
    if (text_nfc(a.cp, a.n, &b)) goto done;
    if (text_html_unescape(b.cp, b.n, &a)) goto done;
    if (text_html_unescape(a.cp, a.n, &b)) goto done;
    if (text_whitespace_clean(b.cp, b.n, &a)) goto done;
    rc = text_lower(a.cp, a.n, out);
done:
    cpbuf_free(&a);
    cpbuf_free(&b);
    return rc;
}
