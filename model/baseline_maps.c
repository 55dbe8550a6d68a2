// Scores and maps of the baselines from features: 2-way softmax over cosine similarities, the two orders of
// softmax and upsampling (docs/reference/zsad-anchors.md §0 item 3), WinCLIP's windows and harmonic aggregation (§1.6).
#include "model/baselines.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// logits (n,2) = scale · cos(feat_i, text_c).
static void cos_logits(float *logits, const float *feat, int n, int ld, int P, const float *text, float scale) {
    double tn[2];
    for (int c = 0; c < 2; c++) {
        double s = 0;
        for (int p = 0; p < P; p++) s += (double)text[c * P + p] * text[c * P + p];
        tn[c] = fmax(sqrt(s), 1e-12);
    }
    #pragma omp parallel for
    for (int i = 0; i < n; i++) {
        const float *f = feat + (size_t)i * ld;
        double ff = 0, d0 = 0, d1 = 0;
        for (int p = 0; p < P; p++) {
            ff += (double)f[p] * f[p];
            d0 += (double)f[p] * text[p];
            d1 += (double)f[p] * text[P + p];
        }
        double fn = fmax(sqrt(ff), 1e-12);
        logits[2 * i] = (float)(scale * d0 / (fn * tn[0]));
        logits[2 * i + 1] = (float)(scale * d1 / (fn * tn[1]));
    }
}

// softmax([a, b])[1] = σ(b − a)
static inline float p_second(float a, float b) { return sigmoid_f(b - a); }

void baseline_class_scores(float *out, const float *feat, int n, int ld, int P, const float *text, float scale) {
    float *lg = malloc(sizeof(float) * 2 * n);
    cos_logits(lg, feat, n, ld, P, text, scale);
    for (int i = 0; i < n; i++) out[i] = p_second(lg[2 * i], lg[2 * i + 1]);
    free(lg);
}

void baseline_patch_map_add(float *map, const float *tokens, int B, int g, int ld, int P, const float *text,
                            float scale, int softmax_first, int align_corners, int S) {
    int N = g * g;
    size_t SS = (size_t)S * S;
    float *lg = malloc(sizeof(float) * 2 * B * N);      // (B,N,2)
    float *grid = malloc(sizeof(float) * 2 * B * N);    // (2,B,g,g) channel planes
    float *up = malloc(sizeof(float) * 2 * B * SS);     // (2,B,S,S)
    cos_logits(lg, tokens, B * N, ld, P, text, scale);
    if (softmax_first) {
        for (int i = 0; i < B * N; i++) grid[i] = p_second(lg[2 * i], lg[2 * i + 1]);
        upsample_bilinear_forward(up, grid, B, g, g, S, S, align_corners);
        for (size_t i = 0; i < (size_t)B * SS; i++) map[i] += up[i];
    } else {
        for (int i = 0; i < B * N; i++) { grid[i] = lg[2 * i]; grid[B * N + i] = lg[2 * i + 1]; }
        upsample_bilinear_forward(up, grid, 2 * B, g, g, S, S, align_corners);
        for (size_t i = 0; i < (size_t)B * SS; i++) map[i] += p_second(up[i], up[(size_t)B * SS + i]);
    }
    free(lg);
    free(grid);
    free(up);
}

int winclip_window_count(int g, int k) { return k > g || k < 1 ? 0 : (g - k + 1) * (g - k + 1); }

void winclip_make_masks(int *idx, int g, int k) {
    int n = g - k + 1, w = 0;
    for (int wy = 0; wy < n; wy++)
        for (int wx = 0; wx < n; wx++, w++)
            for (int dy = 0; dy < k; dy++)
                for (int dx = 0; dx < k; dx++) idx[(size_t)w * k * k + dy * k + dx] = (wy + dy) * g + wx + dx;
}

void winclip_harmonic(float *out, const float *scores, const int *idx, int nw, int k, int g, int B) {
    int N = g * g, k2 = k * k;
    double *inv = calloc((size_t)B * N, sizeof(double));
    int *cnt = calloc(N, sizeof(int));
    for (int w = 0; w < nw; w++)
        for (int j = 0; j < k2; j++) cnt[idx[(size_t)w * k2 + j]]++;
    for (int b = 0; b < B; b++)
        for (int w = 0; w < nw; w++)
            for (int j = 0; j < k2; j++) inv[(size_t)b * N + idx[(size_t)w * k2 + j]] += 1.0 / scores[(size_t)b * nw + w];
    for (int b = 0; b < B; b++)
        for (int u = 0; u < N; u++) {
            double v = cnt[u] / inv[(size_t)b * N + u];
            out[(size_t)b * N + u] = isfinite(v) ? (float)v : 0.0f;  // anomalib: nan_to_num(posinf=0)
        }
    free(inv);
    free(cnt);
}

void winclip_combine(float *out, const float *img, const float *const *scale_maps, int n_scales, int B, int n) {
    for (int b = 0; b < B; b++)
        for (int u = 0; u < n; u++) {
            double s = 1.0 / img[b];
            for (int k = 0; k < n_scales; k++) s += 1.0 / scale_maps[k][(size_t)b * n + u];
            out[(size_t)b * n + u] = (float)((n_scales + 1) / s);
        }
}
