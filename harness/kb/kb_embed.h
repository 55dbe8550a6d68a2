// Knowledge-base embeddings: each class's descriptions (kb_loader.h) through the frozen CLIP text tower
// (tokenised with truncation to 77 ids, EOT kept), L2-normalised, cached in HDF5 keyed by the text tower's hash
// and the text; and per class the mean that KnPL's knowledge-driven loss compares prompts with.
#ifndef HARNESS_KB_EMBED_H
#define HARNESS_KB_EMBED_H

#include <stdio.h>

#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_settings.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

// The code_version attribute of the cache file: what a cached vector is (get_text_features of the text tokenised
// to the tower's context, EOT kept, divided by its L2 norm). Changing that changes this, and old files are not used.
#define KB_EMBED_CODE_VERSION "kb-embed-1: get_text_features, truncate keeping EOT, L2-normalised"

// means (d->n_classes, P), in d's class order: for class c the L2-normalised mean of its L2-normalised
// description embeddings (each text once per class, kb_embed_order). Embeddings already in the HDF5 cache
// kb_embed_cache_path(cache_dir, hash) are read; the rest are computed, s->embed_batch texts per forward, and
// added (the file is rewritten atomically at the end, and every 30 s during a long build). The cache is keyed by
// text_encoder_hash (harness/cache/text_encoder_hash.h: the text tower's shape and float32 weights plus the
// tokenizer's vocabulary) and by the SHA-256 of each text. log (may be NULL) gets one line: how many texts were
// embedded and how many read from the cache. -1 with err_set naming the class, file or text at fault.
int kb_class_embeddings(const KbSettings *s, const KbDataset *d, ClipModel *model, Tokenizer *tok,
                        const char *cache_dir, float *means, FILE *log);

// What one kb_class_embeddings call did: texts over all classes (a text in two classes counts twice), distinct
// texts, and of those how many were embedded now and how many read from the cache (embedded + cached = distinct).
typedef struct {
    int n_texts, n_distinct, n_embedded, n_cached;
    char encoder_hash[65];
} KbEmbedStats;

// kb_class_embeddings, also filling *stats.
int kb_class_embeddings_stats(const KbSettings *s, const KbDataset *d, ClipModel *model, Tokenizer *tok,
                              const char *cache_dir, float *means, FILE *log, KbEmbedStats *stats);

// {cache_dir}/embeddings/text-<first 16 hex digits of encoder_hash>.h5 (malloc'd): one file per text encoder, so
// switching checkpoints back and forth keeps both caches (the file's encoder_hash attribute holds the full hash).
char *kb_embed_cache_path(const char *cache_dir, const char *encoder_hash);

#endif
