// Knowledge-base class embeddings (kb_embed.h): texts from the loader, missing ones through the frozen text tower
// in batches, every vector L2-normalised and cached under the text encoder's hash; then per-class means.
#include "harness/kb/kb_embed.h"
#include "harness/cache/cache_embed.h"
#include "harness/kb/kb_loader.h"
#include "harness/cache/text_encoder_hash.h"
#include "common/error.h"
#include "common/strbuf.h"
#include "common/fsutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// A long build saves what it has at least this often, so a killed run keeps most of its work.
#define KB_EMBED_SAVE_EVERY_S 30.0

char *kb_embed_cache_path(const char *cache_dir, const char *encoder_hash) {
    char name[64];
    snprintf(name, sizeof name, "embeddings/text-%.16s.h5", encoder_hash);
    return fs_join(cache_dir, name);
}

// x (n) /= max(|x|, 1e-12), as torch.nn.functional.normalize; the norm in double.
static void l2_normalize(float *x, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double norm = sqrt(ss);
    double inv = 1.0 / (norm > 1e-12 ? norm : 1e-12);
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] * inv);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The class a text of the list belongs to (for messages).
static const char *class_of(const KbEmbedList *l, const KbClassTexts *per_class, int k) {
    for (int c = 0; c < l->n_classes; c++)
        if (k < l->class_start[c + 1]) return per_class[c].class_name;
    return "?";
}

// Row ids (T) of text: [SOT] ... [EOT] truncated to T (EOT kept), zero padding (never reached: the forward pools
// at the EOT and attention is causal). -1 with err_set naming the text and class.
static int tokenize_row(Tokenizer *tok, const ClipText *t, const char *text, const char *cls, int *ids, int T) {
    memset(ids, 0, sizeof *ids * (size_t)T);
    int n = tokenizer_encode(tok, text, ids, T);
    if (n < 0) return err_wrap("kb: class '%s': text \"%.60s\": ", cls, text);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return err_set("kb: class '%s': text \"%.60s\": token id %d is outside the text tower's vocabulary (%d "
                           "entries); the tokenizer does not belong to this checkpoint", cls, text, ids[i], t->vocab_size);
    return 0;
}

// Embeds the distinct texts of l that the cache lacks, batch texts per forward, adding each to the cache.
static int embed_missing(const KbEmbedList *l, const KbClassTexts *per_class, ClipModel *model, Tokenizer *tok,
                         EmbedCache *ec, int batch, int *n_embedded) {
    const ClipText *t = &model->text;
    int P = t->proj_dim, T = t->context_length;
    int *ids = malloc(sizeof *ids * (size_t)batch * T);      // (batch, T)
    float *out = malloc(sizeof *out * (size_t)batch * P);    // (batch, P)
    float *probe = malloc(sizeof *probe * (size_t)P);        // (P)
    const char **rows = malloc(sizeof *rows * (size_t)batch);
    ClipTextRun *run = clip_text_run_new(t, 0);
    int rc = run ? 0 : -1;
    double last_save = now_s();
    int k = 0;
    while (rc == 0 && k < l->n_texts) {
        int B = 0;
        for (; k < l->n_texts && B < batch && rc == 0; k++) {
            const char *text = l->texts[k];
            if (embed_cache_get(ec, text, probe)) continue;  // cached, or embedded by an earlier batch
            int dup = 0;
            for (int j = 0; j < B && !dup; j++) dup = !strcmp(rows[j], text);
            if (dup) continue;  // the same text in another class, already in this batch
            rc = tokenize_row(tok, t, text, class_of(l, per_class, k), ids + (size_t)B * T, T);
            rows[B++] = text;
        }
        if (rc != 0 || B == 0) break;
        if (clip_text_forward_ids(run, ids, B, T, out) != 0) { rc = err_wrap("kb: text tower: "); break; }
        for (int b = 0; b < B; b++) {
            l2_normalize(out + (size_t)b * P, P);
            embed_cache_put(ec, rows[b], out + (size_t)b * P);
        }
        *n_embedded += B;
        if (now_s() - last_save > KB_EMBED_SAVE_EVERY_S) {
            rc = embed_cache_save(ec);
            last_save = now_s();
        }
    }
    clip_text_run_free(run);
    free(rows), free(probe), free(out), free(ids);
    return rc;
}

int kb_class_embeddings(const KbSettings *s, const KbDataset *d, ClipModel *model, Tokenizer *tok,
                        const char *cache_dir, float *means, FILE *log) {
    KbEmbedStats stats;
    return kb_class_embeddings_stats(s, d, model, tok, cache_dir, means, log, &stats);
}

int kb_class_embeddings_stats(const KbSettings *s, const KbDataset *d, ClipModel *model, Tokenizer *tok,
                              const char *cache_dir, float *means, FILE *log, KbEmbedStats *stats) {
    memset(stats, 0, sizeof *stats);
    if (!(model->towers & CLIP_TEXT)) return err_set("kb embeddings: the model's text tower is not loaded");
    if (s->embed_batch < 1) return err_set("kb.embed_batch: %d must be at least 1", s->embed_batch);
    const ClipText *t = &model->text;
    int P = t->proj_dim;
    char *hash = stats->encoder_hash;
    if (text_encoder_hash(model, tok, hash) != 0) return -1;
    char *path = kb_embed_cache_path(cache_dir, hash);
    char *folder = fs_join(cache_dir, "embeddings");
    if (fs_mkdirs(folder) != 0) {
        err_set("%s: cannot create the embedding cache folder", folder);
        free(folder), free(path);
        return -1;
    }
    free(folder);

    KbClassTexts *per_class = NULL;
    if (kb_load_all(s, d, &per_class) != 0) { free(path); return -1; }
    KbEmbedList l;
    kb_embed_order(per_class, d->n_classes, &l);
    EmbedCache *ec = embed_cache_open(path, hash, P, KB_EMBED_CODE_VERSION);
    int rc = ec ? 0 : -1;

    // Texts already cached when we start, counted once each (a text can belong to two classes).
    int n_distinct = 0, n_cached = 0, n_embedded = 0;
    float *v = malloc(sizeof *v * (size_t)P);  // (P)
    for (int k = 0; rc == 0 && k < l.n_texts; k++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(l.texts[j], l.texts[k]);
        if (seen) continue;
        n_distinct++;
        n_cached += embed_cache_get(ec, l.texts[k], v);
    }
    if (rc == 0) rc = embed_missing(&l, per_class, model, tok, ec, s->embed_batch, &n_embedded);

    // Per class: the L2-normalised mean of its L2-normalised text vectors (accumulated in double).
    double *acc = calloc((size_t)P, sizeof *acc);  // (P)
    for (int c = 0; rc == 0 && c < d->n_classes; c++) {
        memset(acc, 0, sizeof *acc * (size_t)P);
        for (int k = l.class_start[c]; rc == 0 && k < l.class_start[c + 1]; k++) {
            if (!embed_cache_get(ec, l.texts[k], v))
                rc = err_set("%s: text \"%.60s\" of class '%s' missing after it was embedded", path, l.texts[k],
                             per_class[c].class_name);
            for (int i = 0; i < P; i++) acc[i] += v[i];
        }
        float *m = means + (size_t)c * P;
        for (int i = 0; i < P; i++) m[i] = (float)acc[i];
        l2_normalize(m, P);
    }
    // Saved even when a text failed, so that the rerun starts from what was embedded (the first error is kept).
    if (ec) {
        char *first = rc != 0 ? strdup(err_msg()) : NULL;
        if (embed_cache_close(ec) != 0 && rc == 0) rc = -1;
        if (first) err_set("%s", first);
        free(first);
    }
    stats->n_texts = l.n_texts;
    stats->n_distinct = n_distinct;
    stats->n_embedded = n_embedded;
    stats->n_cached = n_cached;
    if (rc == 0 && log)
        fprintf(log, "kb embeddings: %d classes, %d texts (%d distinct): %d embedded, %d read from the cache %s\n",
                d->n_classes, l.n_texts, n_distinct, n_embedded, n_cached, path);
    // A fetched answer that gave fewer descriptions than asked is used, and said (kb build says it too).
    if (rc == 0 && log) {
        StrBuf few = {0};
        int n_few = 0;
        for (int c = 0; c < d->n_classes; c++) {
            int n_llm = per_class[c].n - per_class[c].n_vqa;
            if (strcmp(per_class[c].llm_source, "fetched") || n_llm >= s->llm_n) continue;
            if (n_few++ < 20) strbuf_printf(&few, "%s%s (%d)", few.len ? ", " : "", per_class[c].class_name, n_llm);
        }
        if (n_few)
            fprintf(log, "kb embeddings: %d class%s fewer fetched descriptions than kb.llm_n (%d): %s%s\n", n_few,
                    n_few == 1 ? " has" : "es have", s->llm_n, few.s, n_few > 20 ? ", ..." : "");
        free(few.s);
    }
    free(acc), free(v);
    kb_embed_list_free(&l);
    for (int c = 0; c < d->n_classes; c++) kb_class_texts_free(&per_class[c]);
    free(per_class);
    free(path);
    return rc;
}
