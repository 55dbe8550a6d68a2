#include "harness/kb/kb_plan.h"
#include "harness/kb/kb_shipped.h"
#include "harness/kb/kb_text.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static KbQuestion *next_slot(KbPlan *p, int *cap) {
    if (p->n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        p->q = realloc(p->q, *cap * sizeof *p->q);
    }
    return &p->q[p->n];
}

// The class in words for the questions: the shipped prompt_name (written for these questions: "industrial
// product" for BTAD's "01"), else the dataset reader's ("metal nut"), else the folder name as words.
static char *class_words(const KbSettings *s, const KbDataset *d, int c) {
    KbShippedEntry e;
    int found = kb_shipped_find(s->shipped_dir, d->type, d->classes[c], &e);
    if (found == 1) {
        char *name = strdup(e.prompt_name);
        kb_shipped_entry_free(&e);
        return name;
    }
    err_clear();
    if (d->prompt_names && d->prompt_names[c] && d->prompt_names[c][0]) return strdup(d->prompt_names[c]);
    return kb_class_words(d->classes[c]);
}

int kb_plan_make(const KbSettings *s, const KbDataset *d, const char *only_class, KbPlan *out) {
    memset(out, 0, sizeof *out);
    int cap = 0;
    for (int c = 0; c < d->n_classes; c++) {
        const char *cls = d->classes[c];
        if (only_class && strcmp(cls, only_class) != 0) continue;
        char *words = class_words(s, d, c);
        if (kb_question_llm(s, cls, words, next_slot(out, &cap)) != 0) { free(words); kb_plan_free(out); return -1; }
        out->n++;
        int asked = 0;
        for (int i = 0; s->vqa && i < d->n_images; i++) {
            const KbImage *im = &d->images[i];
            if (strcmp(im->class_name, cls) != 0) continue;
            if (s->vqa_max_images_per_class > 0 && asked >= s->vqa_max_images_per_class) break;
            if (kb_question_vqa(s, cls, words, im->path, im->rel, next_slot(out, &cap)) != 0) {
                free(words);
                kb_plan_free(out);
                return -1;
            }
            out->n++;
            asked++;
        }
        free(words);
    }
    return 0;
}

void kb_plan_free(KbPlan *p) {
    for (int i = 0; i < p->n; i++) kb_question_free(&p->q[i]);
    free(p->q);
    memset(p, 0, sizeof *p);
}

char *kb_question_label(const KbQuestion *q) {
    const char *what = q->kind == KB_LLM ? q->class_name : q->image_rel;
    size_t n = strlen(what) + 8;
    char *s = malloc(n);
    snprintf(s, n, "%s %s", q->kind == KB_LLM ? "llm" : "vqa", what);
    return s;
}
