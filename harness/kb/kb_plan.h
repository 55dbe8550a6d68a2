// The questions a knowledge base asks about a dataset, in a fixed order: for each class, the LLM question,
// then (when kb.vqa is on) the VQA question for each of its anomalous images, up to
// kb.vqa_max_images_per_class of them. `kb build` asks them; the loader looks their answers up by key.
#ifndef HARNESS_KB_PLAN_H
#define HARNESS_KB_PLAN_H

#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_request.h"
#include "harness/kb/kb_settings.h"

typedef struct {
    int n;
    KbQuestion *q;
} KbPlan;

// only_class: NULL for every class of d, else that class alone.
int kb_plan_make(const KbSettings *s, const KbDataset *d, const char *only_class, KbPlan *out);
void kb_plan_free(KbPlan *p);
// "llm bottle" or "vqa bottle/test/crack/000.png": how progress lines and errors name a question (malloc'd).
char *kb_question_label(const KbQuestion *q);

#endif
