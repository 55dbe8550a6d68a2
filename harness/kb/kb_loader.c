#include "harness/kb/kb_loader.h"
#include "harness/kb/kb_cache.h"
#include "harness/kb/kb_plan.h"
#include "harness/kb/kb_shipped.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

static void add_text(KbClassTexts *t, const char *s) {
    t->texts = realloc(t->texts, (t->n + 1) * sizeof *t->texts);
    t->texts[t->n++] = strdup(s);
}

static void take_shipped(KbClassTexts *t, const KbShippedEntry *e, const char *source) {
    for (int i = 0; i < e->n; i++) add_text(t, e->descriptions[i]);
    t->llm_source = source;
    t->shipped_where = strdup(e->where);
}

int kb_load_class(const KbSettings *s, const KbDataset *d, const char *class_name, KbClassTexts *out) {
    memset(out, 0, sizeof *out);
    out->class_name = strdup(class_name);
    KbPlan plan;
    if (kb_plan_make(s, d, class_name, &plan) != 0) { kb_class_texts_free(out); return -1; }
    int rc = 0;
    for (int i = 0; i < plan.n && rc == 0; i++) {
        const KbQuestion *q = &plan.q[i];
        KbAnswer a;
        int got = kb_cache_read(s->cache_dir, q->key, &a);
        if (got < 0) { rc = -1; break; }
        if (q->kind == KB_LLM) {
            if (got) {
                for (int k = 0; k < a.n_descriptions; k++) add_text(out, a.descriptions[k]);
                out->llm_source = "fetched";
            } else {
                KbShippedEntry e;
                int found = kb_shipped_find(s->shipped_dir, d->type, class_name, &e);
                if (found == 0) found = kb_shipped_generic(s->shipped_dir, &e) == 1 ? 2 : 0;
                if (found < 0) rc = -1;
                else if (found > 0) take_shipped(out, &e, found == 1 ? "shipped" : "generic");
                if (found > 0) kb_shipped_entry_free(&e);
            }
        } else {
            out->n_vqa_asked++;
            out->n_vqa_answered += got;
            for (int k = 0; got && k < a.n_descriptions; k++) add_text(out, a.descriptions[k]), out->n_vqa++;
        }
        if (got) kb_answer_free(&a);
    }
    kb_plan_free(&plan);
    if (rc == 0 && out->n == 0)
        rc = err_set("kb: class '%s' has no descriptions: no fetched answer in %s/answers, no shipped entry in %s "
                     "(nor %s/generic.jsonl)", class_name, s->cache_dir, s->shipped_dir, s->shipped_dir);
    if (rc != 0) kb_class_texts_free(out);
    return rc;
}

int kb_load_all(const KbSettings *s, const KbDataset *d, KbClassTexts **out) {
    *out = calloc(d->n_classes ? d->n_classes : 1, sizeof **out);
    for (int c = 0; c < d->n_classes; c++)
        if (kb_load_class(s, d, d->classes[c], &(*out)[c]) != 0) {
            for (int k = 0; k < c; k++) kb_class_texts_free(&(*out)[k]);
            free(*out);
            *out = NULL;
            return -1;
        }
    return 0;
}

void kb_class_texts_free(KbClassTexts *t) {
    free(t->class_name);
    for (int i = 0; i < t->n; i++) free(t->texts[i]);
    free(t->texts);
    free(t->shipped_where);
    memset(t, 0, sizeof *t);
}

void kb_embed_order(const KbClassTexts *per_class, int n_classes, KbEmbedList *out) {
    int total = 0;
    for (int c = 0; c < n_classes; c++) total += per_class[c].n;
    out->texts = malloc((total ? total : 1) * sizeof *out->texts);
    out->class_start = malloc((n_classes + 1) * sizeof *out->class_start);
    out->n_classes = n_classes;
    out->n_texts = 0;
    for (int c = 0; c < n_classes; c++) {
        out->class_start[c] = out->n_texts;
        for (int i = 0; i < per_class[c].n; i++) {
            const char *t = per_class[c].texts[i];
            int dup = 0;
            for (int k = out->class_start[c]; k < out->n_texts && !dup; k++) dup = !strcmp(out->texts[k], t);
            if (!dup) out->texts[out->n_texts++] = t;
        }
    }
    out->class_start[n_classes] = out->n_texts;
}

void kb_embed_list_free(KbEmbedList *l) {
    free(l->texts);
    free(l->class_start);
    memset(l, 0, sizeof *l);
}
