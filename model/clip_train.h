// Training a CLIP from scratch on the CPU (llm.c style, engine-anchors.md §1): both towers' forward with the
// activations the backward needs, the backward to every weight (patch embedding, class and positional
// embeddings, pre/post LayerNorms, attention, MLP, token embeddings, final LayerNorm, both projections, the logit
// scale), the symmetric contrastive loss of CLIP (Hugging Face CLIPModel's clip_loss, as tests/ref_clip_train.py
// writes it), and AdamW with linear warm-up, cosine decay and global-norm gradient clipping.
//
// Parameters, gradients and the two Adam moments are four slices of one allocation, each sliced the same way by
// a table of sizes (ClipTrainParams). Block tensors are stacked over layers, as llm.c's (L, ...) tensors; q|k|v
// are packed rows of one (L, 3W, W) tensor, split into Hugging Face's q_proj/k_proj/v_proj when saved.
#ifndef MODEL_CLIP_TRAIN_H
#define MODEL_CLIP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"

// One tower's stacked transformer blocks; W width, I = mlp width, L layers.
typedef struct {
    float *ln1w, *ln1b;        // (L, W)
    float *qkvw;               // (L, 3W, W) rows q | k | v
    float *qkvb;               // (L, 3W)
    float *attprojw;           // (L, W, W)
    float *attprojb;           // (L, W)
    float *ln2w, *ln2b;        // (L, W)
    float *fcw;                // (L, I, W)
    float *fcb;                // (L, I)
    float *fcprojw;            // (L, W, I)
    float *fcprojb;            // (L, W)
} ClipTrainBlocks;

#define CLIP_TRAIN_N_TENSORS 38

typedef struct {
    // text tower
    float *tok;                // (V, Wt)
    float *tpos;               // (ctx, Wt)
    ClipTrainBlocks tb;
    float *tlnfw, *tlnfb;      // (Wt)
    float *tproj;              // (P, Wt)
    // vision tower
    float *cls;                // (Wv)
    float *patch;              // (Wv, C*p*p) the conv kernel flattened (c, ky, kx)
    float *vpos;               // (g*g + 1, Wv)
    float *prew, *preb;        // (Wv)
    ClipTrainBlocks vb;
    float *postw, *postb;      // (Wv)
    float *vproj;              // (P, Wv)
    float *logit_scale;        // (1) log of the temperature's inverse
} ClipTrainParams;

typedef struct ClipTrainActs ClipTrainActs;

typedef struct {
    ClipConfig cfg;
    size_t sizes[CLIP_TRAIN_N_TENSORS];  // floats per tensor, in ClipTrainParams order
    size_t n_params;
    float *memory;             // (4, n_params): params | grads | m | v
    ClipTrainParams params, grads, m, v;
    long step;                 // AdamW updates done
    ClipTrainActs *acts;       // grown on the first forward of a batch size
    // last forward
    int B, T;
    float loss;
} ClipTrain;

// A model with cfg's shapes; parameters from the Hugging Face folder dir (config.json is not read: cfg rules;
// every tensor must have the shape cfg implies). NULL with err_set naming the file and tensor.
ClipTrain *clip_train_load(const char *dir, const ClipConfig *cfg);
void clip_train_free(ClipTrain *m);

// Forward of both towers and the loss for B (image, text) pairs: pixels (B, C, S, S) normalised, S = image_size;
// ids (B, T) with eot (B) the pooling position of each row. Returns the mean symmetric cross-entropy, or a
// negative value with err_set for bad arguments.
float clip_train_forward(ClipTrain *m, const float *pixels, const int *ids, const int *eot, int B, int T);
// Gradients of the last forward's loss, accumulated into m->grads (zero them first: clip_train_zero_grad).
int clip_train_backward(ClipTrain *m);
void clip_train_zero_grad(ClipTrain *m);

// The unit-norm embeddings of the last forward, (B, P) each (for tests and evaluation).
const float *clip_train_image_embeds(const ClipTrain *m);
const float *clip_train_text_embeds(const ClipTrain *m);

typedef struct {
    double lr, lr_min;         // peak and final learning rate
    long warmup, steps;        // linear warm-up steps, total steps (cosine decay from warmup to steps)
    double beta1, beta2, eps, weight_decay;
    double clip_norm;          // global gradient norm limit (0: none)
} ClipTrainOpt;

// The learning rate at update number step (0-based).
double clip_train_lr(const ClipTrainOpt *o, long step);
// Clips the gradients to o->clip_norm, then one AdamW update (torch.optim.AdamW: decoupled weight decay, applied
// to the weight matrices only: gains, biases, embeddings and the logit scale are not shrunk); the logit scale is
// then clamped to log(100), a temperature of 0.01, below which the logits grow large enough to destabilise the
// loss. Returns the gradient norm before clipping.
double clip_train_update(ClipTrain *m, const ClipTrainOpt *o);

// Writes DIR/model.safetensors (Hugging Face names, F32) and DIR/config.json; 0 or -1 with err_set.
int clip_train_save(const ClipTrain *m, const char *dir);
// The optimizer state (step, Adam moments) for resuming: DIR/optimizer.bin. Load checks the sizes match.
int clip_train_save_state(const ClipTrain *m, const char *dir);
int clip_train_load_state(ClipTrain *m, const char *dir);

#endif
