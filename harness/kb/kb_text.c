#define _GNU_SOURCE  // memmem
#include "harness/kb/kb_text.h"
#include "common/strbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *kb_prompt_fill(const char *tmpl, const char *class_name, int n) {
    StrBuf b = {0};
    char num[32];
    snprintf(num, sizeof num, "%d", n);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{class}", 7)) { strbuf_put(&b, class_name, strlen(class_name)); p += 7; }
        else if (!strncmp(p, "{n}", 3)) { strbuf_put(&b, num, strlen(num)); p += 3; }
        else { strbuf_put(&b, p, 1); p++; }
    }
    return strbuf_take(&b);
}

char *kb_class_words(const char *class_name) {
    char *w = strdup(class_name);
    for (char *p = w; *p; p++)
        if (*p == '_') *p = ' ';
    return w;
}

// UTF-8 punctuation that models wrap or bullet descriptions with.
static const char *const open_quotes[] = {"\"", "'", "\xe2\x80\x9c", "\xe2\x80\x98", "`"};
static const char *const close_quotes[] = {"\"", "'", "\xe2\x80\x9d", "\xe2\x80\x99", "`"};
static const char *const bullets[] = {"-", "*", "+", "\xe2\x80\xa2", "\xe2\x80\x93", "\xe2\x80\x94", "\xc2\xb7"};

// Skips one leading list marker: "1.", "1)", "(1)", "1:", "1 -", "Description 1:", or a bullet, then spaces.
static const char *skip_list_marker(const char *p) {
    const char *q = p;
    if (!strncasecmp(q, "description ", 12)) {
        const char *r = q + 12;
        if (isdigit((unsigned char)*r)) {
            while (isdigit((unsigned char)*r)) r++;
            if (*r == ':' || *r == '.' || *r == ')') { r++; while (*r == ' ' || *r == '\t') r++; return r; }
        }
    }
    if (*q == '(' && isdigit((unsigned char)q[1])) {
        const char *r = q + 1;
        while (isdigit((unsigned char)*r)) r++;
        if (*r == ')' && (r[1] == ' ' || r[1] == '\t' || !r[1])) { r++; while (*r == ' ' || *r == '\t') r++; return r; }
    }
    if (isdigit((unsigned char)*q)) {
        const char *r = q;
        while (isdigit((unsigned char)*r)) r++;
        if (r - q <= 3 && (*r == '.' || *r == ')' || *r == ':' || *r == '-') &&
            (r[1] == ' ' || r[1] == '\t' || !r[1])) {
            r++;
            while (*r == ' ' || *r == '\t') r++;
            return r;
        }
        return p;
    }
    for (size_t i = 0; i < sizeof bullets / sizeof bullets[0]; i++) {
        size_t n = strlen(bullets[i]);
        if (!strncmp(q, bullets[i], n) && (q[n] == ' ' || q[n] == '\t')) {
            q += n;
            while (*q == ' ' || *q == '\t') q++;
            return q;
        }
    }
    return p;
}

// Removes a pair of quotes around the whole text (a trailing '.' after the closing quote moves inside).
static void strip_wrapping_quotes(char *s) {
    for (size_t i = 0; i < sizeof open_quotes / sizeof open_quotes[0]; i++) {
        size_t no = strlen(open_quotes[i]), nc = strlen(close_quotes[i]), n = strlen(s);
        if (n < no + nc || strncmp(s, open_quotes[i], no) != 0) continue;
        size_t end = n;
        int dot = 0;
        if (end > 0 && s[end - 1] == '.') { end--; dot = 1; }
        if (end < no + nc || strncmp(s + end - nc, close_quotes[i], nc) != 0) continue;
        // Only when the quote is not also used inside (e.g. 'a "bent" pin' keeps its quotes).
        size_t inner = end - nc - no;
        if (memmem(s + no, inner, close_quotes[i], nc) || memmem(s + no, inner, open_quotes[i], no)) continue;
        memmove(s, s + no, inner);
        if (dot && inner > 0 && !strchr(".!?", s[inner - 1])) s[inner++] = '.';
        s[inner] = '\0';
        return;
    }
}

char *kb_clean_description(const char *line) {
    StrBuf b = {0};
    // Collapse whitespace (including newlines) and drop Markdown emphasis markers.
    int space = 0;
    for (const char *p = line; *p; p++) {
        if (!strncmp(p, "**", 2) || !strncmp(p, "__", 2)) { p++; continue; }
        if (isspace((unsigned char)*p)) { space = 1; continue; }
        if (space && b.len > 0) strbuf_put(&b, " ", 1);
        space = 0;
        strbuf_put(&b, p, 1);
    }
    char *s = strbuf_take(&b);
    // A list marker may only show after emphasis is gone ("**1.** A crack").
    const char *after = skip_list_marker(s);
    if (after != s) memmove(s, after, strlen(after) + 1);
    strip_wrapping_quotes(s);
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

// A line that only introduces what follows ("Here are 5 descriptions:", "Sure!").
static int is_preamble(const char *s) {
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == ':') return 1;
    static const char *const openers[] = {"sure", "certainly", "of course"};
    for (size_t i = 0; i < sizeof openers / sizeof openers[0]; i++)
        if (!strncasecmp(s, openers[i], strlen(openers[i])) && n < 60 && strchr("!.:", s[n - 1])) return 1;
    return 0;
}

static void push(char ***items, int *n, int *cap, char *s) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *items = realloc(*items, *cap * sizeof **items);
    }
    (*items)[(*n)++] = s;
}

// Sentence ends: ". ", "! " or "? " followed by an upper-case letter.
static int split_sentences(const char *s, char ***items, int *n, int *cap) {
    int before = *n;
    const char *start = s;
    for (const char *p = s; *p; p++) {
        if (strchr(".!?", *p) && p[1] == ' ' && isupper((unsigned char)p[2])) {
            push(items, n, cap, strndup(start, p + 1 - start));
            start = p + 2;
        }
    }
    if (*start) push(items, n, cap, strdup(start));
    return *n - before;
}

int kb_split_answer(const char *answer, int max_items, char ***out) {
    char **items = NULL;
    int n = 0, cap = 0;
    const char *p = answer;
    while (*p) {
        const char *e = p;
        while (*e && *e != '\n' && *e != '\r') e++;
        char *line = strndup(p, e - p);
        char *clean = kb_clean_description(line);
        free(line);
        if (clean[0] && !is_preamble(clean)) push(&items, &n, &cap, clean);
        else free(clean);
        p = *e ? e + 1 : e;
    }
    if (n == 1 && max_items > 1) {
        char *one = items[0];
        n = 0;
        split_sentences(one, &items, &n, &cap);
        free(one);
    }
    if (max_items == 1 && n > 1) {
        StrBuf b = {0};
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                char last = b.s[b.len - 1];
                strbuf_put(&b, strchr(".!?;", last) ? " " : "; ", strchr(".!?;", last) ? 1 : 2);
            }
            strbuf_put(&b, items[i], strlen(items[i]));
            free(items[i]);
        }
        items[0] = strbuf_take(&b);
        n = 1;
    }
    while (n > max_items) free(items[--n]);
    *out = items;
    return n;
}

void kb_free_strings(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}
