// kanoclip kb build|show|embed: fill the knowledge-base answer cache from an OpenAI-compatible endpoint, print the
// descriptions each class would contribute (fetched, else shipped), or embed them with the frozen CLIP text tower
// into the HDF5 embedding cache and print per-class counts.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/config/config.h"
#include "harness/kb/kb_build.h"
#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_embed.h"
#include "harness/kb/kb_loader.h"
#include "harness/kb/kb_settings.h"
#include "common/error.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kanoclip kb build [CONFIG [key=value ...]] [options]\n"
    "       kanoclip kb show  [CONFIG [key=value ...]] [options]\n"
    "       kanoclip kb embed [CONFIG [key=value ...]] [--checkpoint DIR] [--vocab PATH] [options]\n"
    "\n"
    "build  asks the endpoint the LLM question for every class and the VQA question for every anomalous\n"
    "       image, caching each answer under CACHE/answers/; cached questions are not asked again.\n"
    "show   prints, as JSON, the descriptions each class contributes (fetched answers, else shipped).\n"
    "embed  runs those descriptions through the frozen CLIP text tower (truncated to its context, EOT kept,\n"
    "       L2-normalised) into CACHE/embeddings/text-<encoder hash>.h5, embedding only texts not cached\n"
    "       yet, and prints per-class counts as JSON.\n"
    "\n"
    "CONFIG (over experiments/defaults.yaml) gives the kb: section, data.train and model.checkpoint;\n"
    "options override it:\n"
    "  --base-url URL          endpoint base, POST URL/chat/completions (kb.base_url)\n"
    "  --model M               model for the LLM question (kb.model)\n"
    "  --vqa-model M           model for the VQA question (kb.vqa_model; default: --model)\n"
    "  --api-key-env NAME      environment variable holding the API key (kb.api_key_env)\n"
    "  --dataset-type T        mvtec, visa, ... (kb.dataset)\n"
    "  --dataset-root DIR      the dataset's folder (kb.dataset_root)\n"
    "  --classes a,b,c         the classes (without a dataset reader)\n"
    "  --images DIR            anomalous images under DIR/<class>/ (without a dataset reader)\n"
    "  --offline               use only the cache; fail naming every missing answer (kb.offline)\n"
    "  --no-vqa                ask only the per-class LLM question (kb.vqa: false)\n"
    "  --concurrency N         requests in flight (kb.concurrency)\n"
    "  --cache-dir DIR         answers go to DIR/answers (kb.cache_dir)\n"
    "  --shipped-dir DIR       hand-written descriptions (kb.shipped_dir)\n"
    "  --checkpoint DIR        embed: Hugging Face CLIP folder (model.checkpoint)\n"
    "  --vocab PATH            embed: tokenizer files when DIR has none (folder or bpe_simple_vocab_16e6.txt.gz)\n"
    "  --embed-batch N         embed: texts per forward (kb.embed_batch)\n"
    "  --llm-prompt T, --vqa-prompt T, --system-prompt T, --llm-n N, --vqa-m N, --max-images-per-class N\n"
    "  --temperature X, --top-p X, --seed N, --max-tokens N\n"
    "  --timeout S, --connect-timeout S, --low-speed-time S, --low-speed-limit BPS,\n"
    "  --retries N, --backoff S, --backoff-max S\n";

typedef enum { F_STR, F_INT, F_LONG, F_DOUBLE, F_SET, F_CLEAR } FlagType;

typedef struct {
    const char *name;
    FlagType type;
    size_t offset;  // into KbSettings
} Flag;

#define OFF(f) offsetof(KbSettings, f)
static const Flag flags[] = {
    {"--base-url", F_STR, OFF(base_url)},
    {"--model", F_STR, OFF(model)},
    {"--vqa-model", F_STR, OFF(vqa_model)},
    {"--api-key-env", F_STR, OFF(api_key_env)},
    {"--dataset-type", F_STR, OFF(dataset_type)},
    {"--dataset-root", F_STR, OFF(dataset_root)},
    {"--cache-dir", F_STR, OFF(cache_dir)},
    {"--shipped-dir", F_STR, OFF(shipped_dir)},
    {"--llm-prompt", F_STR, OFF(llm_prompt)},
    {"--vqa-prompt", F_STR, OFF(vqa_prompt)},
    {"--system-prompt", F_STR, OFF(system_prompt)},
    {"--offline", F_SET, OFF(offline)},
    {"--no-vqa", F_CLEAR, OFF(vqa)},
    {"--concurrency", F_INT, OFF(concurrency)},
    {"--llm-n", F_INT, OFF(llm_n)},
    {"--vqa-m", F_INT, OFF(vqa_m)},
    {"--max-images-per-class", F_INT, OFF(vqa_max_images_per_class)},
    {"--embed-batch", F_INT, OFF(embed_batch)},
    {"--retries", F_INT, OFF(max_retries)},
    {"--seed", F_LONG, OFF(seed)},
    {"--max-tokens", F_LONG, OFF(max_tokens)},
    {"--low-speed-limit", F_LONG, OFF(low_speed_limit_bps)},
    {"--temperature", F_DOUBLE, OFF(temperature)},
    {"--top-p", F_DOUBLE, OFF(top_p)},
    {"--timeout", F_DOUBLE, OFF(timeout_s)},
    {"--connect-timeout", F_DOUBLE, OFF(connect_timeout_s)},
    {"--low-speed-time", F_DOUBLE, OFF(low_speed_time_s)},
    {"--backoff", F_DOUBLE, OFF(backoff_initial_s)},
    {"--backoff-max", F_DOUBLE, OFF(backoff_max_s)},
};

static const Flag *find_flag(const char *name) {
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(flags[i].name, name)) return &flags[i];
    return NULL;
}

// Applies one flag with its value; 2 on a usage error (message printed).
static int apply_flag(KbSettings *s, const Flag *f, const char *value) {
    char *field = (char *)s + f->offset;
    char *end = NULL;
    switch (f->type) {
    case F_STR: kb_settings_set((char **)field, value); return 0;
    case F_SET: *(int *)field = 1; return 0;
    case F_CLEAR: *(int *)field = 0; return 0;
    case F_INT:
    case F_LONG: {
        long v = strtol(value, &end, 10);
        if (!*value || *end) break;
        if (f->type == F_INT) *(int *)field = (int)v;
        else *(long *)field = v;
        return 0;
    }
    case F_DOUBLE: {
        double v = strtod(value, &end);
        if (!*value || *end) break;
        *(double *)field = v;
        return 0;
    }
    }
    fprintf(stderr, "kanoclip kb: %s: '%s' is not a number\n", f->name, value);
    return 2;
}

// Options cmd_kb reads itself (each takes a value) rather than into KbSettings.
static int is_local_option(const char *a) {
    return !strcmp(a, "--classes") || !strcmp(a, "--images") || !strcmp(a, "--checkpoint") || !strcmp(a, "--vocab");
}

static int show(const KbSettings *s, const KbDataset *d) {
    KbClassTexts *per_class = NULL;
    if (kb_load_all(s, d, &per_class) != 0) return fail_with_error();
    KbEmbedList list;
    kb_embed_order(per_class, d->n_classes, &list);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "dataset", d->type);
    cJSON *classes = cJSON_AddObjectToObject(root, "classes");
    for (int c = 0; c < d->n_classes; c++) {
        const KbClassTexts *t = &per_class[c];
        cJSON *o = cJSON_AddObjectToObject(classes, t->class_name);
        cJSON_AddStringToObject(o, "llm_source", t->llm_source);
        if (t->shipped_where) cJSON_AddStringToObject(o, "shipped", t->shipped_where);
        cJSON_AddNumberToObject(o, "vqa_answers", t->n_vqa);
        cJSON_AddNumberToObject(o, "vqa_questions", t->n_vqa_asked);
        cJSON *texts = cJSON_AddArrayToObject(o, "texts");
        for (int k = list.class_start[c]; k < list.class_start[c + 1]; k++)
            cJSON_AddItemToArray(texts, cJSON_CreateString(list.texts[k]));
    }
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    kb_embed_list_free(&list);
    for (int c = 0; c < d->n_classes; c++) kb_class_texts_free(&per_class[c]);
    free(per_class);
    return 0;
}

// Loads the text tower and its tokenizer, embeds every class's texts (cache first) and prints per-class counts.
static int embed(const KbSettings *s, const KbDataset *d, const char *checkpoint, const char *vocab) {
    KbClassTexts *per_class = NULL;
    if (kb_load_all(s, d, &per_class) != 0) return fail_with_error();
    ClipModel *model = clip_model_load(checkpoint, CLIP_TEXT);
    Tokenizer *tok = model ? (vocab ? tokenizer_load(vocab) : tokenizer_load_dir(checkpoint)) : NULL;
    int rc = 0;
    KbEmbedStats st;
    float *means = NULL;
    if (!model || !tok) rc = fail_with_error();
    else {
        means = malloc(sizeof *means * (size_t)d->n_classes * model->text.proj_dim);  // (n_classes, P)
        if (kb_class_embeddings_stats(s, d, model, tok, s->cache_dir, means, stderr, &st) != 0) rc = fail_with_error();
    }
    if (rc == 0) {
        int unanswered = 0, generic = 0;
        for (int c = 0; c < d->n_classes; c++) {
            unanswered += per_class[c].n_vqa_asked - per_class[c].n_vqa_answered;
            generic += !strcmp(per_class[c].llm_source, "generic");
        }
        if (unanswered > 0)
            fprintf(stderr, "kb embed: %d VQA questions have no cached answer (kanoclip kb build asks them)\n",
                    unanswered);
        if (generic > 0)
            fprintf(stderr, "kb embed: %d of %d classes use the generic descriptions (no fetched or shipped ones): "
                            "their means are the same\n", generic, d->n_classes);
        KbEmbedList list;
        kb_embed_order(per_class, d->n_classes, &list);
        char *cache = kb_embed_cache_path(s->cache_dir, st.encoder_hash);
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "dataset", d->type);
        cJSON_AddStringToObject(root, "checkpoint", checkpoint);
        cJSON_AddStringToObject(root, "encoder_hash", st.encoder_hash);
        cJSON_AddStringToObject(root, "cache", cache);
        cJSON_AddNumberToObject(root, "dim", model->text.proj_dim);
        cJSON_AddNumberToObject(root, "texts", st.n_texts);
        cJSON_AddNumberToObject(root, "distinct", st.n_distinct);
        cJSON_AddNumberToObject(root, "embedded", st.n_embedded);
        cJSON_AddNumberToObject(root, "cached", st.n_cached);
        cJSON *classes = cJSON_AddObjectToObject(root, "classes");
        for (int c = 0; c < d->n_classes; c++) {
            const KbClassTexts *t = &per_class[c];
            cJSON *o = cJSON_AddObjectToObject(classes, t->class_name);
            cJSON_AddNumberToObject(o, "texts", list.class_start[c + 1] - list.class_start[c]);
            cJSON_AddNumberToObject(o, "llm", t->n - t->n_vqa);
            cJSON_AddStringToObject(o, "llm_source", t->llm_source);
            cJSON_AddNumberToObject(o, "vqa_answers", t->n_vqa);
            cJSON_AddNumberToObject(o, "vqa_questions", t->n_vqa_asked);
            cJSON_AddNumberToObject(o, "vqa_answered", t->n_vqa_answered);
        }
        char *text = cJSON_Print(root);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
        free(cache);
        kb_embed_list_free(&list);
    }
    free(means);
    tokenizer_free(tok);
    clip_model_free(model);
    for (int c = 0; c < d->n_classes; c++) kb_class_texts_free(&per_class[c]);
    free(per_class);
    return rc;
}

int cmd_kb(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("usage: kanoclip kb build|show|embed [CONFIG [key=value ...]] [options]");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { fputs(usage_text, stdout); return 0; }
    const char *sub = argv[1];
    if (strcmp(sub, "build") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "embed") != 0) {
        fprintf(stderr, "kanoclip kb: unknown subcommand '%s' (build, show, embed)\n", sub);
        return 2;
    }
    // First pass: the config and its key=value overrides; flags are applied over them in the second pass.
    const char *config_path = NULL;
    char **overrides = calloc(argc, sizeof *overrides);
    int n_overrides = 0;
    const char *classes = NULL, *images = NULL, *checkpoint_flag = NULL, *vocab = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); free(overrides); return 0; }
        if (!strncmp(a, "--", 2)) {
            const Flag *f = find_flag(a);
            int takes_value = f ? (f->type != F_SET && f->type != F_CLEAR) : is_local_option(a);
            if (!f && !takes_value) {
                fprintf(stderr, "kanoclip kb: unknown option '%s' (see 'kanoclip kb --help')\n", a);
                free(overrides);
                return 2;
            }
            if (takes_value && i + 1 >= argc) {
                fprintf(stderr, "kanoclip kb: %s needs a value\n", a);
                free(overrides);
                return 2;
            }
            if (!strcmp(a, "--classes")) classes = argv[i + 1];
            if (!strcmp(a, "--images")) images = argv[i + 1];
            if (!strcmp(a, "--checkpoint")) checkpoint_flag = argv[i + 1];
            if (!strcmp(a, "--vocab")) vocab = argv[i + 1];
            i += takes_value;
        } else if (strchr(a, '=') && config_path) {
            overrides[n_overrides++] = argv[i];
        } else if (!config_path && !strchr(a, '=')) {
            config_path = a;
        } else {
            fprintf(stderr, "kanoclip kb: unexpected argument '%s'\n", a);
            free(overrides);
            return 2;
        }
    }

    KbSettings s;
    kb_settings_defaults(&s);
    int rc = 0;
    char *checkpoint = checkpoint_flag ? strdup(checkpoint_flag) : NULL;
    if (config_path) {
        Config *cfg = config_load(config_path, NULL, n_overrides, overrides);
        if (!cfg || kb_settings_from_config(cfg, &s) != 0) rc = fail_with_error();
        const char *ck = NULL;
        if (rc == 0 && !checkpoint && config_get_str(cfg, "model.checkpoint", &ck) == 0 && ck && ck[0])
            checkpoint = strdup(ck);
        config_free(cfg);
    }
    free(overrides);
    for (int i = 2; i < argc && rc == 0; i++) {
        const Flag *f = find_flag(argv[i]);
        if (f) {
            int takes_value = f->type != F_SET && f->type != F_CLEAR;
            rc = apply_flag(&s, f, takes_value ? argv[i + 1] : NULL);
            i += takes_value;
        } else if (is_local_option(argv[i])) {
            i++;
        }
    }
    if (rc == 0 && kb_settings_check(&s) != 0) rc = fail_with_error();

    KbDataset d = {0};
    int have_data = 0;
    if (rc == 0) {
        if (classes || images) {
            if (kb_dataset_walk(images, classes, &d) != 0) rc = fail_with_error();
            else {
                have_data = 1;
                free(d.type);
                d.type = strdup(s.dataset_type);
            }
        } else if (s.dataset_root[0]) {
            if (kb_dataset_load(s.dataset_type, s.dataset_root, &d) != 0) rc = fail_with_error();
            else have_data = 1;
        } else {
            fprintf(stderr, "kanoclip kb: no dataset: give --dataset-root DIR (kb.dataset_root), or --classes a,b,c "
                            "and/or --images DIR\n");
            rc = 2;
        }
    }
    if (rc == 0 && have_data && d.n_classes == 0) {
        err_set("%s: no classes found", images ? images : s.dataset_root);
        rc = fail_with_error();
    }
    if (rc == 0 && !strcmp(sub, "embed") && !checkpoint) {
        fprintf(stderr, "kanoclip kb embed: no checkpoint: give --checkpoint DIR (model.checkpoint)\n");
        rc = 2;
    }
    if (rc == 0 && !strcmp(sub, "build")) {
        KbBuildStats stats;
        if (kb_build(&s, &d, stderr, &stats) != 0) rc = fail_with_error();
    } else if (rc == 0 && !strcmp(sub, "embed")) {
        rc = embed(&s, &d, checkpoint, vocab);
    } else if (rc == 0) {
        rc = show(&s, &d);
    }
    if (have_data) kb_dataset_free(&d);
    kb_settings_free(&s);
    free(checkpoint);
    return rc;
}
