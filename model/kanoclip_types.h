// The data KAnoCLIP's heads take and give (model/kanoclip.h): a mini-batch of cached features, the prompts'
// token ids, and one step's loss terms. A header of its own so that the files of the heads (kanoclip.c, its global
// branch, the paper's losses) share them without depending on one another.
#ifndef MODEL_KANOCLIP_TYPES_H
#define MODEL_KANOCLIP_TYPES_H

// One mini-batch of cached features. S = cfg.image_size, N = grid_h*grid_w, P = cfg.width.
typedef struct {
    int B;
    const float *stage;     // (B, n_stages, 1+N, P): projected stage tokens, row 0 (CLS) is skipped
    const float *global;    // (B, P) global image feature
    const float *mask;      // (B, S, S) ground truth, binarised at > 0.5 here; NULL for evaluation
    const int *label;       // (B) 0 normal, 1 anomalous; NULL for evaluation
    const int *class_id;    // (B) row of the prompt set / knowledge base
} KanoBatch;

// The per-class prompt token ids the harness tokenises (KnPL on): ids (n_classes, 2, n_adj, ctx_len) with
// [SOT] at 0, the n_ctx context positions 1..n_ctx (their ids are ignored: the contexts replace them),
// then the state adjective, the class name, "." and [EOT]; state 0 normal, 1 abnormal. kanoclip_prompt_ids
// builds one. One prompt per adjective (the paper's [Normal] "normal", "perfect"; [Abnormal] "abnormal",
// "defective"), the learnable context shared within a state; t_n, t_a = norm(mean over the adjectives' unit
// features) (W^n, W^a: "the means of all LNPs/LAPs features"). n_adj 0 counts as 1.
typedef struct {
    int n_classes, ctx_len;
    int *ids;               // (n_classes, 2, n_adj, ctx_len)
    int *eot;               // (n_classes, 2, n_adj) position of [EOT]
    int n_adj;              // prompts (adjectives) per state
} KanoPrompts;

typedef struct {
    float total, kd, global, local;  // weighted total and the unweighted terms (local summed over stages)
    float focal, dice;               // parts of local, summed over stages
    float cos_ak, cos_nk, cos_an;    // monitors: cos(mean LAP, KB), cos(mean LNP, KB), cos(LAP, LNP)
    float time_text, time_local;     // seconds: text tower forward + backward; Bi-CMCI stages and local losses
} KanoLosses;

#endif
