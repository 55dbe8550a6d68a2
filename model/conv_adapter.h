// Conv-Adapter on the global feature (docs/reference/kanoclip-components.md §6.2): on a 1×1 map the depthwise-separable
// bottleneck is a dense one, I_c = ReLU(LN(I) W_downᵀ + b_down) W_upᵀ + b_up (+ I with the residual switch).
#ifndef MODEL_CONV_ADAPTER_H
#define MODEL_CONV_ADAPTER_H

#include "model/backend.h"
#include "model/kanoclip_params.h"

typedef struct {
    float *ln, *mean, *rstd;   // (B,P), (B), (B)
    float *h;                  // (B,R) ReLU output
    float *dh, *dpre, *dln;    // (B,R), (B,R), (B,P) backward scratch
} AdapterActs;

// out (B,P) from I (B,P); R = P / ratio.
void adapter_forward(const Backend *be, float *out, AdapterActs *a, const AdapterParams *p, const float *I, int B,
                     int P, int R, int residual);
// g += ...; no input gradient (the global feature is frozen).
void adapter_backward(const Backend *be, AdapterParams *g, const float *dout, AdapterActs *a, const AdapterParams *p,
                      const float *I, int B, int P, int R);

#endif
