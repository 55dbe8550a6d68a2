// Text of the knowledge base: filling the question templates and turning a model's answer into single,
// clean descriptions (list numbering, bullets, Markdown emphasis, wrapping quotes and extra whitespace removed).
#ifndef HARNESS_KB_TEXT_H
#define HARNESS_KB_TEXT_H

// The template with every "{class}" replaced by class_name and every "{n}" by n (malloc'd).
char *kb_prompt_fill(const char *tmpl, const char *class_name, int n);
// A folder-style class name as words: "metal_nut" -> "metal nut" (malloc'd).
char *kb_class_words(const char *class_name);
// One description cleaned: list marker, emphasis and wrapping quotes removed, whitespace collapsed (malloc'd;
// "" when nothing is left).
char *kb_clean_description(const char *line);
// Splits an answer into at most max_items descriptions (*items malloc'd, each item malloc'd); returns the count.
// One item per non-empty line; lines that only introduce a list ("Here are five descriptions:") are dropped.
// A single paragraph asked for several items is split into sentences. With max_items == 1 the items are
// joined into one description (a VQA answer given as "Location: ...\nColour: ..." stays one description);
// otherwise the first max_items are kept.
int kb_split_answer(const char *answer, int max_items, char ***items);
void kb_free_strings(char **items, int n);

#endif
