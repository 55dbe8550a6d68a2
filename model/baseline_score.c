// Image scores and pixel maps of each baseline from its features (docs/reference/zsad-anchors.md §1.1, §1.2, §1.6, §1.7;
// MVFA-AD's in baseline_mvfa.c).
#include "model/baseline_internal.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

// APRIL-GAN: out (B*N, P) = patch rows of hidden (B,T,Wv) (class row dropped) through layer i's linear map;
// rows (B*N, Wv) receives the gathered patch rows.
void baseline_aprilgan_linear(const Baseline *b, int i, const float *hidden, int B, float *rows, float *out) {
    int N = b->T - 1, Wv = b->Wv, P = b->P;
    for (int k = 0; k < B; k++)
        memcpy(rows + (size_t)k * N * Wv, hidden + ((size_t)k * b->T + 1) * Wv, sizeof(float) * N * Wv);
    const float *w = b->params + (size_t)i * (P * Wv + P);
    matmul_forward(out, rows, w, w + (size_t)P * Wv, B * N, Wv, P);
}

// WinCLIP: grid (B, g*g) = harmonic mean over the scales' aggregated window scores and the image score.
static int winclip_grid(Baseline *b, const BaselineFeatures *f, const float *text, const float *img, float *grid) {
    const BaselineConfig *c = &b->cfg;
    int B = f->B, g = b->g, N = g * g, rc = -1;
    float *maps[BL_MAX_SCALES] = {0};
    for (int s = 0; s < c->n_scales; s++) {
        int k = c->scales[s], nw = winclip_window_count(g, k);
        int *idx = malloc(sizeof(int) * nw * k * k);
        float *sc = malloc(sizeof(float) * B * nw);
        maps[s] = malloc(sizeof(float) * B * N);
        if (!idx || !sc || !maps[s]) { free(idx); free(sc); err_set("winclip: out of memory"); goto done; }
        winclip_make_masks(idx, g, k);
        baseline_class_scores(sc, f->blocks[s], B * nw, b->P, b->P, text, c->logit_scale);
        winclip_harmonic(maps[s], sc, idx, nw, k, g, B);
        free(idx);
        free(sc);
    }
    winclip_combine(grid, img, (const float *const *)maps, c->n_scales, B, N);
    rc = 0;
done:
    for (int s = 0; s < BL_MAX_SCALES; s++) free(maps[s]);
    return rc;
}

int baseline_score_features(Baseline *b, const char *class_name, const BaselineFeatures *f, float *scores,
                            float *maps) {
    const BaselineConfig *c = &b->cfg;
    int P = b->P, g = b->g, S = b->S, N = g * g, B = f->B;
    size_t SS = (size_t)S * S;
    if (c->method == BL_MVFA) return baseline_mvfa_score(b, class_name, f, scores, maps);
    float text[2 * P];
    if (c->method == BL_ANOMALYCLIP) {
        if (baseline_anomalyclip_text(b, text) < 0) return -1;
    } else {
        const float *t = baseline_class_text(b, class_name);
        if (!t) return -1;
        memcpy(text, t, sizeof text);
    }
    baseline_class_scores(scores, f->global, B, P, P, text, c->logit_scale);
    memset(maps, 0, sizeof(float) * B * SS);
    if (c->method == BL_WINCLIP) {
        float *grid = malloc(sizeof(float) * B * N);
        if (!grid) return err_set("winclip: out of memory");
        if (winclip_grid(b, f, text, scores, grid) < 0) { free(grid); return -1; }
        upsample_bilinear_forward(maps, grid, B, g, g, S, S, c->align_corners);
        free(grid);
    } else if (c->method == BL_APRILGAN) {
        float *rows = malloc(sizeof(float) * B * N * b->Wv), *lin = malloc(sizeof(float) * B * N * P);
        if (!rows || !lin) { free(rows); free(lin); return err_set("april-gan: out of memory"); }
        for (int i = 0; i < c->n_layers; i++) {
            baseline_aprilgan_linear(b, i, f->blocks[i], B, rows, lin);
            baseline_patch_map_add(maps, lin, B, g, P, P, text, c->logit_scale, c->softmax_first, c->align_corners, S);
        }
        free(rows);
        free(lin);
    } else {
        for (int i = 0; i < c->n_layers; i++)  // the patch rows of each image: the class row skipped
            for (int k = 0; k < B; k++)
                baseline_patch_map_add(maps + k * SS, f->blocks[i] + ((size_t)k * b->T + 1) * P, 1, g, P, P, text,
                                       c->logit_scale, c->softmax_first, c->align_corners, S);
    }
    if (c->sigma > 0) gaussian_filter_forward(maps, maps, B, S, S, c->sigma, 4.0f);
    return 0;
}

int baseline_score_batch(Baseline *b, const char *class_name, const float *pixels, int B, float *scores,
                         float *maps) {
    BaselineFeatures *f = baseline_features_new(b, B);
    if (!f) return -1;
    int rc = baseline_extract(b, pixels, f);
    if (rc == 0) rc = baseline_score_features(b, class_name, f, scores, maps);
    baseline_features_free(f);
    return rc;
}
