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

// A line of kb_source_describe read back (as provenance.json's kb_source.<class> holds it).
typedef struct {
    char source[32];        // "fetched", "shipped", "generic" or "no"
    int llm_got, llm_want;  // LLM descriptions fetched, and kb.llm_n
    char llm_model[128];    // the endpoint's model ("" unless fetched)
    int vqa_got, vqa_asked; // VQA answers fetched, and the questions planned
    char vqa_model[128];    // "" when no question was planned
} KbSourceFacts;
// 0, or -1 (no err_set) when line is not a kb_source_describe line.
int kb_source_parse(const char *line, KbSourceFacts *out);

// The classes' lines in one sentence for the tables' notes, e.g. "15 classes: LLM answers fetched for 12 (5 of 5
// each, gpt-3.5-turbo), shipped text for 3; VQA answers 40 of 45 (llama3)". Lines that do not parse are counted
// as "unrecorded". malloc'd; NULL when n is 0.
char *kb_source_summary(const char *const *lines, int n);

#endif
