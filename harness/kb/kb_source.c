// Where a class's knowledge came from (see kb_source.h).
#include "harness/kb/kb_source.h"

#include <stdio.h>
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
