// The Kanoclip struct, shared by the files that implement it (kanoclip.c, kanoclip_state.c).
#ifndef MODEL_KANOCLIP_INTERNAL_H
#define MODEL_KANOCLIP_INTERNAL_H

#include "model/kanoclip.h"
#include "model/baselines.h"
#include "model/towers.h"
#include "model/conv_adapter.h"

struct Kanoclip {
    KanoclipConfig cfg;
    int n_classes;
    const ClipText *text;        // frozen text tower (KnPL on)
    TextTower *run;              // its activations on cfg.device, kept for the backward (no deep prompts)
    DeepTextRun *deep_run;       // with deep prompts: the text tower that overwrites hidden states (CPU)
    KanoLayout L;
    float *block;                // one allocation: params | grads | adam_m | adam_v, each L.total floats
    float *params, *grads, *adam_m, *adam_v;
    KanoParams p, g;             // views of params and grads
    long step;                   // Adam updates done
    uint64_t rng[4];             // xoshiro256** state
    int ctx_len, n_adj;          // prompt length; prompts per state (one per adjective)
    int *ids, *eot;              // (n_classes, 2, n_adj, ctx_len), (n_classes, 2, n_adj) prompt token ids
    float *tunit, *tunorm;       // (2, U, n_adj, P), (2, U, n_adj): each prompt's unit feature and raw norm
    float *kb;                   // (n_classes, P) unit knowledge-base rows
    float *fixed;                // (n_classes, 2, P) fixed text features (KnPL off)
    BicmciActs acts;             // one (stage, image) pair's activations
};

// kanoclip.c: the adapter's scratch and the global branch's logits (B,2), shared with kanoclip_paper.c.
float *kano_global_buffers(AdapterActs *ad, int B, int P, int R);
void kano_global_forward(Kanoclip *m, const KanoBatch *b, const float *tfeat, int U, const int *uidx,
                         AdapterActs *ad, float *ic, float *icn, float *icnorm, float *logits);
// kanoclip_paper.c: the global and local losses with the paper switches (local_fused, map_minmax,
// global_max_map), forward and backward; dtfeat (2,U,P) += text gradients; L's global/local/focal/dice filled.
int kano_paper_switches_on(const KanoclipConfig *c);
int kano_global_local_joint(Kanoclip *m, const KanoBatch *b, const float *tfeat, int U, const int *uidx,
                            float *dtfeat, KanoLosses *L);
// Per-image min-max of x (n) in place (a constant map becomes 0).
void kano_minmax_forward(float *x, int n);

#endif
