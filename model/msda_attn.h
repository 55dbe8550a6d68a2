// Deformable-DETR multi-scale deformable attention with one level (fundamentalvision/Deformable-DETR
// MSDeformAttn, docs/reference/kanoclip-components.md §5.3), the Bi-CMCI alternative to DAT. On x (N = Hg·Wg, P):
//   query = x + pos (2-D sine positional embedding, DETR's PositionEmbeddingSine(normalize=True))
//   value = x Wvᵀ + bv
//   off   = query Woffᵀ + boff  (N, M, K, 2) in pixels (x, y);  a = softmax_K(query Waᵀ + ba)  (N, M, K)
//   loc   = ref + off / (Wg, Hg),  ref = pixel centres in [0, 1];  s = grid_sample(value_h, 2 loc − 1,
//           bilinear, align_corners=False, zeros)
//   out   = concat_h(Σ_k a_k s_k) Woᵀ + bo
// No dot-product attention: K bilinear taps per head and query.
#ifndef MODEL_MSDA_ATTN_H
#define MODEL_MSDA_ATTN_H

#include <stddef.h>

#include "model/backend.h"

typedef struct {
    int P, M, K;   // width, heads, points per head
    int Hg, Wg;    // grid
} MsdaShape;

typedef struct {
    float *v_w, *v_b;       // (P,P), (P)
    float *off_w, *off_b;   // (M*K*2, P), (M*K*2)
    float *att_w, *att_b;   // (M*K, P), (M*K)
    float *o_w, *o_b;       // (P,P), (P)
} MsdaParams;

typedef struct {
    float *pos;             // (N,P) sine positional embedding (constant)
    float *query, *value;   // (N,P)
    float *off;             // (N,M*K*2)
    float *att;             // (N,M*K) softmax over K
    float *grid;            // (M,N*K,2) normalised sampling points (x, y)
    float *samp;            // (M,N*K,hd) sampled values
    float *ao;              // (N,P) before the out-projection
    // backward scratch
    float *dao, *dquery, *dvalue, *doff, *datt, *dsamp, *dgrid;  // (N,P) x3, (N,M*K*2), (N,M*K), (M,N*K,hd), (M,N*K,2)
    float *dlogit;          // (N,M*K) softmax backward
    float *mem;                      // the backend's, one allocation
    const Backend *be;
} MsdaActs;

size_t msda_param_count(const MsdaShape *s);
int msda_acts_alloc(const Backend *be, MsdaActs *a, const MsdaShape *s);
void msda_acts_free(MsdaActs *a);
// The Deformable-DETR initialisation of the offset bias: head h points along angle 2πh/M, scaled so its larger
// component is 1, times (k + 1) for point k. off_b (M*K*2).
void msda_init_offset_bias(float *off_b, int M, int K);

void msda_forward(const Backend *be, float *out, MsdaActs *a, const MsdaParams *p, const float *x, const MsdaShape *s);
void msda_backward(const Backend *be, float *dx, MsdaParams *g, const float *dout, MsdaActs *a, const MsdaParams *p, const float *x,
                   const MsdaShape *s);

#endif
