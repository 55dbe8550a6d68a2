// The vision-side features of each baseline (model/baselines.h BaselineFeatures): what the frozen tower gives,
// computed once per image so scoring and training can run from a cache.
#include "model/baseline_internal.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void baseline_feature_shape(const Baseline *b, BaselineFeatureShape *s) {
    const BaselineConfig *c = &b->cfg;
    memset(s, 0, sizeof *s);
    s->P = b->P;
    s->ld = c->method == BL_APRILGAN || c->method == BL_MVFA ? b->Wv : b->P;
    if (c->method == BL_MVFA) {  // the stream entering the first adapters; the head runs the layers after it
        s->n_blocks = 1;
        s->rows[0] = b->T;
    } else if (c->method == BL_WINCLIP) {
        s->n_blocks = c->n_scales;
        for (int i = 0; i < c->n_scales; i++) s->rows[i] = winclip_window_count(b->g, c->scales[i]);
    } else {
        s->n_blocks = c->n_layers;
        for (int i = 0; i < c->n_layers; i++) s->rows[i] = b->T;
    }
}

void baseline_features_free(BaselineFeatures *f) {
    if (!f) return;
    free(f->global);
    for (int i = 0; i < BL_MAX_LAYERS; i++) free(f->blocks[i]);
    free(f);
}

BaselineFeatures *baseline_features_new(const Baseline *b, int B) {
    BaselineFeatureShape s;
    baseline_feature_shape(b, &s);
    BaselineFeatures *f = calloc(1, sizeof *f);
    int ok = f != NULL && B > 0;
    if (ok) {
        f->B = B;
        ok = (f->global = malloc(sizeof(float) * B * s.P)) != NULL;
        for (int i = 0; i < s.n_blocks && ok; i++) ok = (f->blocks[i] = malloc(sizeof(float) * B * s.rows[i] * s.ld)) != NULL;
    }
    if (!ok) {
        baseline_features_free(f);
        err_set(B > 0 ? "baseline features: out of memory (batch %d)" : "baseline features: batch of %d images", B);
        return NULL;
    }
    return f;
}

static int winclip_extract(Baseline *b, const float *pixels, BaselineFeatures *f) {
    const BaselineConfig *c = &b->cfg;
    int B = f->B, g = b->g;
    float *emb = malloc(sizeof(float) * B * b->T * b->Wv);
    if (!emb) return err_set("winclip: out of memory");
    int rc = clip_vision_embed(&b->m->vision, b->pos, g, pixels, B, b->S, emb);
    for (int s = 0; s < c->n_scales && rc == 0; s++) {
        int k = c->scales[s], nw = winclip_window_count(g, k);
        int *idx = malloc(sizeof(int) * nw * k * k);
        if (!idx) { rc = err_set("winclip: out of memory"); break; }
        winclip_make_masks(idx, g, k);
        rc = clip_vision_window_embeds(&b->m->vision, emb, B, b->T, idx, nw, k * k, f->blocks[s]);
        free(idx);
    }
    free(emb);
    return rc;
}

int baseline_extract(Baseline *b, const float *pixels, BaselineFeatures *f) {
    const BaselineConfig *c = &b->cfg;
    ClipVisionOut out = {0};
    if (c->global_ln_post) out.image_embeds = f->global;
    else out.image_embeds_noln = f->global;
    int layers[BL_MAX_LAYERS], n = c->n_layers;
    memcpy(layers, b->layers, sizeof layers);
    switch (c->method) {
    case BL_CLIP: case BL_CLIP_AC:
        out.n_stages = n, out.stage_layers = layers, out.stages = f->blocks;
        break;
    case BL_APRILGAN:  // the residual stream itself: no post-LN, no projection (open_clip out_tokens)
        out.n_hidden = n, out.hidden_layers = layers, out.hidden = f->blocks;
        break;
    case BL_ANOMALYCLIP:
        out.vv_from = c->vv_from;
        if (c->aliased_layers)  // historical (issues #18, #64): see BaselineConfig.aliased_layers
            for (int i = 0; i < n; i++)
                if (c->vv_from > 0 && layers[i] >= c->vv_from - 1) layers[i] = b->L;
        out.n_stages = n, out.stage_layers = layers, out.stages = f->blocks;
        break;
    case BL_MVFA:  // the raw stream after the first map layer; no global feature (it reads none)
        out = (ClipVisionOut){.n_hidden = 1, .hidden_layers = layers, .hidden = f->blocks};
        memset(f->global, 0, sizeof(float) * f->B * b->P);
        break;
    case BL_WINCLIP: case BL_N_METHODS: break;
    }
    if (vision_tower_forward(b->vtower, pixels, f->B, &out) < 0) return -1;
    return c->method == BL_WINCLIP ? winclip_extract(b, pixels, f) : 0;
}
