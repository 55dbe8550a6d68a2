#include "harness/kb/kb_settings.h"
#include "harness/config/config.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#define KB_DEFAULT_LLM_PROMPT                                                                                     \
    "Describe what an abnormal image of {class} looks like? Give {n} different short descriptions, one per "    \
    "line, each naming the defect's location, colour, shape and size."
#define KB_DEFAULT_VQA_PROMPT                                                                                     \
    "This is an image of {class} with an anomaly. Describe the anomaly in one sentence: its location, colour, " \
    "shape and size."

void kb_settings_set(char **field, const char *value) {
    free(*field);
    *field = strdup(value ? value : "");
}

void kb_settings_copy(KbSettings *dst, const KbSettings *src) {
    *dst = *src;
    char **fields[] = {&dst->base_url, &dst->model, &dst->vqa_model, &dst->api_key_env, &dst->system_prompt,
                       &dst->llm_prompt, &dst->vqa_prompt, &dst->cache_dir, &dst->shipped_dir, &dst->dataset_type,
                       &dst->dataset_root};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) *fields[i] = *fields[i] ? strdup(*fields[i]) : NULL;
}

void kb_settings_defaults(KbSettings *s) {
    memset(s, 0, sizeof *s);
    kb_settings_set(&s->base_url, "http://127.0.0.1:11434/v1");
    kb_settings_set(&s->model, "llama3.2-vision");
    kb_settings_set(&s->vqa_model, "");
    kb_settings_set(&s->api_key_env, "KANOCLIP_KB_API_KEY");
    s->temperature = 0.0;
    s->top_p = 1.0;
    s->seed = 1234;
    s->max_tokens = 512;
    kb_settings_set(&s->system_prompt, "");
    kb_settings_set(&s->llm_prompt, KB_DEFAULT_LLM_PROMPT);
    s->llm_n = 5;
    s->vqa = 1;
    kb_settings_set(&s->vqa_prompt, KB_DEFAULT_VQA_PROMPT);
    s->vqa_m = 1;
    s->vqa_max_images_per_class = 0;
    s->concurrency = 4;
    s->connect_timeout_s = 10.0;
    s->low_speed_limit_bps = 1;
    s->low_speed_time_s = 300.0;
    s->timeout_s = 900.0;
    s->max_retries = 5;
    s->backoff_initial_s = 1.0;
    s->backoff_max_s = 120.0;
    kb_settings_set(&s->cache_dir, "kb-cache");
    kb_settings_set(&s->shipped_dir, "kb-cache/shipped");
    s->offline = 0;
    kb_settings_set(&s->dataset_type, "");
    kb_settings_set(&s->dataset_root, "");
    s->embed_batch = 32;
    s->require_fetched = 0;
}

void kb_settings_free(KbSettings *s) {
    char **strs[] = {&s->base_url,   &s->model,      &s->vqa_model, &s->api_key_env,  &s->system_prompt,
                     &s->llm_prompt, &s->vqa_prompt, &s->cache_dir, &s->shipped_dir, &s->dataset_type, &s->dataset_root};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) { free(*strs[i]); *strs[i] = NULL; }
}

const char *kb_settings_vqa_model(const KbSettings *s) {
    return s->vqa_model && s->vqa_model[0] ? s->vqa_model : s->model;
}

static int get_str(const Config *cfg, const char *key, char **field) {
    const char *v = NULL;
    if (config_get_str(cfg, key, &v) != 0) return -1;
    kb_settings_set(field, v);
    return 0;
}

static int get_int(const Config *cfg, const char *key, long *out) { return config_get_int(cfg, key, out); }

static int get_int_i(const Config *cfg, const char *key, int *out) {
    long v;
    if (config_get_int(cfg, key, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

static int get_float(const Config *cfg, const char *key, double *out) { return config_get_float(cfg, key, out); }

static int get_bool(const Config *cfg, const char *key, int *out) { return config_get_bool(cfg, key, out); }

// kb.dataset empty: the training dataset, data.train.type with data.train.root (empty: data.roots.<type>).
// kb.dataset set: its root is kb.dataset_root, else data.roots.<kb.dataset>. A root that cannot be found is
// left empty: the command then asks for --dataset-root (or --images / --classes).
static int kb_settings_dataset_from_config(const Config *cfg, KbSettings *s) {
    int own_type = s->dataset_type[0] != 0;
    if (!own_type && get_str(cfg, "data.train.type", &s->dataset_type) != 0) return -1;
    if (s->dataset_root[0]) return 0;
    if (!own_type) {
        ConfigDataset ds;
        if (config_train_dataset(cfg, &ds) == 0) kb_settings_set(&s->dataset_root, ds.root);
        else err_clear();
        return 0;
    }
    char key[300];
    snprintf(key, sizeof key, "data.roots.%s", s->dataset_type);
    const char *root = NULL;
    if (config_has(cfg, key) && config_get_str(cfg, key, &root) == 0 && root) kb_settings_set(&s->dataset_root, root);
    err_clear();
    return 0;
}

// kb.require: fetched | any.
static int get_require(const Config *cfg, int *fetched) {
    const char *v = NULL;
    if (!config_has(cfg, "kb.require")) return 0;
    if (config_get_str(cfg, "kb.require", &v) < 0) return -1;
    if (!v || !strcmp(v, "any")) *fetched = 0;
    else if (!strcmp(v, "fetched")) *fetched = 1;
    else return err_set("kb.require: '%s' (valid: fetched any)", v);
    return 0;
}

int kb_settings_from_config(const Config *cfg, KbSettings *s) {
    if (get_str(cfg, "kb.base_url", &s->base_url) || get_str(cfg, "kb.model", &s->model) ||
        get_str(cfg, "kb.vqa_model", &s->vqa_model) || get_str(cfg, "kb.api_key_env", &s->api_key_env) ||
        get_float(cfg, "kb.temperature", &s->temperature) || get_float(cfg, "kb.top_p", &s->top_p) ||
        get_int(cfg, "kb.seed", &s->seed) || get_int(cfg, "kb.max_tokens", &s->max_tokens) ||
        get_str(cfg, "kb.system_prompt", &s->system_prompt) || get_str(cfg, "kb.llm_prompt", &s->llm_prompt) ||
        get_int_i(cfg, "kb.llm_n", &s->llm_n) || get_bool(cfg, "kb.vqa", &s->vqa) ||
        get_str(cfg, "kb.vqa_prompt", &s->vqa_prompt) || get_int_i(cfg, "kb.vqa_m", &s->vqa_m) ||
        get_int_i(cfg, "kb.vqa_max_images_per_class", &s->vqa_max_images_per_class) ||
        get_int_i(cfg, "kb.concurrency", &s->concurrency) ||
        get_float(cfg, "kb.connect_timeout_s", &s->connect_timeout_s) ||
        get_int(cfg, "kb.low_speed_limit_bps", &s->low_speed_limit_bps) ||
        get_float(cfg, "kb.low_speed_time_s", &s->low_speed_time_s) ||
        get_float(cfg, "kb.timeout_s", &s->timeout_s) || get_int_i(cfg, "kb.max_retries", &s->max_retries) ||
        get_float(cfg, "kb.backoff_initial_s", &s->backoff_initial_s) ||
        get_float(cfg, "kb.backoff_max_s", &s->backoff_max_s) || get_str(cfg, "kb.cache_dir", &s->cache_dir) ||
        get_str(cfg, "kb.shipped_dir", &s->shipped_dir) ||
        get_bool(cfg, "kb.offline", &s->offline) || get_str(cfg, "kb.dataset", &s->dataset_type) ||
        get_str(cfg, "kb.dataset_root", &s->dataset_root) || get_int_i(cfg, "kb.embed_batch", &s->embed_batch) ||
        get_require(cfg, &s->require_fetched))
        return -1;
    return kb_settings_dataset_from_config(cfg, s) != 0 ? -1 : kb_settings_check(s);
}

int kb_settings_check(const KbSettings *s) {
    if (!s->base_url[0] && !s->offline) return err_set("kb.base_url: empty (give the endpoint, e.g. http://127.0.0.1:11434/v1)");
    if (strncmp(s->base_url, "http://", 7) != 0 && strncmp(s->base_url, "https://", 8) != 0 && s->base_url[0])
        return err_set("kb.base_url: '%s' is not an http:// or https:// URL", s->base_url);
    if (!s->model[0]) return err_set("kb.model: empty");
    if (s->temperature < 0 || s->temperature > 2) return err_set("kb.temperature: %g is outside [0, 2]", s->temperature);
    if (s->top_p <= 0 || s->top_p > 1) return err_set("kb.top_p: %g is outside (0, 1]", s->top_p);
    if (s->max_tokens < 1) return err_set("kb.max_tokens: %ld must be at least 1", s->max_tokens);
    if (s->llm_n < 1) return err_set("kb.llm_n: %d must be at least 1", s->llm_n);
    if (s->vqa_m < 1) return err_set("kb.vqa_m: %d must be at least 1", s->vqa_m);
    if (!strstr(s->llm_prompt, "{class}")) return err_set("kb.llm_prompt: has no {class} placeholder");
    if (s->vqa_max_images_per_class < 0) return err_set("kb.vqa_max_images_per_class: must be >= 0");
    if (s->concurrency < 1 || s->concurrency > 256) return err_set("kb.concurrency: %d is outside [1, 256]", s->concurrency);
    if (s->connect_timeout_s < 0) return err_set("kb.connect_timeout_s: must be >= 0");
    if (s->low_speed_limit_bps < 0) return err_set("kb.low_speed_limit_bps: must be >= 0");
    if (s->low_speed_time_s < 0) return err_set("kb.low_speed_time_s: must be >= 0");
    if (s->timeout_s < 0) return err_set("kb.timeout_s: must be >= 0");
    if (s->max_retries < 0 || s->max_retries > 100) return err_set("kb.max_retries: %d is outside [0, 100]", s->max_retries);
    if (s->backoff_initial_s < 0 || s->backoff_max_s < s->backoff_initial_s)
        return err_set("kb.backoff_initial_s/backoff_max_s: need 0 <= initial <= max");
    if (!s->cache_dir[0]) return err_set("kb.cache_dir: empty");
    if (s->embed_batch < 1 || s->embed_batch > 4096) return err_set("kb.embed_batch: %d is outside [1, 4096]", s->embed_batch);
    return 0;
}
