// WinCLIP's scoring on the host (docs/reference/zsad-anchors.md §1.6): 2-way softmax over cosine similarities of
// its window embeddings, the windows and the harmonic aggregation. (The other heads score on the backend,
// model/baseline_score.c.)
#include "model/baseline_internal.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

#include <math.h>
#include <stdlib.h>

void baseline_cos_logits(float *logits, const float *feat, int n, int ld, int P, const float *text, float scale) {
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

void baseline_class_scores(float *out, const float *feat, int n, int ld, int P, const float *text, float scale) {
    float *lg = malloc(sizeof(float) * 2 * n);
    baseline_cos_logits(lg, feat, n, ld, P, text, scale);
    for (int i = 0; i < n; i++) out[i] = baseline_p_second(lg[2 * i], lg[2 * i + 1]);
    free(lg);
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
