// The text side of a run, per class: KnPL prompt token ids ("<state word> <class> ." after the learnable
// contexts), the fixed prompts' text features (KnPL off), and the knowledge-base class embeddings (kb_embed.h).
#ifndef HARNESS_TEXT_INPUTS_H
#define HARNESS_TEXT_INPUTS_H

#include "harness/config/settings.h"
#include "harness/run/exec_dataset.h"
#include "model/clip_model.h"
#include "model/kanoclip.h"
#include "model/tokenizer.h"
#include "harness/kb/kb_loader.h"

// The word each class contributes to its prompts: its prompt name ("metal nut"), or "object" when
// method.class_token is "object". Static or pointing into d.
const char *text_class_word(const Settings *s, const ExecDataset *d, int c);

// KnPL prompts for d's classes (ids (n_classes, 2, ctx_len)); free with text_prompts_free. -1 with err_set.
int text_prompts_build(const Settings *s, Tokenizer *tok, const ClipText *text, int n_ctx, const ExecDataset *d,
                       KanoPrompts *out);
void text_prompts_free(KanoPrompts *p);

// out (n_classes, 2, P): the text features of method.fixed_prompts ("{}" = the class word) per class. -1 with err_set.
int text_fixed_features(const Settings *s, Tokenizer *tok, const ClipText *text, const ExecDataset *d, float *out);

// kb (n_classes, P): each class's knowledge-base embedding mean (kb_class_embeddings, cached under cache.dir).
// Returns 1 when computed, 0 when this build has no knowledge-base embedder (the KD term must then be off),
// -1 with err_set.
int text_kb_means(const Settings *s, ClipModel *model, Tokenizer *tok, const ExecDataset *d, float *kb);

// The knowledge each of d's classes would get (harness/kb/kb_loader.h), without embedding anything: *out
// (n_classes entries; kb_class_texts_free each, then free) and kbs (st's kb settings bound to d; kb_settings_free).
// Returns the class count, -1 with err_set.
int text_kb_sources(const Settings *st, const ExecDataset *d, KbSettings *kbs, KbClassTexts **out);

#endif
