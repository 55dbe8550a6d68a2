// DAT v1 deformable self-attention over a patch grid (LeapLabTHU/DAT DAttentionBaseline with stride 1,
// docs/reference/kanoclip-components.md §5.2), one image at a time, channels-last features x (N = Hg·Wg, P):
//   q = x Wqᵀ + bq
//   per group g (C_g = P/G channels, H/G heads): off_g = GELU(LN_ch(DWConv_k(q_g))) W_offᵀ   (N, 2) = (dy, dx)
//   pos_g = ref + s·tanh(off_g)·(1/Wg, 1/Hg)   (grid (x, y), ref = pixel centres in [-1, 1])
//   x̃_g = grid_sample(x_g, pos_g, bilinear, align_corners=True, zeros)
//   k = x̃ Wkᵀ + bk, v = x̃ Wvᵀ + bv
//   att_h = softmax_keys(q_h k_hᵀ / sqrt(d_h) + B_h),  B_h[q, k] = grid_sample(rpe_h, (ref_q − pos_k)/2)
//   out = concat_h(att_h v_h) Woᵀ + bo
#ifndef MODEL_DEFORM_ATTN_H
#define MODEL_DEFORM_ATTN_H

#include <stddef.h>

#include "model/backend.h"

typedef struct {
    int P, H, G;          // width, heads, offset groups
    int Hg, Wg;           // grid; N = Hg*Wg queries and keys (stride 1)
    int k;                // depthwise kernel of the offset net
    float range;          // offset range factor s
    int rpe;              // relative-position bias on/off
} DattnShape;

typedef struct {
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;  // (P,P), (P) each
    float *off_dw_w, *off_dw_b;                             // (Cg, k*k), (Cg): shared by the groups
    float *off_ln_w, *off_ln_b;                             // (Cg)
    float *off_pw_w;                                        // (2, Cg): row 0 -> dy, row 1 -> dx (no bias)
    float *rpe;                                             // (H, 2Hg-1, 2Wg-1), NULL when shape.rpe == 0
} DattnParams;

// What the forward keeps for the backward, plus the backward's scratch; one allocation.
typedef struct {
    float *q;                        // (N,P)
    float *dw, *ln, *ge;             // (G,N,Cg) offset net: conv, LN, GELU
    float *ln_mean, *ln_rstd;        // (G,N)
    float *off;                      // (G,N,2) raw offsets (dy, dx)
    float *pos;                      // (G,N,2) sampling positions, grid order (x, y)
    float *xs, *k, *v;               // (N,P) sampled input, keys, values
    float *att;                      // (H,N,N) attention probabilities
    float *ao;                       // (N,P) attention output before the out-projection
    // backward scratch
    float *dao, *dq, *dxs, *dk, *dv; // (N,P)
    float *datt;                     // (H/G,N,N) one group's heads
    float *dge, *dln, *ddw;          // (G,N,Cg)
    float *dpos, *doff;              // (G,N,2)
    float *mem;                      // the backend's, one allocation
    const Backend *be;
} DattnActs;

size_t dattn_param_count(const DattnShape *s);
// Activations in the backend's memory.
int dattn_acts_alloc(const Backend *be, DattnActs *a, const DattnShape *s);
void dattn_acts_free(DattnActs *a);

// out (N,P) = DAttn(x (N,P)); out does not alias x.
void dattn_forward(const Backend *be, float *out, DattnActs *a, const DattnParams *p, const float *x,
                   const DattnShape *s);
// dx (N,P) += ..., g (gradient views laid out like p) += ..., from dout (N,P) and the last forward on x.
void dattn_backward(const Backend *be, float *dx, DattnParams *g, const float *dout, DattnActs *a,
                    const DattnParams *p, const float *x, const DattnShape *s);

#endif
