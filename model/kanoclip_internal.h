// The Kanoclip struct, shared by the files that implement it (kanoclip.c, kanoclip_state.c).
#ifndef MODEL_KANOCLIP_INTERNAL_H
#define MODEL_KANOCLIP_INTERNAL_H

#include "model/kanoclip.h"
#include "model/baselines.h"
#include "model/towers.h"

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
    int ctx_len;
    int *ids, *eot;              // (n_classes, 2, ctx_len), (n_classes, 2) prompt token ids
    float *kb;                   // (n_classes, P) unit knowledge-base rows
    float *fixed;                // (n_classes, 2, P) fixed text features (KnPL off)
    BicmciActs acts;             // one (stage, image) pair's activations
};

#endif
