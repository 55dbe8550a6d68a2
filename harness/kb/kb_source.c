// Where a class's knowledge came from (see kb_source.h).
#include "harness/kb/kb_source.h"

#include "common/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kb_source_describe(const KbSettings *s, const KbClassTexts *t, char *buf, size_t cap) {
    int n_llm = t->n - t->n_vqa, fetched = t->llm_source && !strcmp(t->llm_source, "fetched");
    int llm_ok = fetched && n_llm >= s->llm_n, vqa_ok = t->n_vqa_answered == t->n_vqa_asked;
    size_t used;
    if (fetched)
        used = (size_t)snprintf(buf, cap, "fetched LLM answers %d of %d (%s)", n_llm, s->llm_n, s->model);
    else
        used = (size_t)snprintf(buf, cap, "%s text (%s) for the LLM answers (0 of %d fetched)",
                                t->llm_source ? t->llm_source : "no", t->shipped_where ? t->shipped_where : "none",
                                s->llm_n);
    if (used < cap)
        snprintf(buf + used, cap - used, "; VQA answers %d of %d%s%s%s", t->n_vqa_answered, t->n_vqa_asked,
                 t->n_vqa_asked ? " (" : "", t->n_vqa_asked ? kb_settings_vqa_model(s) : "", t->n_vqa_asked ? ")" : "");
    return llm_ok && vqa_ok;
}

// The text between the " (" at `open` and the last ')' before end, into out.
static void paren_text(const char *open, const char *end, char *out, size_t cap) {
    out[0] = '\0';
    if (!open || open >= end) return;
    const char *a = open + 2, *b = end;
    while (b > a && b[-1] != ')') b--;
    if (b <= a) return;
    snprintf(out, cap, "%.*s", (int)(b - 1 - a), a);
}

int kb_source_parse(const char *line, KbSourceFacts *f) {
    memset(f, 0, sizeof *f);
    const char *vqa = strstr(line, "; VQA answers ");
    if (!vqa || sscanf(vqa, "; VQA answers %d of %d", &f->vqa_got, &f->vqa_asked) != 2) return -1;
    const char *end = line + strlen(line);
    if (f->vqa_asked) paren_text(strstr(vqa + 14, " ("), end, f->vqa_model, sizeof f->vqa_model);
    if (sscanf(line, "fetched LLM answers %d of %d", &f->llm_got, &f->llm_want) == 2) {
        strcpy(f->source, "fetched");
        paren_text(strstr(line, " ("), vqa, f->llm_model, sizeof f->llm_model);
        return 0;
    }
    const char *text = strstr(line, " text (");
    const char *fetched = strstr(line, " for the LLM answers (0 of ");
    if (!text || !fetched || fetched > vqa || (size_t)(text - line) >= sizeof f->source) return -1;
    snprintf(f->source, sizeof f->source, "%.*s", (int)(text - line), line);
    if (sscanf(fetched, " for the LLM answers (0 of %d", &f->llm_want) != 1) return -1;
    return 0;
}

// Appends name to a list of at most 4 distinct names.
static void add_name(const char **names, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], name)) return;
    if (*n < 4 && *name) names[(*n)++] = name;
}

static void names_text(StrBuf *b, const char **names, int n) {
    for (int i = 0; i < n; i++) strbuf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

char *kb_source_summary(const char *const *lines, int n) {
    if (n <= 0) return NULL;
    KbSourceFacts *f = calloc((size_t)n, sizeof *f);
    int *ok = calloc((size_t)n, sizeof *ok);
    if (!f || !ok) { free(f); free(ok); return NULL; }
    int fetched = 0, lo = 0, hi = 0, want = 0, unrecorded = 0, vqa_got = 0, vqa_asked = 0, n_llm_m = 0, n_vqa_m = 0;
    const char *llm_models[4], *vqa_models[4];
    for (int i = 0; i < n; i++) {
        ok[i] = kb_source_parse(lines[i], &f[i]) == 0;
        if (!ok[i]) { unrecorded++; continue; }
        vqa_got += f[i].vqa_got, vqa_asked += f[i].vqa_asked;
        add_name(vqa_models, &n_vqa_m, f[i].vqa_model);
        if (strcmp(f[i].source, "fetched")) continue;
        if (!fetched || f[i].llm_got < lo) lo = f[i].llm_got;
        if (!fetched || f[i].llm_got > hi) hi = f[i].llm_got;
        want = f[i].llm_want;
        fetched++;
        add_name(llm_models, &n_llm_m, f[i].llm_model);
    }
    StrBuf b = {0};
    strbuf_printf(&b, "%d class%s:", n, n == 1 ? "" : "es");
    const char *sep = " ";
    if (fetched) {
        strbuf_printf(&b, "%sLLM answers fetched for %d (", sep, fetched);
        if (lo == hi) strbuf_printf(&b, "%d of %d%s", lo, want, fetched > 1 ? " each" : "");
        else strbuf_printf(&b, "%d-%d of %d", lo, hi, want);
        if (n_llm_m) strbuf_printf(&b, ", ");
        names_text(&b, llm_models, n_llm_m);
        strbuf_printf(&b, ")");
        sep = ", ";
    }
    for (int i = 0; i < n; i++) {  // the other sources, each once, in the order met
        if (!ok[i] || !strcmp(f[i].source, "fetched")) continue;
        int first = 1, count = 0;
        for (int k = 0; k < n; k++) {
            if (!ok[k] || strcmp(f[k].source, f[i].source)) continue;
            if (k < i) first = 0;
            count++;
        }
        if (!first) continue;
        strbuf_printf(&b, "%s%s text for %d", sep, f[i].source, count);
        sep = ", ";
    }
    if (unrecorded) strbuf_printf(&b, "%sunrecorded for %d", sep, unrecorded);
    if (vqa_asked) {
        strbuf_printf(&b, "; VQA answers %d of %d (", vqa_got, vqa_asked);
        names_text(&b, vqa_models, n_vqa_m);
        strbuf_printf(&b, ")");
    } else {
        strbuf_printf(&b, "; no VQA questions");
    }
    free(f);
    free(ok);
    return strbuf_take(&b);
}
