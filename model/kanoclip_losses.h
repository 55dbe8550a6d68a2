// KAnoCLIP's losses (docs/reference/kanoclip-components.md §7, AnomalyCLIP loss.py semantics) and the KD loss (§4.3).
// Each *_forward returns the loss; each *_backward accumulates scale · ∂loss/∂input.
#ifndef MODEL_KANOCLIP_LOSSES_H
#define MODEL_KANOCLIP_LOSSES_H

#include "model/kanoclip_config.h"

// AnomalyCLIP FocalLoss(gamma 2, alpha 1, smooth 1e-5) on probabilities: per pixel, target one-hot clamped to
// [1e-5, 1-1e-5], pt = Σ_c y_c p_c + 1e-5, ℓ = −(1−pt)² log pt. Returns the SUM over the n pixels (the caller
// divides by the batch's pixel count). pn, pa (n): normal / anomalous probabilities; g (n) in {0, 1}.
double focal_sum_forward(const float *pn, const float *pa, const float *g, int n);
void focal_sum_backward(float *dpn, float *dpa, const float *pn, const float *pa, const float *g, int n, float scale);

// BinaryDiceLoss term of one image: D = (2 Σ p·g + 1) / (Σ p + Σ g + 1); the batch loss is 1 − mean_b D_b.
// Returns D; the backward adds scale · ∂D/∂p.
double dice_forward(const float *p, const float *g, int n);
void dice_backward(float *dp, const float *p, const float *g, int n, float scale);

// KD on unit vectors: a = norm(mean_u ta_u), nn = norm(mean_u tn_u), k (unit) the KB mean.
// ta, tn (U,P); dta, dtn (U,P) += scale · gradient. Monitors are returned through cos_ak, cos_nk, cos_an.
float kd_forward_backward(float *dta, float *dtn, const float *ta, const float *tn, const float *k, int U, int P,
                          const KanoclipConfig *cfg, float scale, float *cos_ak, float *cos_nk, float *cos_an);

#endif
