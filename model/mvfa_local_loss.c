// MVFA-AD's local loss and maps on one layer's logits, on the host (its head runs on the CPU; April-GAN's and AnomalyCLIP's
// run on the op table, model/baseline_local_loss.c): probabilities at the input size by either order of softmax
// and bilinear upsampling, then FocalLoss(gamma 2) + BinaryDiceLoss(p_a, G) [+ BinaryDiceLoss(p_n, 1 − G)]
// (docs/reference/zsad-anchors.md §1.1 "Loss formulas"), with the gradient to the logits.
#include "model/baseline_internal.h"
#include "model/kanoclip_losses.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double mvfa_local_loss(float *dlogits, const float *logits, const float *masks, int B, int g, int S,
                           int softmax_first, int align_corners, int dice_normal, float scale) {
    size_t N = (size_t)g * g, SS = (size_t)S * S, BS = (size_t)B * SS;
    float *grid = malloc(sizeof(float) * 2 * B * N);    // (2,B,g,g) channel planes (probabilities or logits)
    float *up = malloc(sizeof(float) * 2 * BS);         // (2,B,S,S) upsampled planes
    float *pr = malloc(sizeof(float) * 2 * BS);         // (2,B,S,S) probabilities p_n | p_a
    float *inv = malloc(sizeof(float) * BS);            // 1 − G
    float *dp = calloc(2 * BS, sizeof(float));          // (2,B,S,S) d loss / d probabilities
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < N; i++) {
            float l0 = logits[((size_t)b * 2) * N + i], l1 = logits[((size_t)b * 2 + 1) * N + i];
            if (softmax_first) {
                float pa = sigmoid_f(l1 - l0);
                grid[b * N + i] = 1.0f - pa;
                grid[B * N + b * N + i] = pa;
            } else {
                grid[b * N + i] = l0;
                grid[B * N + b * N + i] = l1;
            }
        }
    upsample_bilinear_forward(up, grid, 2 * B, g, g, S, S, align_corners);
    if (softmax_first) memcpy(pr, up, sizeof(float) * 2 * BS);
    else
        for (size_t i = 0; i < BS; i++) {
            float pa = sigmoid_f(up[BS + i] - up[i]);
            pr[i] = 1.0f - pa;
            pr[BS + i] = pa;
        }
    for (size_t i = 0; i < BS; i++) inv[i] = 1.0f - masks[i];
    const float *pn = pr, *pa = pr + BS;
    double loss = focal_sum_forward(pn, pa, masks, (int)BS) / (double)BS;
    double dsum = 0, dnsum = 0;
    for (int b = 0; b < B; b++) {
        dsum += dice_forward(pa + b * SS, masks + b * SS, (int)SS);
        if (dice_normal) dnsum += dice_forward(pn + b * SS, inv + b * SS, (int)SS);
    }
    loss += 1.0 - dsum / B;
    if (dice_normal) loss += 1.0 - dnsum / B;
    if (dlogits) {
        float *dpn = dp, *dpa = dp + BS;
        focal_sum_backward(dpn, dpa, pn, pa, masks, (int)BS, scale / (float)BS);
        for (int b = 0; b < B; b++) {
            dice_backward(dpa + b * SS, pa + b * SS, masks + b * SS, (int)SS, -scale / B);
            if (dice_normal) dice_backward(dpn + b * SS, pn + b * SS, inv + b * SS, (int)SS, -scale / B);
        }
        float *dgrid = calloc(2 * B * N, sizeof(float));
        if (softmax_first) {
            upsample_bilinear_backward(dgrid, dp, 2 * B, g, g, S, S, align_corners);
            for (int b = 0; b < B; b++)
                for (size_t i = 0; i < N; i++) {
                    float q = grid[B * N + b * N + i];                       // p_a on the grid
                    float d = (dgrid[B * N + b * N + i] - dgrid[b * N + i]) * q * (1.0f - q);
                    dlogits[((size_t)b * 2 + 1) * N + i] += d;
                    dlogits[((size_t)b * 2) * N + i] -= d;
                }
        } else {
            float *dup = malloc(sizeof(float) * 2 * BS);
            for (size_t i = 0; i < BS; i++) {
                float d = (dpa[i] - dpn[i]) * pa[i] * pn[i];
                dup[i] = -d;
                dup[BS + i] = d;
            }
            upsample_bilinear_backward(dgrid, dup, 2 * B, g, g, S, S, align_corners);
            free(dup);
            for (int b = 0; b < B; b++)
                for (size_t i = 0; i < N; i++) {
                    dlogits[((size_t)b * 2) * N + i] += dgrid[b * N + i];
                    dlogits[((size_t)b * 2 + 1) * N + i] += dgrid[B * N + b * N + i];
                }
        }
        free(dgrid);
    }
    free(grid); free(up); free(pr); free(inv); free(dp);
    return loss;
}

void mvfa_patch_map_add(float *map, const float *tokens, int B, int g, int ld, int P, const float *text, float scale,
                        int softmax_first, int align_corners, int S) {
    int N = g * g;
    size_t SS = (size_t)S * S;
    float *lg = malloc(sizeof(float) * 2 * B * N);      // (B,N,2)
    float *grid = malloc(sizeof(float) * 2 * B * N);    // (2,B,g,g) channel planes
    float *up = malloc(sizeof(float) * 2 * B * SS);     // (2,B,S,S)
    baseline_cos_logits(lg, tokens, B * N, ld, P, text, scale);
    if (softmax_first) {
        for (int i = 0; i < B * N; i++) grid[i] = baseline_p_second(lg[2 * i], lg[2 * i + 1]);
        upsample_bilinear_forward(up, grid, B, g, g, S, S, align_corners);
        for (size_t i = 0; i < (size_t)B * SS; i++) map[i] += up[i];
    } else {
        for (int i = 0; i < B * N; i++) { grid[i] = lg[2 * i]; grid[B * N + i] = lg[2 * i + 1]; }
        upsample_bilinear_forward(up, grid, 2 * B, g, g, S, S, align_corners);
        for (size_t i = 0; i < (size_t)B * SS; i++) map[i] += baseline_p_second(up[i], up[(size_t)B * SS + i]);
    }
    free(lg);
    free(grid);
    free(up);
}
