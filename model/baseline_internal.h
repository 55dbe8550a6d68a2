// Internals shared by the baseline head's files (model/baseline*.c); not part of the API.
//
// Memory: the learnable parameters, their gradient, the Adam moments and every activation of training and scoring
// belong to the backend b->be (model/backend.h); the host keeps the frozen towers' outputs (BaselineFeatures,
// uploaded once per batch, a map layer at a time), the fixed-prompt text features and AnomalyCLIP's text side (the frozen text tower with
// deep prompts runs on the CPU: its prompts come down before the forward, their gradient goes up after). Per batch
// only the losses, the scores and the maps come down. WinCLIP's scoring stays on the host (its window embeddings
// come from the frozen tower; it has no head).
#ifndef MODEL_BASELINE_INTERNAL_H
#define MODEL_BASELINE_INTERNAL_H

#include "model/backend.h"
#include "model/baselines.h"
#include "model/ops_extra.h"
#include "model/towers.h"

#define TEXT_CACHE 256

typedef struct MvfaRun MvfaRun;

struct Baseline {
    BaselineConfig cfg;
    const Backend *be;
    const ClipModel *m;
    Tokenizer *tok;
    int S, g, T, P, Wv, Wt, L;
    int layers[BL_MAX_LAYERS];   // resolved 1-based layers
    float *pos;                  // (T, Wv) positional embedding at grid g (WinCLIP's embedded tokens)
    VisionTower *vtower;         // the frozen vision tower on cfg.device
    // fixed-prompt text features per class name (host)
    int n_cached;
    char *cache_name[TEXT_CACHE];
    float *cache_text[TEXT_CACHE];  // (2,P)
    // backend: params | grad | m1 | m2, n_params floats each (learnable parameters, gradient, Adam moments)
    float *block, *params, *grad, *m1, *m2;
    size_t n_params;
    long step;
    long step_seg;               // MVFA-AD: the segmentation adapters' own optimiser steps (with masks only)
    MvfaRun *mvfa_train, *mvfa_eval;  // MVFA-AD: the layers after its first map layer, with and without the
                                      // activations of a backward
    float *work;                 // backend scratch of a batch, grown on demand
    size_t work_cap;
    // AnomalyCLIP prompts (host): every parameter is a prompt, so host_params (n_params) is the copy the text
    // tower reads and host_grad (n_params) the gradient it gives
    int prompt_T, eot[2];
    float *prompt_embeds;        // (2, T, Wt) token embeddings of the two prompt templates
    float *host_params, *host_grad;
    DeepTextRun *trun;
};

// The fixed-prompt text features (2,P) of a class (host), computed once and cached; NULL with err_set.
const float *baseline_class_text(Baseline *b, const char *cls);
// AnomalyCLIP's text features (2,P) on the host, unnormalised, from the current prompts (downloaded); the run
// keeps the activations for baseline_anomalyclip_text_backward.
int baseline_anomalyclip_text(Baseline *b, float *text);
// dtext (2,P, host) -> the prompts' gradient, uploaded into b->grad (overwritten: every parameter is a prompt).
int baseline_anomalyclip_text_backward(Baseline *b, const float *dtext);

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

// MVFA-AD's local loss on the host (model/mvfa_local_loss.c; its head is not on the op table yet): one layer's
// logits (B,2,g,g) -> bilinear to S per order -> probabilities; returns Focal + Dice(p_a, G) [+ Dice(p_n, 1 − G)
// when dice_normal] (batch means), and accumulates scale · ∂loss/∂logits into dlogits when it is not NULL.
double mvfa_local_loss(float *dlogits, const float *logits, const float *masks, int B, int g, int S, int softmax_first,
                       int align_corners, int dice_normal, float scale);

// Host scoring pieces (model/baseline_maps.c), shared by WinCLIP and MVFA-AD: logits (n,2) = scale · cos(feat_i,
// text_c), feat (n, ld) first P used, text (2,P); and softmax([a, b])[1] = σ(b − a).
void baseline_cos_logits(float *logits, const float *feat, int n, int ld, int P, const float *text, float scale);
static inline float baseline_p_second(float a, float b) { return sigmoid_f(b - a); }

// map (B,S,S) += the abnormal-probability map of patch tokens (B, g*g, ld) (first P used) against text (2,P), on
// the host (MVFA-AD): softmax_first: softmax on the grid then bilinear to S; else the two logit maps, then softmax.
void mvfa_patch_map_add(float *map, const float *tokens, int B, int g, int ld, int P, const float *text, float scale,
                        int softmax_first, int align_corners, int S);

// APRIL-GAN: out (B*N, P) = the patch rows of hidden (B,T,Wv) through layer i's linear map; rows (B*N, Wv) scratch.
void baseline_aprilgan_linear(const Baseline *b, int i, const float *hidden, int B, float *rows, float *out);
// A batch on the backend (model/baseline_batch.c): one slice of b->work per buffer (NULL for n = 0), the work
// grown to their sum.
typedef struct { float **ptr; size_t n; } BlSlice;
int baseline_work(Baseline *b, const BlSlice *s, int n);
// dst (B*N, ld) = the patch rows of map layer `layer`'s features (class rows dropped), uploaded.
void baseline_upload_patch_rows(Baseline *b, const BaselineFeatures *f, int layer, float *dst);

// The local loss of one map layer on the backend (model/baseline_local_loss.c): logits L (2,B,g,g) as two planes
// (row 0 normal, row 1 abnormal, image-major within a plane) -> bilinear to S per order -> probabilities ->
// focal + dice(p_a, G) [+ dice(p_n, 1 − G) with dice_normal]. gt, ngt (B,S,S) are G and 1 − G. slots
// (1 + 2B) get the focal sum, then dice(p_a_b, G_b) per image, then dice(p_n_b, 1 − G_b) per image (dice_normal);
// with dL (2,B,g,g) not NULL, dL += scale · ∂loss/∂L. scratch: baseline_local_scratch(B, g, S) floats.
size_t baseline_local_scratch(int B, int g, int S);
void baseline_local_loss_on(const Backend *be, float *slots, float *dL, const float *L, const float *gt,
                            const float *ngt, int B, int g, int S, int softmax_first, int align_corners,
                            int dice_normal, float scale, float *scratch);
// The loss from downloaded slots: focal / (B·S·S) + 1 − mean dice(p_a) [+ 1 − mean dice(p_n)].
double baseline_local_value(const float *slots, int B, int S, int dice_normal);

#endif
