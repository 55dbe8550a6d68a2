// The local loss of APRIL-GAN and AnomalyCLIP on one layer's logits, on the backend (docs/reference/zsad-anchors.md
// §1.1 "Loss formulas", §1.2 "Training"): probabilities at the input size by either order of softmax and bilinear
// upsampling, then FocalLoss(gamma 2) + BinaryDiceLoss(p_a, G) [+ BinaryDiceLoss(p_n, 1 − G)], with the gradient
// to the logits. The loss terms land in backend slots; the caller brings them down once per batch.
#include "model/baseline_internal.h"

size_t baseline_local_scratch(int B, int g, int S) {
    return (size_t)2 * B * g * g + (size_t)6 * B * S * S;
}

void baseline_local_loss_on(const Backend *be, float *slots, float *dL, const float *L, const float *gt,
                            const float *ngt, int B, int g, int S, int softmax_first, int align_corners,
                            int dice_normal, float scale, float *scratch) {
    int N = g * g, SS = S * S, BS = B * SS;
    float *grid = scratch;             // (2,B,g,g) probabilities on the grid (softmax first)
    float *pr = grid + 2 * B * N;      // (2,B,S,S) p_n | p_a at the input size
    float *up = pr + 2 * BS;           // (2,B,S,S) upsampled logits; in the backward the gradient before them
    float *dp = up + 2 * BS;           // (2,B,S,S) ∂loss/∂(p_n | p_a)
    const float *pn = pr, *pa = pr + BS;
    // 2·B single-channel maps per upsampling: both planes at once
    if (softmax_first) {
        be->pair_probs_forward(grid, L, B * N);
        be->upsample_bilinear_forward(pr, grid, 2 * B, g, g, S, S, align_corners);
    } else {
        be->upsample_bilinear_forward(up, L, 2 * B, g, g, S, S, align_corners);
        be->pair_probs_forward(pr, up, BS);
    }
    be->focal_sum_op_forward(slots, pn, pa, gt, BS);
    for (int b = 0; b < B; b++) {
        be->dice_op_forward(slots + 1 + b, pa + (size_t)b * SS, gt + (size_t)b * SS, SS);
        if (dice_normal) be->dice_op_forward(slots + 1 + B + b, pn + (size_t)b * SS, ngt + (size_t)b * SS, SS);
    }
    if (!dL) return;
    float *dpn = dp, *dpa = dp + BS;
    be->zero(dp, (size_t)2 * BS);
    be->focal_sum_backward(dpn, dpa, pn, pa, gt, BS, scale / (float)BS);  // the focal term is a mean over pixels
    for (int b = 0; b < B; b++) {  // 1 − mean over images of each dice
        be->dice_backward(dpa + (size_t)b * SS, pa + (size_t)b * SS, gt + (size_t)b * SS, SS, -scale / B);
        if (dice_normal) be->dice_backward(dpn + (size_t)b * SS, pn + (size_t)b * SS, ngt + (size_t)b * SS, SS, -scale / B);
    }
    float *d = up;  // (2,B,g,g) on the grid (softmax first), else (2,B,S,S) at the logits' upsampled values
    if (softmax_first) {
        be->zero(d, (size_t)2 * B * N);
        be->upsample_bilinear_backward(d, dp, 2 * B, g, g, S, S, align_corners);
        be->softmax_pair_backward(dL, d, grid, B * N);
    } else {
        be->zero(d, (size_t)2 * BS);
        be->softmax_pair_backward(d, dp, pr, BS);
        be->upsample_bilinear_backward(dL, d, 2 * B, g, g, S, S, align_corners);
    }
}

double baseline_local_value(const float *slots, int B, int S, int dice_normal) {
    double dsum = 0, dnsum = 0;
    for (int b = 0; b < B; b++) {
        dsum += slots[1 + b];
        if (dice_normal) dnsum += slots[1 + B + b];
    }
    double loss = slots[0] / ((double)B * S * S) + (1.0 - dsum / B);
    return dice_normal ? loss + (1.0 - dnsum / B) : loss;
}
