// The identity of a frozen text encoder, for caches of text embeddings (harness/cache/cache_embed.h): a SHA-256 over
// everything that decides a text's embedding and nothing else. That is the text tower's shape and pooling rule,
// its weights as the forward reads them (float32 after any F16/BF16 conversion, q|k|v packed), and the
// tokenizer's vocabulary in id order (for CLIP BPE the merges' results in rank order). The vision tower, the
// file format and the file's other bytes do not enter: a checkpoint re-saved as F16 with different vision
// weights keeps its text cache only if the text weights are the same floats.
#ifndef HARNESS_TEXT_ENCODER_HASH_H
#define HARNESS_TEXT_ENCODER_HASH_H

#include "model/clip_model.h"
#include "model/tokenizer.h"

// hex: 64 lowercase hex digits. -1 with err_set when the model has no text tower bound.
int text_encoder_hash(const ClipModel *m, const Tokenizer *tok, char hex[65]);

#endif
