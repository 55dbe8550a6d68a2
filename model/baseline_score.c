// Image scores and pixel maps of each baseline from its features (docs/reference/zsad-anchors.md §1.1, §1.2, §1.6,
// §1.7): CLIP, CLIP-AC, APRIL-GAN and AnomalyCLIP on the backend (the features and the text go up, the scores
// and maps come down); WinCLIP's windows on the host; MVFA-AD's in baseline_mvfa.c.
#include "model/baseline_internal.h"
#include "model/ops_extra.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

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

static int winclip_score(Baseline *b, const float *text, const BaselineFeatures *f, float *scores, float *maps) {
    const BaselineConfig *c = &b->cfg;
    int g = b->g, S = b->S, B = f->B;
    baseline_class_scores(scores, f->global, B, b->P, b->P, text, c->logit_scale);
    float *grid = malloc(sizeof(float) * B * g * g);
    if (!grid) return err_set("winclip: out of memory");
    int rc = winclip_grid(b, f, text, scores, grid);
    if (rc == 0) upsample_bilinear_forward(maps, grid, B, g, g, S, S, c->align_corners);
    free(grid);
    if (rc == 0 && c->sigma > 0) gaussian_filter_forward(maps, maps, B, S, S, c->sigma, 4.0f);
    return rc;
}

// The heads' scoring on the backend: image scores softmax(scale · cos(global, text))[1]; per map layer the
// abnormal-probability map of the patch tokens (APRIL-GAN: through the layer's linear map) by either order of
// softmax and bilinear upsampling, summed over the layers, then smoothed.
static int head_score(Baseline *b, const float *text_h, const BaselineFeatures *f, float *scores, float *maps) {
    const BaselineConfig *c = &b->cfg;
    const Backend *be = b->be;
    int P = b->P, g = b->g, N = g * g, S = b->S, B = f->B, nl = c->n_layers, aprilgan = c->method == BL_APRILGAN;
    int ld = aprilgan ? b->Wv : P;
    size_t BN = (size_t)B * N, BS = (size_t)B * S * S;
    float *rows, *glob, *gn, *tr, *tn, *glg, *gp, *lin, *un, *lg, *grid, *up, *map;
    BlSlice s[] = {
        {&rows, BN * ld}, {&glob, (size_t)B * P}, {&gn, (size_t)B * P},  // a layer's patch rows, global, unit
        {&tr, 2 * P}, {&tn, 2 * P},        // text (2,P): raw, unit
        {&glg, 2 * (size_t)B}, {&gp, B},   // (2,B) global logits, (B) the abnormal probabilities
        {&lin, aprilgan ? BN * P : 0}, {&un, BN * P},  // (B*N,P) linear map (APRIL-GAN), unit tokens
        {&lg, 2 * BN}, {&grid, BN},        // (2,B*N) logit planes, (B*N) abnormal probabilities on the grid
        {&up, 2 * BS}, {&map, BS},         // (2,B,S,S) upsampled planes, (B,S,S) the summed map
    };
    if (baseline_work(b, s, sizeof s / sizeof s[0]) < 0) return -1;
    be->set_precision(c->precision);
    be->upload(glob, f->global, (size_t)B * P);
    be->upload(tr, text_h, 2 * P);
    be->l2norm_rows_forward(tn, NULL, tr, 2, P);
    be->l2norm_rows_forward(gn, NULL, glob, B, P);
    be->gemm(0, 1, 2, B, P, c->logit_scale, tn, P, 0, gn, P, 0, 0.0f, glg, B, 0, 1);  // (2,B) = scale · tn · gnᵀ
    be->zero(gp, B);
    be->pair_prob_add(gp, glg, B);
    be->download(scores, gp, B);
    be->zero(map, BS);
    for (int i = 0; i < nl; i++) {
        const float *X = rows;
        baseline_upload_patch_rows(b, f, i, rows);
        if (aprilgan) {
            const float *w = b->params + (size_t)i * (P * ld + P);
            be->matmul_forward(lin, X, w, w + (size_t)P * ld, (int)BN, ld, P);
            X = lin;
        }
        be->l2norm_rows_forward(un, NULL, X, (int)BN, P);
        be->gemm(0, 1, 2, (int)BN, P, c->logit_scale, tn, P, 0, un, P, 0, 0.0f, lg, (int)BN, 0, 1);
        if (c->softmax_first) {  // softmax on the grid, then the abnormal plane bilinear to S
            be->zero(grid, BN);
            be->pair_prob_add(grid, lg, (int)BN);
            be->upsample_bilinear_forward(up, grid, B, g, g, S, S, c->align_corners);
            be->axpy(map, up, 1.0f, BS);
        } else {                 // both logit planes bilinear to S, then the softmax
            be->upsample_bilinear_forward(up, lg, 2 * B, g, g, S, S, c->align_corners);
            be->pair_prob_add(map, up, (int)BS);
        }
    }
    if (c->sigma > 0) be->gaussian_filter_forward(map, map, B, S, S, c->sigma, 4.0f);
    be->download(maps, map, BS);
    return be->sync();
}

int baseline_score_features(Baseline *b, const char *class_name, const BaselineFeatures *f, float *scores,
                            float *maps) {
    const BaselineConfig *c = &b->cfg;
    if (c->method == BL_MVFA) return baseline_mvfa_score(b, class_name, f, scores, maps);
    float text[2 * b->P];
    if (c->method == BL_ANOMALYCLIP) {
        if (baseline_anomalyclip_text(b, text) < 0) return -1;
    } else {
        const float *t = baseline_class_text(b, class_name);
        if (!t) return -1;
        memcpy(text, t, sizeof text);
    }
    return c->method == BL_WINCLIP ? winclip_score(b, text, f, scores, maps) : head_score(b, text, f, scores, maps);
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
