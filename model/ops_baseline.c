// CPU reference of the baselines' ops (see ops_baseline.h).
#include "model/ops_baseline.h"

#include <math.h>

#include "model/vec_exp.h"

// σ(d) and σ(−d) from e = exp(−|d|) (never overflows): the larger is 1/(1+e), the smaller e/(1+e).
static inline void sigmoid_both(float d, float *pos, float *neg) {
    float e = exp_fast(-fabsf(d)), big = 1.0f / (1.0f + e), small = e * big;
    *pos = d >= 0 ? big : small;
    *neg = d >= 0 ? small : big;
}

void pair_probs_forward(float *out, const float *inp, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float pa, pn;
        sigmoid_both(inp[n + i] - inp[i], &pa, &pn);
        out[i] = pn;
        out[n + i] = pa;
    }
}

void pair_prob_add(float *y, const float *inp, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float pa, pn;
        sigmoid_both(inp[n + i] - inp[i], &pa, &pn);
        y[i] += pa;
    }
}

void ce_pair_forward_backward(float *loss, float *dlogits, const float *logits, const float *labels, int n,
                              float scale) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double l0 = logits[i], l1 = logits[n + i], m = fmax(l0, l1);
        double lse = m + log(exp(l0 - m) + exp(l1 - m));
        int y = labels[i] > 0.5f;
        sum += lse - (y ? l1 : l0);
        if (!dlogits) continue;
        double d1 = exp(l1 - lse) - y;  // d/dl1; d/dl0 = −d1 (the two probabilities sum to 1)
        dlogits[i] -= (float)(scale * d1);
        dlogits[n + i] += (float)(scale * d1);
    }
    loss[0] = (float)sum;
}
