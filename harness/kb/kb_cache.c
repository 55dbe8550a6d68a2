#include "harness/kb/kb_cache.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *kb_cache_path(const char *cache_dir, const char *key) {
    size_t n = strlen(cache_dir) + strlen(key) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s%sanswers/%s.json", cache_dir, cache_dir[strlen(cache_dir) - 1] == '/' ? "" : "/", key);
    return p;
}

static void add_str(cJSON *o, const char *k, const char *v) {
    if (v) cJSON_AddStringToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

int kb_cache_write(const KbSettings *s, const KbQuestion *q, const KbCallResult *r, char **descriptions, int n) {
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *endpoint = kb_url_public(s->base_url);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "key", q->key);
    cJSON_AddStringToObject(root, "kind", q->kind == KB_LLM ? "llm" : "vqa");
    cJSON_AddStringToObject(root, "class", q->class_name);
    add_str(root, "image", q->image_rel);
    add_str(root, "image_sha256", q->kind == KB_VQA ? q->image_sha256 : NULL);
    cJSON *src = cJSON_AddObjectToObject(root, "source");
    cJSON_AddStringToObject(src, "model", q->model);
    add_str(src, "response_model", r->response_model);
    cJSON_AddStringToObject(src, "endpoint", endpoint);
    cJSON_AddStringToObject(src, "prompt", q->prompt);
    cJSON_AddStringToObject(src, "system_prompt", s->system_prompt);
    cJSON *params = cJSON_AddObjectToObject(src, "params");
    cJSON_AddNumberToObject(params, "temperature", s->temperature);
    cJSON_AddNumberToObject(params, "top_p", s->top_p);
    cJSON_AddNumberToObject(params, "seed", (double)s->seed);
    cJSON_AddNumberToObject(params, "max_tokens", (double)s->max_tokens);
    cJSON_AddStringToObject(src, "date", date);
    add_str(src, "finish_reason", r->finish_reason);
    add_str(src, "system_fingerprint", r->system_fingerprint);
    cJSON_AddStringToObject(src, "written_by", "kanoclip kb build");
    cJSON_AddStringToObject(root, "canonical_request", q->canonical);
    cJSON_AddStringToObject(root, "answer", r->content);
    cJSON *d = cJSON_AddArrayToObject(root, "descriptions");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(d, cJSON_CreateString(descriptions[i]));
    free(endpoint);

    char *dir = fs_join(s->cache_dir, "answers");
    int rc = fs_mkdirs(dir);
    free(dir);
    char *path = kb_cache_path(s->cache_dir, q->key);
    if (rc == 0) rc = json_write_file(path, root);
    cJSON_Delete(root);
    free(path);
    return rc;
}

static char *dup_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

int kb_cache_read(const char *cache_dir, const char *key, KbAnswer *out) {
    memset(out, 0, sizeof *out);
    char *path = kb_cache_path(cache_dir, key);
    if (!fs_exists(path)) { free(path); return 0; }
    cJSON *j = json_read_object(path);
    int rc = 1;
    if (!j) { rc = -1; goto done; }
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    if (!cJSON_IsString(k) || strcmp(k->valuestring, key) != 0) { rc = err_set("%s: field 'key' does not match the file name", path); goto done; }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "llm") && strcmp(kind->valuestring, "vqa"))) {
        rc = err_set("%s: field 'kind' must be \"llm\" or \"vqa\"", path);
        goto done;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "descriptions");
    if (!cJSON_IsArray(d)) { rc = err_set("%s: field 'descriptions' must be a list of strings", path); goto done; }
    out->kind = strcmp(kind->valuestring, "llm") == 0 ? KB_LLM : KB_VQA;
    out->class_name = dup_field(j, "class");
    out->image = dup_field(j, "image");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    out->model = dup_field(src, "model");
    out->prompt = dup_field(src, "prompt");
    out->date = dup_field(src, "date");
    out->answer = dup_field(j, "answer");
    int m = cJSON_GetArraySize(d);
    out->descriptions = calloc(m > 0 ? m : 1, sizeof *out->descriptions);
    for (int i = 0; i < m; i++) {
        const cJSON *e = cJSON_GetArrayItem(d, i);
        if (!cJSON_IsString(e)) {
            kb_answer_free(out);
            rc = err_set("%s: descriptions[%d] is not a string", path, i);
            goto done;
        }
        if (e->valuestring[0]) out->descriptions[out->n_descriptions++] = strdup(e->valuestring);
    }
done:
    cJSON_Delete(j);
    free(path);
    return rc;
}

void kb_answer_free(KbAnswer *a) {
    free(a->class_name);
    free(a->image);
    free(a->model);
    free(a->prompt);
    free(a->date);
    free(a->answer);
    for (int i = 0; i < a->n_descriptions; i++) free(a->descriptions[i]);
    free(a->descriptions);
    memset(a, 0, sizeof *a);
}
