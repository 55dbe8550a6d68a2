// Knowledge-base embeddings against tests/ref_kb_embed.py (plain-PyTorch CLIP text tower with Hugging Face
// semantics, float64; the independent Python tokenizer): per-text normalised embeddings (one text beyond the 77-token
// context) and per-class means within 1e-4 relative; a second call embeds nothing; the cache is keyed by the text
// tower (another checkpoint gets its own file, and switching back reuses the first); the means come from the cache
// (an edited cached vector moves its class mean); `kanoclip kb embed` twice through the real binary.
#define _GNU_SOURCE
#include "tests/npy.h"
#include "tests/run_cli.h"
#include "tests/tmpdir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/cache/cache_embed.h"
#include "harness/kb/kb_cache.h"
#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_embed.h"
#include "harness/kb/kb_settings.h"
#include "harness/kb/kb_shipped.h"
#include "harness/cache/text_encoder_hash.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

#define FIX "build/fixtures/kb_embed"
#define TOL 1e-4


static char *tmp_root;

static void make_tmp(void) {
    char t[] = "/tmp/kanoclip-kbembed-XXXXXX";
    cr_assert_not_null(mkdtemp(t));
    tmp_root = strdup(t);
}

static void remove_tmp(void) {
    tmpdir_remove(tmp_root);
    free(tmp_root);
    tmp_root = NULL;
}

TestSuite(kb_embed, .init = make_tmp, .fini = remove_tmp, .timeout = 60);

typedef struct {
    int n_classes, n_texts;
    char **texts;
    int class_start[8];
} RefTexts;

static RefTexts ref_texts(void) {
    char *json = fs_read_file(FIX "/texts.json", NULL);
    cr_assert_not_null(json, "missing fixture " FIX "/texts.json (run make fixtures)");
    cJSON *root = cJSON_Parse(json);
    RefTexts r = {0};
    cJSON *texts = cJSON_GetObjectItem(root, "texts"), *starts = cJSON_GetObjectItem(root, "class_start");
    r.n_texts = cJSON_GetArraySize(texts);
    r.n_classes = cJSON_GetArraySize(cJSON_GetObjectItem(root, "classes"));
    r.texts = calloc(r.n_texts, sizeof *r.texts);
    for (int i = 0; i < r.n_texts; i++) r.texts[i] = strdup(cJSON_GetArrayItem(texts, i)->valuestring);
    for (int c = 0; c <= r.n_classes; c++) r.class_start[c] = cJSON_GetArrayItem(starts, c)->valueint;
    cJSON_Delete(root);
    free(json);
    return r;
}

static void ref_texts_free(RefTexts *r) {
    for (int i = 0; i < r->n_texts; i++) free(r->texts[i]);
    free(r->texts);
}

static void settings(KbSettings *s, const char *cache) {
    kb_settings_defaults(s);
    kb_settings_set(&s->shipped_dir, FIX "/shipped");
    kb_settings_set(&s->cache_dir, cache);
    s->embed_batch = 3;  // 7 distinct texts: three forwards, the last one short
}

static void dataset(KbDataset *d) {
    cr_assert_eq(kb_dataset_walk(NULL, "widget0,widget1,widget2", d), 0, "%s", err_msg());
    free(d->type);
    d->type = strdup("mvtec");  // the fixture's shipped/mvtec.jsonl
}

typedef struct {
    ClipModel *m;
    Tokenizer *tok;
} Tower;

static Tower tower(const char *dir) {
    Tower t = {clip_model_load(dir, CLIP_TEXT), tokenizer_load_dir(dir)};
    cr_assert_not_null(t.m, "%s", err_msg());
    cr_assert_not_null(t.tok, "%s", err_msg());
    return t;
}

static void tower_free(Tower *t) {
    clip_model_free(t->m);
    tokenizer_free(t->tok);
}

// Runs kb_class_embeddings_stats; the log line is returned in *log (malloc'd).
static void run(const KbSettings *s, const KbDataset *d, Tower *t, float *means, KbEmbedStats *st, char **log) {
    size_t n = 0;
    FILE *f = open_memstream(log, &n);
    int rc = kb_class_embeddings_stats(s, d, t->m, t->tok, s->cache_dir, means, f, st);
    fclose(f);
    cr_assert_eq(rc, 0, "%s", err_msg());
}

static int count_files(const char *dir, const char *suffix) {
    DIR *dd = opendir(dir);
    if (!dd) return 0;
    int n = 0;
    struct dirent *e;
    size_t k = strlen(suffix);
    while ((e = readdir(dd))) {
        size_t len = strlen(e->d_name);
        n += len >= k && !strcmp(e->d_name + len - k, suffix);
    }
    closedir(dd);
    return n;
}

Test(kb_embed, matches_pytorch_and_the_second_call_reads_the_cache) {
    RefTexts r = ref_texts();
    cr_assert_eq(r.n_classes, 3);
    char *cache = fs_join(tmp_root, "cache");
    KbSettings s;
    settings(&s, cache);
    KbDataset d;
    dataset(&d);
    Tower a = tower(FIX "/ckpt_a");
    int P = a.m->text.proj_dim;
    float *means = calloc((size_t)3 * P, sizeof *means), *again = calloc((size_t)3 * P, sizeof *again);
    KbEmbedStats st;
    char *log;

    run(&s, &d, &a, means, &st, &log);
    // 8 texts after dropping the duplicate within widget0; one of them is in two classes: 7 distinct.
    cr_assert_eq(st.n_texts, r.n_texts);
    cr_assert_eq(st.n_texts, 8);
    cr_assert_eq(st.n_distinct, 7);
    cr_assert_eq(st.n_embedded, 7);
    cr_assert_eq(st.n_cached, 0);
    cr_assert(strstr(log, "3 classes, 8 texts (7 distinct): 7 embedded, 0 read from the cache"), "%s", log);
    free(log);
    float *ref_means = npy_f32(FIX "/a", "means", NULL);
    assert_close(means, ref_means, (size_t)3 * P, TOL, "class means, checkpoint a");
    free(ref_means);

    // Every cached vector is the reference's normalised embedding of its text (the long one truncated to 77).
    char *path = kb_embed_cache_path(cache, st.encoder_hash);
    EmbedCache *ec = embed_cache_open(path, st.encoder_hash, P, KB_EMBED_CODE_VERSION);
    cr_assert_not_null(ec, "%s", err_msg());
    cr_assert_eq(embed_cache_size(ec), 7);
    float *ref = npy_f32(FIX "/a", "embeds", NULL), v[256];
    for (int k = 0; k < r.n_texts; k++) {
        cr_assert_eq(embed_cache_get(ec, r.texts[k], v), 1, "text %d not cached: %s", k, r.texts[k]);
        char what[128];
        snprintf(what, sizeof what, "embedding of text %d", k);
        assert_close(v, ref + (size_t)k * P, (size_t)P, TOL, what);
    }
    embed_cache_close(ec);
    char *folder = fs_join(cache, "embeddings");
    cr_assert_eq(count_files(folder, ".h5"), 1);
    cr_assert_eq(count_files(folder, ".tmp"), 0, "no temporary file left behind");

    // Second call: nothing embedded, the same means bit for bit.
    run(&s, &d, &a, again, &st, &log);
    cr_assert_eq(st.n_embedded, 0);
    cr_assert_eq(st.n_cached, 7);
    cr_assert(strstr(log, "0 embedded, 7 read from the cache"), "%s", log);
    free(log);
    cr_assert_eq(memcmp(means, again, sizeof(float) * 3 * P), 0);

    // The means are computed from the cache: a cached vector edited by hand moves its class's mean (widget2 has
    // one text, so its mean becomes that vector).
    ec = embed_cache_open(path, st.encoder_hash, P, KB_EMBED_CODE_VERSION);
    for (int i = 0; i < P; i++) v[i] = i == 5 ? 1.0f : 0.0f;
    embed_cache_put(ec, r.texts[r.class_start[2]], v);
    cr_assert_eq(embed_cache_close(ec), 0, "%s", err_msg());
    run(&s, &d, &a, again, &st, &log);
    free(log);
    cr_assert_eq(st.n_embedded, 0);
    cr_assert_float_eq(again[2 * P + 5], 1.0f, 1e-6);
    cr_assert_eq(memcmp(means, again, sizeof(float) * 2 * P), 0, "the other classes are unchanged");

    ref_texts_free(&r);
    tower_free(&a);
    kb_dataset_free(&d);
    kb_settings_free(&s);
    free(means), free(again), free(ref), free(path), free(folder), free(cache);
}

// A fetched answer holding fewer descriptions than kb.llm_n is embedded as it is, and the log says which class
// has how many (training writes this log into the run's log.txt).
Test(kb_embed, a_short_fetched_answer_is_named_in_the_log) {
    char *cache = fs_join(tmp_root, "cache");
    KbSettings s;
    settings(&s, cache);
    KbDataset d;
    dataset(&d);
    KbQuestion q;
    char *words = kb_class_prompt_name(s.shipped_dir, "mvtec", "widget1");
    cr_assert_eq(kb_question_llm(&s, "widget1", words, &q), 0, "%s", err_msg());
    char *items[] = {"A dent on the rim.", "A scratch across the top."};
    KbCallResult r = {.ok = 1, .content = "1. A dent on the rim.\n2. A scratch across the top."};
    cr_assert_eq(kb_cache_write(&s, &q, &r, items, 2), 0, "%s", err_msg());
    kb_question_free(&q);
    free(words);
    Tower a = tower(FIX "/ckpt_a");
    float *means = calloc((size_t)3 * a.m->text.proj_dim, sizeof *means);
    KbEmbedStats st;
    char *log;
    run(&s, &d, &a, means, &st, &log);
    cr_assert(strstr(log, "kb embeddings: 1 class has fewer fetched descriptions than kb.llm_n (5): widget1 (2)"),
              "%s", log);
    free(log);
    tower_free(&a);
    kb_dataset_free(&d);
    kb_settings_free(&s);
    free(means), free(cache);
}

Test(kb_embed, the_cache_is_keyed_by_the_text_tower) {
    char *cache = fs_join(tmp_root, "cache");
    KbSettings s;
    settings(&s, cache);
    KbDataset d;
    dataset(&d);
    Tower a = tower(FIX "/ckpt_a"), b = tower(FIX "/ckpt_b");
    char ha[65], hb[65];
    cr_assert_eq(text_encoder_hash(a.m, a.tok, ha), 0);
    cr_assert_eq(text_encoder_hash(b.m, b.tok, hb), 0);
    cr_assert_str_neq(ha, hb);
    int P = a.m->text.proj_dim;
    float *ma = calloc((size_t)3 * P, sizeof *ma), *mb = calloc((size_t)3 * P, sizeof *mb);
    KbEmbedStats st;
    char *log;

    run(&s, &d, &a, ma, &st, &log);
    free(log);
    cr_assert_eq(st.n_embedded, 7);
    cr_assert_str_eq(st.encoder_hash, ha);
    // Checkpoint b: nothing of a's cache is reused; its means are its own.
    run(&s, &d, &b, mb, &st, &log);
    free(log);
    cr_assert_eq(st.n_embedded, 7);
    cr_assert_eq(st.n_cached, 0);
    float *ref_b = npy_f32(FIX "/b", "means", NULL);
    assert_close(mb, ref_b, (size_t)3 * P, TOL, "class means, checkpoint b");
    free(ref_b);
    double dot = 0;
    for (int i = 0; i < P; i++) dot += (double)ma[i] * mb[i];
    cr_assert_lt(dot, 0.99, "two random towers give different means");
    char *folder = fs_join(cache, "embeddings");
    cr_assert_eq(count_files(folder, ".h5"), 2, "one file per text encoder");
    // Back to a: its file is still there.
    run(&s, &d, &a, ma, &st, &log);
    free(log);
    cr_assert_eq(st.n_embedded, 0);
    cr_assert_eq(st.n_cached, 7);

    tower_free(&a);
    tower_free(&b);
    kb_dataset_free(&d);
    kb_settings_free(&s);
    free(ma), free(mb), free(folder), free(cache);
}

Test(kb_embed, tokens_are_truncated_to_the_context_keeping_eot) {
    RefTexts r = ref_texts();
    Tower a = tower(FIX "/ckpt_a");
    Npy ids = npy_load(FIX, "ids");
    cr_assert_eq(ids.shape[1], 77);
    int row[77];
    int long_rows = 0;
    for (int k = 0; k < r.n_texts; k++) {
        memset(row, 0, sizeof row);
        int n = tokenizer_encode(a.tok, r.texts[k], row, 77);
        cr_assert_gt(n, 1);
        for (int i = 0; i < 77; i++) cr_assert_eq(row[i], (int)((int64_t *)ids.data)[k * 77 + i], "text %d id %d", k, i);
        long_rows += n == 77 && row[76] == TOKENIZER_EOT;
    }
    cr_assert_eq(long_rows, 1);
    free(ids.data);
    tower_free(&a);
    ref_texts_free(&r);
}

Test(kb_embed, errors_name_what_is_at_fault) {
    char *cache = fs_join(tmp_root, "cache");
    KbSettings s;
    settings(&s, cache);
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(NULL, "widget0,nothing_known", &d), 0);
    free(d.type);
    d.type = strdup("mvtec");
    kb_settings_set(&s.shipped_dir, tmp_root);  // no shipped files, no generic fallback
    Tower a = tower(FIX "/ckpt_a");
    float means[2 * 64];
    cr_assert_eq(kb_class_embeddings(&s, &d, a.m, a.tok, cache, means, NULL), -1);
    cr_assert(strstr(err_msg(), "class 'widget0' has no descriptions"), "%s", err_msg());
    s.embed_batch = 0;
    cr_assert_eq(kb_class_embeddings(&s, &d, a.m, a.tok, cache, means, NULL), -1);
    cr_assert(strstr(err_msg(), "kb.embed_batch"), "%s", err_msg());
    tower_free(&a);
    kb_dataset_free(&d);
    kb_settings_free(&s);
    free(cache);
}

// Runs build/kanoclip with args, stdout to out_path and stderr to err_path; returns the exit status.
static int run_kanoclip(char *const args[], const char *out_path, const char *err_path) {
    return run_cli(args, NULL, out_path, err_path);
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "no number %s", key);
    return v->valueint;
}

Test(kb_embed, the_command_twice_embeds_then_only_reads) {
    char *cache = fs_join(tmp_root, "cache"), *out = fs_join(tmp_root, "out.json"), *err = fs_join(tmp_root, "err.txt");
    char *args[] = {"build/kanoclip", "kb", "embed", "--checkpoint", FIX "/ckpt_a", "--classes",
                    "widget0,widget1,widget2", "--dataset-type", "mvtec", "--shipped-dir", FIX "/shipped",
                    "--cache-dir", cache, "--embed-batch", "4", NULL};
    for (int pass = 0; pass < 2; pass++) {
        cr_assert_eq(run_kanoclip(args, out, err), 0, "%s", fs_read_file(err, NULL));
        char *text = fs_read_file(out, NULL);
        cJSON *j = cJSON_Parse(text);
        cr_assert_not_null(j, "%s", text);
        cr_assert_eq(json_int(j, "texts"), 8);
        cr_assert_eq(json_int(j, "embedded"), pass == 0 ? 7 : 0);
        cr_assert_eq(json_int(j, "cached"), pass == 0 ? 0 : 7);
        cr_assert_eq(json_int(j, "dim"), 24);
        const cJSON *cls = cJSON_GetObjectItem(j, "classes");
        cr_assert_eq(json_int(cJSON_GetObjectItem(cls, "widget0"), "texts"), 4);
        cr_assert_eq(json_int(cJSON_GetObjectItem(cls, "widget1"), "texts"), 3);
        cr_assert_eq(json_int(cJSON_GetObjectItem(cls, "widget2"), "texts"), 1);
        cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cls, "widget2"), "llm_source")->valuestring, "shipped");
        cr_assert(fs_exists(cJSON_GetObjectItem(j, "cache")->valuestring));
        cJSON_Delete(j);
        free(text);
        char *log = fs_read_file(err, NULL);
        cr_assert(strstr(log, pass == 0 ? "7 embedded, 0 read" : "0 embedded, 7 read"), "%s", log);
        free(log);
    }
    // The same through a config: model.checkpoint and the kb: section; everything is cached by now.
    char *cfg = fs_join(tmp_root, "exp.yaml"), text[1024];
    int n = snprintf(text, sizeof text, "model:\n  checkpoint: %s\nkb:\n  shipped_dir: %s\n  cache_dir: \"%s\"\n",
                     FIX "/ckpt_a", FIX "/shipped", cache);
    fs_write_atomic(cfg, text, (size_t)n);
    char *with_cfg[] = {"build/kanoclip", "kb", "embed", cfg, "kb.embed_batch=2", "--classes", "widget0,widget1,widget2",
                        "--dataset-type", "mvtec", NULL};
    cr_assert_eq(run_kanoclip(with_cfg, out, err), 0, "%s", fs_read_file(err, NULL));
    char *json = fs_read_file(out, NULL);
    cJSON *j = cJSON_Parse(json);
    cr_assert_eq(json_int(j, "embedded"), 0, "%s", json);
    cr_assert_eq(json_int(j, "cached"), 7, "%s", json);
    cJSON_Delete(j);
    free(json), free(cfg);

    // Without a checkpoint: a usage error, exit 2.
    char *bad[] = {"build/kanoclip", "kb", "embed", "--classes", "widget0", "--shipped-dir", FIX "/shipped", NULL};
    cr_assert_eq(run_kanoclip(bad, out, err), 2);
    char *log = fs_read_file(err, NULL);
    cr_assert(strstr(log, "--checkpoint"), "%s", log);
    free(log);
    free(cache), free(out), free(err);
}
