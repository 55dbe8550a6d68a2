// Bi-CMCI, one stage on one image (docs/reference/kanoclip-components.md §5.4): BiXT bi-directional cross-attention between
// the 2 text tokens T (normal, anomalous) and the N patch tokens F, self-attention on T, DAT deformable
// self-attention on F (pre-LN residual blocks; BiXT MLPs after each in the full variant), then
// probs = softmax_2(norm(F) norm(T)ᵀ / tau): column 0 the normal map, column 1 the anomaly map.
// With cfg->bicmci == 0 only the last step runs on the stage features (the Table 3 ablation).
#ifndef MODEL_BICMCI_H
#define MODEL_BICMCI_H

#include "model/backend.h"
#include "model/kanoclip_params.h"

typedef struct {
    float *ln, *mean, *rstd, *h, *hg;  // (R,P), (R), (R), (R,4P), (R,4P)
} MlpActs;

typedef struct {
    int N, P, H;
    float *t0;                       // (2,P) text input
    float *tln, *tln_m, *tln_r;      // (2,P), (2), (2)
    float *fln, *fln_m, *fln_r;      // (N,P), (N), (N)
    float *rvt, *rvp;                // (2,2P), (N,2P): [reference | value]
    float *A, *att_t, *att_p;        // (H,2,N) scores, softmax over patches, softmax over the 2 text tokens
    float *ot, *op;                  // (2,P), (N,P) before the out-projections
    float *t1, *f1;                  // (2,P), (N,P) after cross-attention (and its MLPs)
    float *t1a, *f1a;                // (2,P), (N,P) before the CA MLPs (full variant)
    float *sln, *sln_m, *sln_r;      // (2,P), (2), (2)
    float *qkv, *satt, *sao;         // (2,3P), (H,2,2), (2,P)
    float *t2, *t2a;                 // (2,P) after text SA (and its MLP); t2a before the MLP
    float *dln, *dln_m, *dln_r;      // (N,P), (N), (N)
    DattnActs dat;                   // DAT flavour
    MsdaActs msda;                   // Deformable-DETR flavour
    float *dout;                     // (N,P) DAttn output
    float *f2, *f2a;                 // (N,P) after DAttn (and its MLP); f2a before the MLP
    MlpActs mlp_ca_t, mlp_ca_p, mlp_sa_t, mlp_d_p;
    float *fn, *fnorm, *tn, *tnorm;  // (N,P), (N), (2,P), (2) normalised features for the maps
    float *probs;                    // (N,2)
    // backward scratch
    float *dF, *dT;                  // (N,P), (2,P) running gradients of the residual streams
    float *d_fln, *d_rvp, *d_op, *d_dln, *d_mlp_h, *d_mlp_ln;  // (N,P), (N,2P), (N,P), (N,P), (N,4P), (N,P)
    float *d_tln, *d_rvt, *d_ot, *d_sln, *d_qkv, *d_sao, *d_satt; // (2,P), (2,2P), (2,P), (2,P), (2,3P), (2,P), (H,2,2)
    float *dA, *d_attp, *d_scores;   // (H,2,N) each: the gradients of att_t, att_p and the scores A
    float *d_logits, *d_fn, *d_tn;   // (N,2), (N,P), (2,P)
    float *mem;                      // the backend's, one allocation
    const Backend *be;
} BicmciActs;

// Activations in the backend's memory; F, T, dprobs, dT and the parameters below are the backend's too.
int bicmci_acts_alloc(const Backend *be, BicmciActs *a, const KanoclipConfig *cfg);
void bicmci_acts_free(BicmciActs *a);

// F (N,P) patch features of the stage (CLS removed); T (2,P) text features (unit rows) -> a->probs (N,2).
void bicmci_forward(const Backend *be, BicmciActs *a, const BicmciParams *p, const KanoclipConfig *cfg, const float *F,
                    const float *T);
// dprobs (N,2) -> g (gradient views) += ..., dT (2,P) += ... (the stage features are frozen: no dF).
void bicmci_backward(const Backend *be, float *dT, BicmciParams *g, const float *dprobs, BicmciActs *a, const BicmciParams *p,
                     const KanoclipConfig *cfg, const float *F, const float *T);

#endif
