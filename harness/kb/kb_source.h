// Where a class's knowledge came from, in one line a person can read in the log, provenance.json and the tables'
// notes: fetched LLM answers (n of llm_n) and the endpoint's model, or the shipped / generic text standing in,
// and the VQA answers (n of those planned) with their model.
#ifndef HARNESS_KB_SOURCE_H
#define HARNESS_KB_SOURCE_H

#include <stddef.h>

#include "harness/kb/kb_loader.h"
#include "harness/kb/kb_settings.h"

// buf: e.g. "fetched LLM answers 5 of 5 (llama3.2-vision); VQA answers 3 of 3 (llama3.2-vision)" or
// "shipped text (kb-cache/shipped/mvtec.jsonl:4) for the LLM answers (0 of 5 fetched); VQA answers 0 of 3".
// Returns 1 when every answer is fetched (LLM: at least llm_n descriptions; VQA: all planned), else 0.
int kb_source_describe(const KbSettings *s, const KbClassTexts *t, char *buf, size_t cap);

#endif
