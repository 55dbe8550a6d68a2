#include "harness/kb/kb_shipped.h"
#include "harness/kb/kb_text.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kb_shipped_entry_free(KbShippedEntry *e) {
    free(e->dataset);
    free(e->class_name);
    free(e->prompt_name);
    kb_free_strings(e->descriptions, e->n);
    free(e->source);
    free(e->where);
    memset(e, 0, sizeof *e);
}

static char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

// One line as an entry; aliases go to *aliases (a JSON array kept for matching).
static int parse_line(const char *path, int line_no, const char *line, KbShippedEntry *e, cJSON **aliases) {
    memset(e, 0, sizeof *e);
    cJSON *j = cJSON_Parse(line);
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return err_set("%s:%d: not a JSON object", path, line_no); }
    e->dataset = str_field(j, "dataset");
    e->class_name = str_field(j, "class");
    e->prompt_name = str_field(j, "prompt_name");
    e->source = str_field(j, "source");
    const char *missing = !e->dataset ? "dataset" : !e->class_name ? "class" : !e->source ? "source" : NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "descriptions");
    if (!missing && (!cJSON_IsArray(d) || cJSON_GetArraySize(d) == 0)) missing = "descriptions";
    if (missing) {
        cJSON_Delete(j);
        kb_shipped_entry_free(e);
        return err_set("%s:%d: field '%s' missing or empty", path, line_no, missing);
    }
    if (!e->prompt_name) e->prompt_name = kb_class_words(e->class_name);
    e->n = cJSON_GetArraySize(d);
    e->descriptions = calloc(e->n, sizeof *e->descriptions);
    for (int i = 0; i < e->n; i++) {
        const cJSON *s = cJSON_GetArrayItem(d, i);
        if (!cJSON_IsString(s) || !s->valuestring[0]) {
            cJSON_Delete(j);
            kb_shipped_entry_free(e);
            return err_set("%s:%d: descriptions[%d] is not a non-empty string", path, line_no, i);
        }
        e->descriptions[i] = strdup(s->valuestring);
    }
    char where[1100];
    snprintf(where, sizeof where, "%s:%d", path, line_no);
    e->where = strdup(where);
    if (aliases) {
        *aliases = cJSON_DetachItemFromObjectCaseSensitive(j, "aliases");
        if (*aliases && !cJSON_IsArray(*aliases)) {
            cJSON_Delete(*aliases);
            *aliases = NULL;
            cJSON_Delete(j);
            kb_shipped_entry_free(e);
            return err_set("%s:%d: field 'aliases' must be a list", path, line_no);
        }
    }
    cJSON_Delete(j);
    return 0;
}

// Class names compare without case, and '_', '-' and ' ' count as the same.
static int same_class(const char *a, const char *b) {
    for (;; a++, b++) {
        int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);
        if (x == '_' || x == '-') x = ' ';
        if (y == '_' || y == '-') y = ' ';
        if (x != y) return 0;
        if (!x) return 1;
    }
}

// The next entry line of a JSONL text: *cursor advances past it (its newline becomes NUL), *line_no counts
// every line; blank and '#' lines are skipped. NULL at the end.
static const char *next_entry(char **cursor, int *line_no) {
    while (*cursor && **cursor) {
        char *line = *cursor, *nl = strchr(line, '\n');
        *cursor = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        (*line_no)++;
        while (isspace((unsigned char)*line)) line++;
        if (*line && *line != '#') return line;
    }
    return NULL;
}

// Visits the entries of one file; stops at the first for which match() says 1.
// Returns 1 (found, *out filled), 0, or -1. *count gets the number of entries seen.
static int scan_file(const char *path, const char *class_name, KbShippedEntry *out, int *count, KbShippedEntry *only) {
    size_t n = 0;
    char *text = fs_read_file(path, &n);
    if (!text) return -1;
    int line_no = 0, found = 0;
    *count = 0;
    char *cursor = text;
    for (const char *p; !found && (p = next_entry(&cursor, &line_no));) {
        KbShippedEntry e;
        cJSON *aliases = NULL;
        if (parse_line(path, line_no, p, &e, &aliases) != 0) { free(text); return -1; }
        (*count)++;
        int match = same_class(e.class_name, class_name);
        cJSON *a;
        cJSON_ArrayForEach(a, aliases) if (cJSON_IsString(a) && same_class(a->valuestring, class_name)) match = 1;
        cJSON_Delete(aliases);
        if (match) { *out = e; found = 1; }
        else if (only && *count == 1) *only = e;
        else kb_shipped_entry_free(&e);
    }
    free(text);
    return found;
}

int kb_shipped_read_file(const char *path, KbShippedEntry **out) {
    size_t n = 0;
    char *text = fs_read_file(path, &n);
    if (!text) return -1;
    int count = 0, line_no = 0;
    *out = NULL;
    char *cursor = text;
    for (const char *p; (p = next_entry(&cursor, &line_no));) {
        *out = realloc(*out, (count + 1) * sizeof **out);
        if (parse_line(path, line_no, p, &(*out)[count], NULL) != 0) {
            for (int i = 0; i < count; i++) kb_shipped_entry_free(&(*out)[i]);
            free(*out);
            *out = NULL;
            free(text);
            return -1;
        }
        count++;
    }
    free(text);
    return count;
}

static char *shipped_path(const char *shipped_dir, const char *name) { return fs_join(shipped_dir, name); }

int kb_shipped_find(const char *shipped_dir, const char *type, const char *class_name, KbShippedEntry *out) {
    memset(out, 0, sizeof *out);
    int count = 0;
    if (type && type[0]) {
        char file[256];
        snprintf(file, sizeof file, "%s.jsonl", type);
        char *path = shipped_path(shipped_dir, file);
        if (fs_exists(path)) {
            KbShippedEntry only = {0};
            int rc = scan_file(path, class_name, out, &count, &only);
            free(path);
            if (rc != 0) { kb_shipped_entry_free(&only); return rc; }
            // A one-class dataset: its entry, whatever the reader calls the class ("brain", "Brain_AD", ...).
            if (count == 1 && only.class_name) { *out = only; return 1; }
            kb_shipped_entry_free(&only);
            return 0;
        }
        free(path);
    }
    // No file for this type: look for the class in every shipped file, in name order.
    char *dir = strdup(shipped_dir);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t k = strlen(name);
        if (rc == 0 && k > 6 && !strcmp(name + k - 6, ".jsonl") && strcmp(name, "generic.jsonl")) {
            char *path = fs_join(dir, name);
            rc = scan_file(path, class_name, out, &count, NULL);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    free(dir);
    return rc;
}

int kb_shipped_generic(const char *shipped_dir, KbShippedEntry *out) {
    memset(out, 0, sizeof *out);
    char *path = shipped_path(shipped_dir, "generic.jsonl");
    int rc = 0, count = 0;
    if (fs_exists(path)) rc = scan_file(path, "object", out, &count, NULL);
    free(path);
    return rc;
}

char *kb_class_prompt_name(const char *shipped_dir, const char *type, const char *class_name) {
    KbShippedEntry e;
    if (kb_shipped_find(shipped_dir, type, class_name, &e) == 1) {
        char *name = strdup(e.prompt_name);
        kb_shipped_entry_free(&e);
        return name;
    }
    err_clear();
    return kb_class_words(class_name);
}
