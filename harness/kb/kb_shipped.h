// The shipped knowledge base: descriptions committed under kb-cache/shipped/ (kb.shipped_dir), one JSON-lines file per
// dataset type (mvtec.jsonl, visa.jsonl, ...) and generic.jsonl (class "object", the fallback). One line per
// class: {"dataset", "class", "aliases": [...], "prompt_name", "descriptions": [...], "source"}.
#ifndef HARNESS_KB_SHIPPED_H
#define HARNESS_KB_SHIPPED_H

typedef struct {
    char *dataset;
    char *class_name;
    char *prompt_name;     // the class in words, as put into the LLM/VQA question
    char **descriptions;
    int n;
    char *source;
    char *where;           // "file:line", for messages
} KbShippedEntry;

// Finds the shipped descriptions of class_name of dataset `type`: in {type}.jsonl by class or alias (case and
// '_' versus ' ' ignored), else that file's only entry when the dataset has one class; with an unknown or empty
// type, in any shipped file by class or alias. Returns 1 and fills *out, 0 when there is none, -1 with err_set
// naming file and line when a file is malformed.
int kb_shipped_find(const char *shipped_dir, const char *type, const char *class_name, KbShippedEntry *out);
// The generic fallback (generic.jsonl, class "object"): 1, 0 if absent, -1 on a malformed file.
int kb_shipped_generic(const char *shipped_dir, KbShippedEntry *out);
// Reads every entry of one shipped file (for checks); returns the count or -1.
int kb_shipped_read_file(const char *path, KbShippedEntry **out);
void kb_shipped_entry_free(KbShippedEntry *e);
// The class in words for questions: the shipped prompt_name when there is one, else "metal_nut" -> "metal nut".
char *kb_class_prompt_name(const char *shipped_dir, const char *type, const char *class_name);

#endif
