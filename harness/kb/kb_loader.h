// The descriptions each class contributes to the knowledge embedding k(c): the fetched LLM answer for the class
// (else the shipped, hand-written descriptions; else the generic "object" ones), followed by the fetched VQA
// answers for the class's anomalous images. kb_embed_order flattens them into the list the text tower embeds.
#ifndef HARNESS_KB_LOADER_H
#define HARNESS_KB_LOADER_H

#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_settings.h"

typedef struct {
    char *class_name;
    char **texts;            // n descriptions: LLM (or shipped) first, then VQA in image order
    int n;
    const char *llm_source;  // "fetched", "shipped" or "generic"
    char *shipped_where;     // "file:line" of the shipped entry used, or NULL
    int n_vqa;               // how many texts are VQA answers
    int n_vqa_asked;         // VQA questions the plan has for the class (answered or not)
    int n_vqa_answered;      // of those, the ones with a cached answer
} KbClassTexts;

// The texts of one class of d. -1 with err_set when a cached or shipped file is malformed, or when the class has
// no text at all (no answer, no shipped entry, no generic fallback).
int kb_load_class(const KbSettings *s, const KbDataset *d, const char *class_name, KbClassTexts *out);
// Every class of d, in d's order (*out: d->n_classes entries).
int kb_load_all(const KbSettings *s, const KbDataset *d, KbClassTexts **out);
void kb_class_texts_free(KbClassTexts *t);

// What the text tower consumes: texts[class_start[c] .. class_start[c+1]) are the descriptions of class c, in
// class order; an exact duplicate within a class is embedded once (it would weigh twice in the class mean).
// The strings are borrowed from per_class, which must outlive the list.
typedef struct {
    int n_texts;
    const char **texts;
    int n_classes;
    int *class_start;   // n_classes + 1
} KbEmbedList;

void kb_embed_order(const KbClassTexts *per_class, int n_classes, KbEmbedList *out);
void kb_embed_list_free(KbEmbedList *l);

#endif
