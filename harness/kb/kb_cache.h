// The answer cache: one plain JSON file per answered question, {cache_dir}/answers/<key>.json, named by the
// question's key (kb_request.h). Each file records its source (model, prompt, endpoint without secrets,
// sampling parameters, date), the raw answer and the descriptions split from it, so a person can review or
// edit it. Written atomically; never holds the API key.
#ifndef HARNESS_KB_CACHE_H
#define HARNESS_KB_CACHE_H

#include "harness/kb/kb_client.h"
#include "harness/kb/kb_request.h"
#include "harness/kb/kb_settings.h"

typedef struct {
    KbKind kind;
    char *class_name;
    char *image;          // VQA: image path relative to the dataset root; NULL for LLM
    char *model;
    char *prompt;
    char *date;
    char *answer;         // raw answer text
    char **descriptions;  // n_descriptions, as used by the loader
    int n_descriptions;
} KbAnswer;

// {cache_dir}/answers/<key>.json (malloc'd).
char *kb_cache_path(const char *cache_dir, const char *key);
// Records a successful answer for q with its descriptions.
int kb_cache_write(const KbSettings *s, const KbQuestion *q, const KbCallResult *r, char **descriptions, int n);
// 1 and *out filled when the answer is cached, 0 when not, -1 with err_set naming the file when it is unreadable.
int kb_cache_read(const char *cache_dir, const char *key, KbAnswer *out);
void kb_answer_free(KbAnswer *a);

#endif
