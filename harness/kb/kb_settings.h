// Settings of the knowledge-base client: where to ask (an OpenAI-compatible endpoint), what to ask (the paper's
// LLM question per class and VQA question per anomalous image), how to sample, how patiently to wait, and where
// answers are cached. Filled from the `kb:` section of a config (kb_settings_from_config) or from command-line
// flags (cmd_kb.c); the kb: section of experiments/defaults.yaml lists every key with its default.
#ifndef HARNESS_KB_SETTINGS_H
#define HARNESS_KB_SETTINGS_H

typedef struct Config Config;

typedef struct {
    // Endpoint: POST {base_url}/chat/completions. The API key is read from the environment variable named by
    // api_key_env at request time and is never stored (not here, not in caches, not in messages).
    char *base_url;       // e.g. "http://127.0.0.1:11434/v1"
    char *model;          // model for the per-class LLM question
    char *vqa_model;      // model for the per-image VQA question ("" = model)
    char *api_key_env;    // name of the variable holding the key ("" = send no Authorization header)
    // Sampling: always sent, because server defaults differ (Ollama temperature 1.0, llama.cpp seed -1).
    double temperature;
    double top_p;
    long seed;
    long max_tokens;
    // Questions. "{class}" is replaced by the class's readable name, "{n}" by llm_n.
    char *system_prompt;  // "" = no system message
    char *llm_prompt;
    int llm_n;            // descriptions kept per class (the paper's n = 5)
    int vqa;              // ask the VQA question for anomalous images
    char *vqa_prompt;
    int vqa_m;            // descriptions kept per image (the paper's m = 1)
    int vqa_max_images_per_class;  // 0 = all anomalous images
    // Transport.
    int concurrency;           // requests in flight at once
    double connect_timeout_s;
    long low_speed_limit_bps;  // abort when slower than this ...
    double low_speed_time_s;   // ... for this long (whole seconds; at least 1)
    double timeout_s;          // cap on one whole request (0 = none)
    int max_retries;           // retries after the first try, on timeouts and HTTP 408/429/500/502/503/504
    double backoff_initial_s;  // first wait; doubles per retry, with jitter
    double backoff_max_s;      // cap on one wait; a Retry-After above it fails the request
    // Cache and data.
    char *cache_dir;      // fetched answers go to {cache_dir}/answers/
    char *shipped_dir;    // the committed, hand-written descriptions (kb-cache/shipped)
    int offline;          // use only the cache; a missing answer is an error that names it
    char *dataset_type;   // mvtec, visa, ... (chooses the shipped file and the reader)
    char *dataset_root;
    // Embedding (kb embed, training): texts per text-tower forward.
    int embed_batch;
    // kb.require: 1 "fetched": a training run stops before compute unless every class has its fetched LLM
    // answers (llm_n of them) and every planned VQA answer; 0 "any": shipped or generic text may stand in.
    int require_fetched;
} KbSettings;

// The defaults of the kb: section of experiments/defaults.yaml. Strings are malloc'd; kb_settings_free releases them.
void kb_settings_defaults(KbSettings *s);
void kb_settings_free(KbSettings *s);
// dst = a deep copy of src (its strings duplicated); kb_settings_free releases it.
void kb_settings_copy(KbSettings *dst, const KbSettings *src);
// Replaces a string field (frees the old value, copies the new one).
void kb_settings_set(char **field, const char *value);
// Reads every `kb.*` key of cfg over the defaults; -1 with err_set naming the key on a type error.
// kb.dataset empty means the training dataset (data.train.type); kb.dataset_root empty means data.train.root
// (else data.roots.<type>) for the training dataset, data.roots.<kb.dataset> for another one.
int kb_settings_from_config(const Config *cfg, KbSettings *s);
// Range checks (concurrency >= 1, 0 <= top_p <= 1, ...); -1 with err_set naming the setting.
int kb_settings_check(const KbSettings *s);
// The model that answers VQA questions.
const char *kb_settings_vqa_model(const KbSettings *s);

#endif
