// Internals shared by the baseline head's files (model/baseline*.c); not part of the API.
#ifndef MODEL_BASELINE_INTERNAL_H
#define MODEL_BASELINE_INTERNAL_H

#include "model/baselines.h"
#include "model/towers.h"

#define TEXT_CACHE 256

typedef struct MvfaRun MvfaRun;

struct Baseline {
    BaselineConfig cfg;
    const ClipModel *m;
    Tokenizer *tok;
    int S, g, T, P, Wv, Wt, L;
    int layers[BL_MAX_LAYERS];   // resolved 1-based layers
    float *pos;                  // (T, Wv) positional embedding at grid g (WinCLIP's embedded tokens)
    VisionTower *vtower;         // the frozen vision tower on cfg.device
    // fixed-prompt text features per class name
    int n_cached;
    char *cache_name[TEXT_CACHE];
    float *cache_text[TEXT_CACHE];  // (2,P)
    // learnable parameters, Adam moments, gradient
    float *params, *grad, *m1, *m2;
    size_t n_params;
    long step;
    long step_seg;               // MVFA-AD: the segmentation adapters' own optimiser steps (with masks only)
    MvfaRun *mvfa_train, *mvfa_eval;  // MVFA-AD: the layers after its first map layer, with and without the
                                      // activations of a backward
    // AnomalyCLIP prompts
    int prompt_T, eot[2];
    float *prompt_embeds;        // (2, T, Wt) token embeddings of the two prompt templates
    DeepTextRun *trun;
};

// The fixed-prompt text features (2,P) of a class, computed once and cached; NULL with err_set.
const float *baseline_class_text(Baseline *b, const char *cls);
// AnomalyCLIP's text features (2,P), unnormalised, from the current prompts; the run keeps the activations for
// deep_text_backward.
int baseline_anomalyclip_text(Baseline *b, float *text);

// MVFA-AD (model/baseline_mvfa.c): the setup baseline_new needs (layers strictly increasing, the parameter
// count), the runs' release, scoring, the loss and its gradient, and its two-optimiser Adam step.
int baseline_mvfa_check(const Baseline *b);
size_t baseline_mvfa_n_params(const Baseline *b);
void baseline_mvfa_free(Baseline *b);
int baseline_mvfa_score(Baseline *b, const char *class_name, const BaselineFeatures *f, float *scores, float *maps);
int baseline_mvfa_loss_grad(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                            const char *const *names, float *loss, float *grad);
int baseline_mvfa_train_step(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                             const char *const *names, float *loss);

// APRIL-GAN: out (B*N, P) = the patch rows of hidden (B,T,Wv) through layer i's linear map; rows (B*N, Wv) scratch.
void baseline_aprilgan_linear(const Baseline *b, int i, const float *hidden, int B, float *rows, float *out);

#endif
