// Runs grouped by config (see run_groups.h).
#include "harness/report/run_groups.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Keys that say where a run goes or how it is shown, not what it computes: they never split a group (the bootstrap
// adds intervals, and runs are paired by resample only where their resamples agree: run_boot.h).
static const char *const IGNORED[] = {"run.seed", "run.name", "run.out_dir", "run.threads", "cache.", "report.",
                                      "eval.overlays", "eval.save_maps", "eval.bootstrap", "eval.bootstrap_seed",
                                      "kb.concurrency", "kb.api_key_env"};

static int ignored(const char *key) {
    for (size_t i = 0; i < sizeof IGNORED / sizeof *IGNORED; i++) {
        size_t n = strlen(IGNORED[i]);
        if (IGNORED[i][n - 1] == '.' ? !strncmp(key, IGNORED[i], n) : !strcmp(key, IGNORED[i])) return 1;
    }
    return 0;
}

typedef struct { char **kv; int n; } Flat;  // "dotted.key=value" lines, in file order

// config.yaml as the harness writes it (block mappings indented by two, scalars and flow lists on one line,
// block lists of flow items) flattened into key=value lines.
static int flatten(const char *text, Flat *out) {
    char *path[16] = {0};
    int depth_of[16] = {0}, top = 0;
    StrBuf line_key = {0};
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int indent = (int)strspn(line, " ");
        char *body = line + indent;
        if (!*body || *body == '#') continue;
        if (body[0] == '-' && out->n > 0) {  // an item of the block list under the last key
            char *prev = out->kv[out->n - 1];
            size_t len = strlen(prev) + strlen(body) + 2;
            out->kv[out->n - 1] = realloc(prev, len);
            strcat(out->kv[out->n - 1], " ");
            strcat(out->kv[out->n - 1], body);
            continue;
        }
        char *colon = strstr(body, ": ");
        if (!colon && body[strlen(body) - 1] == ':') colon = body + strlen(body) - 1;
        if (!colon) continue;
        *colon = 0;
        while (top > 0 && depth_of[top - 1] >= indent) free(path[--top]);
        char *value = colon[1] ? colon + 2 : NULL;
        free(line_key.s);
        line_key = (StrBuf){0};
        for (int i = 0; i < top; i++) strbuf_printf(&line_key, "%s.", path[i]);
        strbuf_printf(&line_key, "%s", body);
        if (value && *value) {
            out->kv = realloc(out->kv, sizeof(char *) * (out->n + 1));
            StrBuf kv = {0};
            strbuf_printf(&kv, "%s=%s", line_key.s, value);
            out->kv[out->n++] = strbuf_take(&kv);
        } else if (top < 16) {
            path[top] = strdup(body);
            depth_of[top++] = indent;
            // a key whose value is a block list: keep it, the items are appended to it
            out->kv = realloc(out->kv, sizeof(char *) * (out->n + 1));
            StrBuf kv = {0};
            strbuf_printf(&kv, "%s=", line_key.s);
            out->kv[out->n++] = strbuf_take(&kv);
        }
    }
    while (top > 0) free(path[--top]);
    free(line_key.s);
    free(copy);
    return 0;
}

static void flat_free(Flat *f) {
    for (int i = 0; i < f->n; i++) free(f->kv[i]);
    free(f->kv);
    f->kv = NULL;
    f->n = 0;
}

// The value of key in f ("" when absent); key is "a.b" (without "=").
static const char *value_of(const Flat *f, const char *key) {
    size_t n = strlen(key);
    for (int i = 0; i < f->n; i++)
        if (!strncmp(f->kv[i], key, n) && f->kv[i][n] == '=') return f->kv[i] + n + 1;
    return "";
}

// The group's key: every line but the ignored keys, joined.
static char *group_key(const Flat *f) {
    StrBuf b = {0};
    strbuf_printf(&b, "%s", "");
    for (int i = 0; i < f->n; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(f->kv[i], "="), f->kv[i]);
        if (!ignored(key)) strbuf_printf(&b, "%s\n", f->kv[i]);
    }
    return strbuf_take(&b);
}

int runs_split_by_config(RunResult *runs, int n) {
    Flat *flat = calloc((size_t)n + 1, sizeof *flat);
    char **key = calloc((size_t)n + 1, sizeof *key);
    for (int i = 0; i < n; i++) {
        char *p = fs_join(runs[i].dir, "config.yaml");
        char *text = fs_exists(p) ? fs_read_file(p, NULL) : NULL;
        free(p);
        if (text) flatten(text, &flat[i]);
        free(text);
        key[i] = group_key(&flat[i]);
    }
    char **new_label = calloc((size_t)n + 1, sizeof *new_label);
    for (int i = 0; i < n; i++) {
        // the runs of i's label, and whether they hold more than one config
        int several = 0;
        for (int j = 0; j < n; j++)
            if (!strcmp(runs[j].label, runs[i].label) && strcmp(key[j], key[i])) several = 1;
        if (!several) continue;
        // the keys on which i's config differs from any other config of its label, named with i's values
        StrBuf b = {0};
        strbuf_printf(&b, "%s (", runs[i].label);
        int first = 1;
        for (int k = 0; k < flat[i].n; k++) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(flat[i].kv[k], "="), flat[i].kv[k]);
            if (ignored(name)) continue;
            int differs = 0;
            for (int j = 0; j < n && !differs; j++)
                if (!strcmp(runs[j].label, runs[i].label) && strcmp(key[j], key[i]) &&
                    strcmp(value_of(&flat[j], name), value_of(&flat[i], name)))
                    differs = 1;
            if (differs) {
                strbuf_printf(&b, "%s%s", first ? "" : ", ", flat[i].kv[k]);
                first = 0;
            }
        }
        strbuf_printf(&b, ")");
        new_label[i] = strbuf_take(&b);
    }
    for (int i = 0; i < n; i++) {
        if (new_label[i]) {
            free(runs[i].label);
            runs[i].label = new_label[i];
        }
        flat_free(&flat[i]);
        free(key[i]);
    }
    free(new_label);
    free(flat);
    free(key);
    return 0;
}
