// Text inputs of the KAnoCLIP heads (see text_inputs.h).
#include "harness/run/text_inputs.h"
#include "harness/kb/kb_embed.h"
#include "harness/run/log.h"
#include "common/error.h"
#include "common/file_lock.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// harness/kb/kb_embed.c (another part of the program) provides it; until it is linked, KnPL trains without KD.
#pragma weak kb_class_embeddings

const char *text_class_word(const Settings *s, const ExecDataset *d, int c) {
    if (s->prompts.class_object) return "object";
    return d->classes[c]->prompt_name;
}

// Token ids of text without [SOT]/[EOT] (malloc'd), *n their count.
static int *words_ids(Tokenizer *tok, const char *text, int *n) {
    int count = 0;
    int *all = tokenizer_encode_all(tok, text, &count);
    if (!all) return NULL;
    *n = count - 2;
    memmove(all, all + 1, sizeof(int) * (count - 2));
    return all;
}

int text_prompts_build(const Settings *st, Tokenizer *tok, const ClipText *text, int n_ctx, const ExecDataset *d,
                       KanoPrompts *out) {
    memset(out, 0, sizeof *out);
    int L = text->context_length;
    out->n_classes = d->n_classes;
    out->ctx_len = L;
    int A = st->prompts.n_adj;
    out->n_adj = A;
    out->ids = malloc(sizeof(int) * d->n_classes * 2 * A * L);
    out->eot = malloc(sizeof(int) * d->n_classes * 2 * A);
    for (int c = 0; c < d->n_classes; c++)
        for (int s = 0; s < 2; s++)
            for (int a = 0; a < A; a++) {
                char buf[512];
                const char *adj = st->prompts.state_words[s][a];
                snprintf(buf, sizeof buf, "%s%s%s.", adj, *adj ? " " : "", text_class_word(st, d, c));
                int n = 0, *w = words_ids(tok, buf, &n);
                if (!w) { text_prompts_free(out); return err_wrap("prompt '%s': ", buf); }
                size_t j = ((size_t)c * 2 + s) * A + a;
                int rc = kanoclip_prompt_ids(out->ids + j * L, out->eot + j, L, n_ctx, w, n);
                free(w);
                if (rc < 0) { text_prompts_free(out); return err_wrap("method.n_ctx: prompt '%s': ", buf); }
            }
    return 0;
}

void text_prompts_free(KanoPrompts *p) {
    free(p->ids);
    free(p->eot);
    memset(p, 0, sizeof *p);
}

int text_fixed_features(const Settings *st, Tokenizer *tok, const ClipText *text, const ExecDataset *d, float *out) {
    int L = text->context_length, n = d->n_classes * 2;
    int *ids = calloc((size_t)n * L, sizeof(int));
    for (int c = 0; c < d->n_classes; c++)
        for (int s = 0; s < 2; s++) {
            const char *tmpl = st->prompts.fixed[s], *at = strstr(tmpl, "{}");
            char buf[512];
            if (at) snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - tmpl), tmpl, text_class_word(st, d, c), at + 2);
            else snprintf(buf, sizeof buf, "%s", tmpl);
            if (tokenizer_encode(tok, buf, ids + ((size_t)c * 2 + s) * L, L) < 0) {
                free(ids);
                return err_wrap("method.fixed_prompts: '%s': ", buf);
            }
        }
    ClipTextRun *r = clip_text_run_new(text, 0);
    int rc = r ? clip_text_forward_ids(r, ids, n, L, out) : -1;
    clip_text_run_free(r);
    free(ids);
    return rc;
}

// The classes the run trains on (the synthetic split may keep some of the reader's), with their anomalous images
// for the VQA answers; s = st's kb settings for d.
static void kb_inputs_of(const Settings *st, const ExecDataset *d, KbSettings *s, KbDataset *out) {
    kb_settings_copy(s, &st->kb);
    kb_settings_set(&s->dataset_type, d->type);
    kb_settings_set(&s->dataset_root, d->root);
    KbDataset kd = {0};
    kd.type = strdup(d->type);
    kd.n_classes = d->n_classes;
    kd.classes = malloc(sizeof(char *) * d->n_classes);
    for (int c = 0; c < d->n_classes; c++) kd.classes[c] = strdup(d->classes[c]->name);
    kd.images = malloc(sizeof(KbImage) * (d->n + 1));
    size_t rl = strlen(d->root);
    for (int i = 0; i < d->n; i++) {
        if (d->s[i]->label != 1) continue;
        const char *p = d->s[i]->image_path, *rel = strncmp(p, d->root, rl) ? p : p + rl + (p[rl] == '/');
        kd.images[kd.n_images++] = (KbImage){.class_name = strdup(d->classes[d->cls[i]]->name), .path = strdup(p),
                                             .rel = strdup(rel)};
    }
    *out = kd;
}

int text_kb_sources(const Settings *st, const ExecDataset *d, KbSettings *s, KbClassTexts **out) {
    KbDataset kd;
    kb_inputs_of(st, d, s, &kd);
    int rc = kb_load_all(s, &kd, out), n = kd.n_classes;
    kb_dataset_free(&kd);
    if (rc != 0) kb_settings_free(s);
    return rc != 0 ? -1 : n;
}

int text_kb_means(const Settings *st, ClipModel *model, Tokenizer *tok, const ExecDataset *d, float *kb) {
    if (!kb_class_embeddings) {
        log_msg("knowledge base: this build has no KB embedder (harness/kb/kb_embed.c); the KD term is off");
        return 0;
    }
    KbSettings s;
    KbDataset kd;
    kb_inputs_of(st, d, &s, &kd);
    // One embedding cache, kb.cache_dir/embeddings/, shared with `kanoclip kb embed` (cache.dir holds image
    // features); runs sharing it (a grid's parallel cells) fill it one at a time.
    char *lock_path = fs_join(s.cache_dir, "embeddings.lock");
    FileLock lock;
    int rc = fs_mkdirs(s.cache_dir);
    if (rc == 0) rc = file_lock(lock_path, 1, &lock, NULL);
    if (rc == 0) {
        rc = kb_class_embeddings(&s, &kd, model, tok, s.cache_dir, kb, log_file());
        file_unlock(&lock);
    }
    free(lock_path);
    kb_dataset_free(&kd);
    kb_settings_free(&s);
    return rc < 0 ? -1 : 1;
}
