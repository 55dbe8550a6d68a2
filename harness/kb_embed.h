// Knowledge-base embeddings: each class's descriptions (kb_loader.h) through the frozen CLIP text tower
// (tokenised with truncation to 77 ids, EOT kept), L2-normalised, cached in HDF5 keyed by the text tower's hash
// and the text; and per class the mean that KnPL's knowledge-driven loss compares prompts with.
#ifndef HARNESS_KB_EMBED_H
#define HARNESS_KB_EMBED_H

#include <stdio.h>

#include "harness/kb_dataset.h"
#include "harness/kb_settings.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

// means (d->n_classes, P), in d's class order: for class c the L2-normalised mean of its L2-normalised
// description embeddings. Embeddings already in cache_dir's HDF5 cache are read, the rest computed and added
// (atomically). log (may be NULL) gets one line: how many texts were embedded and how many read from the cache.
// -1 with err_set naming the class, file or text at fault.
int kb_class_embeddings(const KbSettings *s, const KbDataset *d, ClipModel *model, Tokenizer *tok,
                        const char *cache_dir, float *means, FILE *log);

#endif
