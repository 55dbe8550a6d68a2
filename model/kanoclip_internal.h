// The Kanoclip struct and the step's device-side batch, shared by the files that implement the model
// (kanoclip.c: parameters, text and the step; kanoclip_global.c, kanoclip_local.c, kanoclip_paper.c: the losses;
// kanoclip_eval.c; kanoclip_state.c).
//
// Memory: the parameters, gradients, Adam moments, the Bi-CMCI activations and the step's buffers belong to the
// backend m->be (model/backend.h); the host keeps the prompts, the KB, the fixed text and the text features (the
// frozen text tower has its own device dispatch, model/towers.h). Per step the host uploads the batch and the 2U
// text features, and downloads the global logits, the loss terms, the text gradients and the maps.
#ifndef MODEL_KANOCLIP_INTERNAL_H
#define MODEL_KANOCLIP_INTERNAL_H

#include "model/backend.h"
#include "model/baselines.h"
#include "model/conv_adapter.h"
#include "model/kanoclip.h"
#include "model/towers.h"

struct Kanoclip {
    KanoclipConfig cfg;
    const Backend *be;
    int n_classes;
    const ClipText *text;        // frozen text tower (KnPL on)
    TextTower *run;              // its activations on cfg.device, kept for the backward (no deep prompts)
    DeepTextRun *deep_run;       // with deep prompts: the text tower that overwrites hidden states (CPU)
    KanoLayout L;
    float *block;                // backend: params | grads | adam_m | adam_v, each L.total floats
    float *params, *grads, *adam_m, *adam_v;
    KanoParams p, g;             // views of params and grads (backend pointers)
    long step;                   // Adam updates done
    uint64_t rng[4];             // xoshiro256** state
    int ctx_len, n_adj;          // prompt length; prompts per state (one per adjective)
    int *ids, *eot;              // (n_classes, 2, n_adj, ctx_len), (n_classes, 2, n_adj) prompt token ids
    float *tunit, *tunorm;       // (2, U, n_adj, P), (2, U, n_adj): each prompt's unit feature and raw norm (host)
    float *kb;                   // (n_classes, P) unit knowledge-base rows (host)
    float *fixed;                // (n_classes, 2, P) fixed text features (KnPL off, host)
    BicmciActs acts;             // one (stage, image) pair's activations (backend)
    float *tparams, *tgrads;     // host (T each): the KnPL tensors (the block's first T floats) and their gradient
    float *tgrads_dev;           // backend (T): tgrads uploaded, added to grads
    float *work;                 // backend scratch of the step, grown on demand
    size_t work_cap;
};

// kanoclip.c: the batch's classes (U, ascending) and each image's index among them (-1 with err_set for a bad
// batch); the text features tfeat (2,U,P) and norms tnorm (2,U) on the host (emb: the prompts' embeddings).
int kano_batch_classes(const Kanoclip *m, const KanoBatch *b, int *cls, int *uidx);
int kano_text_forward(Kanoclip *m, const int *cls, int U, float *tfeat, float *tnorm, float *emb);

// One step's batch on the backend, and the buffers every loss path shares. Host arrays say so.
typedef struct {
    int B, U, P, N, S, SS, NS, R;
    const int *uidx;             // host (B): each image's index among the batch's classes
    const int *label;            // host (B) or NULL
    float *stage, *global, *gt, *ngt;  // (B,NS,1+N,P), (B,P), (B,SS), (B,SS): the batch and its binarised masks
    float *tf, *dtf;             // (2,U,P) the classes' text features (unit rows) and their gradient
    float *T, *dT;               // (B,2,P) each image's [t_n | t_a] and its gradient
    AdapterActs ad;              // the adapter's activations (B rows)
    float *ic, *icn, *icnorm;    // (B,P), (B,P), (B) adapted global feature, unit, norm
    float *logits, *dlogits;     // (B,2), (B,2)
    float *dicn, *dic;           // (B,P) each
    float *probs_n, *probs_a, *dprobs_n, *dprobs_a, *dprobs;  // (N) x4, (N,2): one stage of one image
    float *maps;                 // (B,SS) evaluation maps
    float *slots;                // loss terms, one float per (image, stage, term), downloaded at the end
    float *extra;                // the loss path's own buffers (kanoclip_local.c, kanoclip_paper.c)
} KanoStep;

// Allocates the step's buffers (extra_n more floats for the loss path, n_slots loss slots), uploads the batch
// (stage features, global features, masks when given) and the text features tfeat_host (2,U,P), and gathers T.
// -1 with err_set.
int kano_step_begin(Kanoclip *m, KanoStep *st, const KanoBatch *b, const float *tfeat_host, int U, const int *uidx,
                    size_t n_slots, size_t extra_n);
// The stage features F (N,P) of image i, stage s (the CLS row skipped).
const float *kano_stage_features(const KanoStep *st, int i, int s);
// Scatters dT (B,2,P) into dtf (2,U,P) and downloads dtf into dtfeat_host (2,U,P) (+=).
void kano_step_text_grads(Kanoclip *m, KanoStep *st, float *dtfeat_host);

// kanoclip_global.c: the Conv-Adapter and the 2-way logits, downloaded into logits_host (B,2).
void kano_global_forward(Kanoclip *m, KanoStep *st, float *logits_host);
// dl_host (B,2): the loss's gradient at the logits -> dT (B,2,P) += and the adapter's gradients.
void kano_global_backward(Kanoclip *m, KanoStep *st, const float *dl_host);
// The default global loss: CE over the two logits = BCE on p_a, as softplus(l_other − l_label); returns the mean.
float kano_global_bce(Kanoclip *m, KanoStep *st, const int *label);

// kanoclip_local.c: the default local losses (per stage, mean over stages); fills L's local, focal and dice.
size_t kano_local_extra(const KanoclipConfig *c);
void kano_local_losses(Kanoclip *m, KanoStep *st, KanoLosses *L);

// kanoclip_paper.c: the global and local losses with the paper switches (local_fused, map_minmax,
// global_max_map), forward and backward; L's global/local/focal/dice filled.
int kano_paper_switches_on(const KanoclipConfig *c);
size_t kano_joint_extra(const KanoclipConfig *c);
int kano_global_local_joint(Kanoclip *m, KanoStep *st, KanoLosses *L);

#endif
