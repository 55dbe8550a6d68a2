// Ops the baselines' heads need beside model/ops_heads.h (model/baseline*.c): CPU reference;
// model/cuda/ops_cuda.h has each as name##_cuda, and both are reached through the op table (model/backend.h).
#ifndef MODEL_OPS_BASELINE_H
#define MODEL_OPS_BASELINE_H

// The two-way softmax per column of (2,n) with one exponential: d = inp[n+i] − inp[i], out[n+i] = σ(d),
// out[i] = σ(−d), as the public code's 2-class softmax (softmax_pair_forward to rounding, at half its
// exponentials: the maps' probabilities at the input size are the heads' largest elementwise step). out may
// alias inp; its backward is softmax_pair_backward.
void pair_probs_forward(float *out, const float *inp, int n);
// y (n) += σ(inp[n+i] − inp[i]): the abnormal probability of (2,n) logit planes added to a map (scoring).
void pair_prob_add(float *y, const float *inp, int n);

// Two-class cross-entropy per column of logits (2,n) (row 0 class 0, row 1 class 1) against labels (n) in {0,1}:
// loss[0] = Σ_i logsumexp(l0_i, l1_i) − l_{label_i, i}, summed in double (AnomalyCLIP's global loss before its
// batch mean); with dlogits (2,n) not NULL, dlogits += scale · (softmax_i − onehot_i).
void ce_pair_forward_backward(float *loss, float *dlogits, const float *logits, const float *labels, int n,
                              float scale);

#endif
