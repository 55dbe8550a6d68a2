// The trainable parameters of KAnoCLIP in one allocation (llm.c style): a table of named tensors sliced by
// offsets, and typed views (pointers into the block) per module. The same layout serves parameters,
// gradients and Adam's moments: a view over another base is the same offsets.
#ifndef MODEL_KANOCLIP_PARAMS_H
#define MODEL_KANOCLIP_PARAMS_H

#include <stddef.h>

#include "model/deform_attn.h"
#include "model/kanoclip_config.h"

#define KANO_MAX_STAGES 8
#define KANO_MAX_TENSORS 512

// x += fc2(GELU(fc1(LN(x)))), BiXT MLP with ratio 4 (full variant only)
typedef struct {
    float *ln_w, *ln_b;    // (P)
    float *fc1_w, *fc1_b;  // (4P, P), (4P)
    float *fc2_w, *fc2_b;  // (P, 4P), (P)
} MlpParams;

typedef struct {
    // BiXT bi-directional cross-attention (text = latents)
    float *ln_t_w, *ln_t_b, *ln_p_w, *ln_p_b;  // (P)
    float *rv_t_w, *rv_t_b;                    // (2P, P), (2P): [reference | value] of the text tokens
    float *rv_p_w, *rv_p_b;                    // (2P, P), (2P): same for the patches
    float *o_t_w, *o_t_b, *o_p_w, *o_p_b;      // (P, P), (P)
    // self-attention on the text tokens
    float *sa_ln_w, *sa_ln_b;                  // (P)
    float *sa_qkv_w, *sa_qkv_b;                // (3P, P), (3P)
    float *sa_o_w, *sa_o_b;                    // (P, P), (P)
    // deformable self-attention on the patches
    float *d_ln_w, *d_ln_b;                    // (P)
    DattnParams dat;
    // full variant
    MlpParams mlp_ca_t, mlp_ca_p, mlp_sa_t, mlp_d_p;
} BicmciParams;

typedef struct {
    float *ln_w, *ln_b;      // (P)
    float *down_w, *down_b;  // (R, P), (R), R = P / ratio
    float *up_w, *up_b;      // (P, R), (P)
} AdapterParams;

typedef struct {
    float *ctx_n, *ctx_a;    // (n_ctx, text_width) learnable normal / abnormal contexts (NULL when knpl off)
    float *deep;             // (deep_depth-1, deep_tokens, text_width) or NULL
    BicmciParams stage[KANO_MAX_STAGES];
    AdapterParams adapter;   // pointers NULL when the adapter is off
} KanoParams;

typedef struct {
    char name[48];           // e.g. "stage0.dat.q_w"
    int ndim, shape[3];
    size_t offset, size;     // in floats, within the block
} KanoTensor;

typedef struct {
    int n;
    KanoTensor t[KANO_MAX_TENSORS];
    size_t total;            // floats
} KanoLayout;

// Fills the table for cfg (names, shapes, offsets) and, when base is not NULL, the views over base.
void kanoclip_layout(KanoLayout *L, KanoParams *views, const KanoclipConfig *cfg, float *base);
// The views of another block laid out like the first (gradients, moments).
void kanoclip_views(KanoParams *views, const KanoclipConfig *cfg, float *base);
// DattnShape of the stages for cfg.
DattnShape kanoclip_dattn_shape(const KanoclipConfig *cfg);

#endif
