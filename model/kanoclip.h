// KAnoCLIP: the trainable heads over cached frozen features (docs/reference/kanoclip-components.md §4-§7).
//
// One training step on a mini-batch:
//   text   KnPL prompts [SOT] ctx_s(n_ctx) [adjective] [class] . [EOT], one per adjective of the state, for the
//          classes in the batch -> frozen text tower -> t_n(c), t_a(c) = norm(mean of the adjectives' unit
//          features); or, with knpl off, fixed text features given by the harness
//   KD     against the knowledge-base mean of those classes (bounded / triplet / InfoNCE)
//   global I -> Conv-Adapter -> I_c; p = softmax([cos(I_c,t_n), cos(I_c,t_a)] / tau); BCE on p_a
//   local  per stage s: Bi-CMCI(F_s, T) -> (M_n, M_a) on the grid -> bilinear to image size ->
//          focal + dice(M_a, G) + dice(M_n, 1-G)
//   L = w_kd L_KD + w_global L_global + w_local Σ_s L_local,s; Adam on every trainable parameter.
// Each (stage, image) pair is run forward and backward at once (the losses separate that way), so only one
// pair's activations are alive at a time.
#ifndef MODEL_KANOCLIP_H
#define MODEL_KANOCLIP_H

#include <stdint.h>

#include "model/bicmci.h"
#include "model/clip_model.h"
#include "model/kanoclip_config.h"
#include "model/kanoclip_params.h"
#include "model/kanoclip_types.h"

typedef struct Kanoclip Kanoclip;

// A model with parameters initialised from cfg->seed. n_classes: rows of prompts/KB/fixed text.
// text: the frozen text tower (needed when cfg->knpl; may be NULL otherwise). NULL with err_set.
// The heads run on backend_for(cfg->device) (model/backend.h); kanoclip_new_on names the backend.
Kanoclip *kanoclip_new(const KanoclipConfig *cfg, int n_classes, const ClipText *text);
Kanoclip *kanoclip_new_on(const Backend *be, const KanoclipConfig *cfg, int n_classes, const ClipText *text);
void kanoclip_free(Kanoclip *m);

// Builds a KanoPrompts entry: words (n_words) = token ids of "<state word> <class name> ." without SOT/EOT.
// -1 with err_set when the prompt does not fit ctx_len.
int kanoclip_prompt_ids(int *ids, int *eot, int ctx_len, int n_ctx, const int *words, int n_words);
// Inputs that stay fixed over training (copied): prompts (KnPL on), kb (n_classes, P) per-class knowledge-base
// embeddings (KnPL on; rows are L2-normalised here), fixed_text (n_classes, 2, P) (KnPL off).
int kanoclip_set_prompts(Kanoclip *m, const KanoPrompts *prompts);
int kanoclip_set_kb(Kanoclip *m, const float *kb);
int kanoclip_set_fixed_text(Kanoclip *m, const float *fixed_text);

// Forward and backward over the batch: gradients (zeroed first) and losses. -1 with err_set.
int kanoclip_forward_backward(Kanoclip *m, const KanoBatch *b, KanoLosses *out);
// One Adam update from the current gradients.
void kanoclip_adam_step(Kanoclip *m);
// forward_backward + adam_step.
int kanoclip_train_step(Kanoclip *m, const KanoBatch *b, KanoLosses *out);

// Evaluation: maps (B, S, S) = Gaussian-smoothed mean over stages of the upsampled anomaly maps; p_global (B)
// = global p_a; score (B) = p_global + max(map). Any output may be NULL. -1 with err_set.
int kanoclip_eval(Kanoclip *m, const KanoBatch *b, float *maps, float *p_global, float *score);

// method.global_source: vv (Eq. 8): global (B,P) = row 0, the class token, of the last of n_stages stages in
// stage (B, n_stages, T, P): the V-V path's S_L[0] through ln_post + proj when the last stage is layer L (the
// settings hold it there). The feature side's choice, made before the batch reaches the head (host arrays).
void kanoclip_global_from_stages(float *global, const float *stage, int B, int n_stages, int T, int P);

// The parameter and gradient blocks live on the backend: copies to and from host arrays of layout->total floats.
void kanoclip_download_params(const Kanoclip *m, float *host);
void kanoclip_download_grads(const Kanoclip *m, float *host);
void kanoclip_upload_params(Kanoclip *m, const float *host);
const Backend *kanoclip_backend(const Kanoclip *m);
const KanoLayout *kanoclip_layout_of(const Kanoclip *m);
const KanoclipConfig *kanoclip_config(const Kanoclip *m);
long kanoclip_step(const Kanoclip *m);

// Training state as one file: header, parameters, Adam moments, step and RNG state. Written atomically.
// Loading checks the layout (tensor count, sizes and names) against the model's and names what differs.
int kanoclip_save(const Kanoclip *m, const char *path);
int kanoclip_load(Kanoclip *m, const char *path);

#endif
