// The CLIP vision tower (inference): patch embedding as im2col + GEMM, positional embedding at the input grid,
// pre-norm blocks over the whole batch's tokens at once (each GEMM has B*T rows), the CLIP-VV path beside the
// original one, intermediate layers and stage features out, post-LN class token through the projection.
#include "model/clip_model.h"
#include "model/ops.h"
#include "model/ops_infer.h"
#include "model/task_pool.h"
#include "common/error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ClipVisionRun {
    const ClipVision *v;
    int S, g, T;      // input size, patch grid, tokens (g*g + 1)
    float *pos;       // (T,W) positional embedding at grid g (owned when resized)
    const float *pos_used;
    float *mem;       // one allocation for the activations below, grown with the batch
    size_t cap;
    float *x;         // (B,T,W) the residual stream O
    float *s;         // (B,T,W) the V-V stream S
    float *ln;        // (B,T,W) LayerNorm output
    float *qkv;       // (B,T,3W)
    float *y;         // (B,T,W) attention output before out_proj
    float *h;         // (B,T,max(Wm,K)) MLP hidden; the im2col patches (K = C*p*p) before the first block
    float *pool;      // (B,W) post-LN class rows
};

// ---------------------------------------------------------------------------------------------------------------
// positional embedding at another grid (PyTorch F.interpolate, align_corners = False)

const char *clip_pos_resize_name(ClipPosResize mode) {
    return mode == CLIP_POS_BICUBIC_AA ? "bicubic-aa" : mode == CLIP_POS_BICUBIC ? "bicubic" : "bilinear";
}

// Keys' cubic convolution with A = -0.5, aten's aa_filter for antialiased bicubic (UpSampleKernel.cpp).
static double keys_cubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

// Antialiased bicubic taps as aten's _compute_indices_min_size_weights_aa (align_corners = False): scale =
// in/out, support 2 (times the scale when downsampling), the filter stretched by the scale when downsampling,
// weights divided by their sum. At most BICUBIC_AA_MAX_TAPS taps (downscales up to 7.5x).
enum { BICUBIC_AA_MAX_TAPS = 32 };
static int taps_aa(int o, int in, int out, int *idx, float *w) {
    double scale = (double)in / out, support = scale >= 1 ? 2 * scale : 2, inv = scale >= 1 ? 1 / scale : 1;
    double center = scale * (o + 0.5);
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    int n = hi - lo < BICUBIC_AA_MAX_TAPS ? hi - lo : BICUBIC_AA_MAX_TAPS;
    double ws[BICUBIC_AA_MAX_TAPS], total = 0;
    for (int j = 0; j < n; j++) total += ws[j] = keys_cubic((j + lo - center + 0.5) * inv);
    for (int j = 0; j < n; j++) idx[j] = lo + j, w[j] = (float)(total != 0 ? ws[j] / total : ws[j]);
    return n;
}

// Source taps of output index o: bilinear gives 2 (clamped at the border), bicubic 4 (A = -0.75, indices
// clamped), as aten's upsample_bilinear2d / upsample_bicubic2d; bicubic-aa as taps_aa.
static int taps(int o, int in, int out, ClipPosResize mode, int *idx, float *w) {
    if (mode == CLIP_POS_BICUBIC_AA) return taps_aa(o, in, out, idx, w);
    float scale = (float)in / (float)out;
    float src = scale * (o + 0.5f) - 0.5f;
    if (mode == CLIP_POS_BILINEAR) {
        if (src < 0) src = 0;
        int i0 = (int)src, i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        float t = src - i0;
        idx[0] = i0, idx[1] = i1, w[0] = 1 - t, w[1] = t;
        return 2;
    }
    const float A = -0.75f;
    int i0 = (int)floorf(src);
    float t = src - i0;
    float x1 = t + 1, x2 = 1 - t, x3 = 2 - t;
    w[0] = ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A;
    w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    w[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
    w[3] = ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A;
    for (int j = 0; j < 4; j++) {
        int i = i0 - 1 + j;
        idx[j] = i < 0 ? 0 : i >= in ? in - 1 : i;
    }
    return 4;
}

void clip_resize_positions(float *pos_out, const float *pos, int grid_in, int grid_out, int W, ClipPosResize mode) {
    memcpy(pos_out, pos, sizeof(float) * W);  // the class position is kept
    #pragma omp parallel for
    for (int oy = 0; oy < grid_out; oy++) {
        int iy[BICUBIC_AA_MAX_TAPS], ix[BICUBIC_AA_MAX_TAPS];
        float wy[BICUBIC_AA_MAX_TAPS], wx[BICUBIC_AA_MAX_TAPS];
        int ny = taps(oy, grid_in, grid_out, mode, iy, wy);
        for (int ox = 0; ox < grid_out; ox++) {
            int nx = taps(ox, grid_in, grid_out, mode, ix, wx);
            float *o = pos_out + (size_t)(1 + oy * grid_out + ox) * W;
            memset(o, 0, sizeof(float) * W);
            for (int a = 0; a < ny; a++)
                for (int b = 0; b < nx; b++) {
                    const float *p = pos + (size_t)(1 + iy[a] * grid_in + ix[b]) * W;
                    float wt = wy[a] * wx[b];
                    for (int c = 0; c < W; c++) o[c] += wt * p[c];
                }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------

ClipVisionRun *clip_vision_run_new(const ClipVision *v, int image_size, ClipPosResize mode) {
    if (image_size < v->patch_size) {
        err_set("vision tower: input size %d is smaller than the patch size %d", image_size, v->patch_size);
        return NULL;
    }
    ClipVisionRun *r = calloc(1, sizeof *r);
    if (!r) { err_set("vision tower: out of memory"); return NULL; }
    r->v = v;
    r->S = image_size;
    r->g = image_size / v->patch_size;
    r->T = r->g * r->g + 1;
    r->pos_used = v->position_embedding;
    if (r->g != v->grid) {
        r->pos = malloc(sizeof(float) * r->T * v->shape.width);
        if (!r->pos) { free(r); err_set("vision tower: out of memory"); return NULL; }
        clip_resize_positions(r->pos, v->position_embedding, v->grid, r->g, v->shape.width, mode);
        r->pos_used = r->pos;
    }
    return r;
}

void clip_vision_run_free(ClipVisionRun *r) {
    if (!r) return;
    free(r->pos);
    free(r->mem);
    free(r);
}

int clip_vision_tokens(const ClipVisionRun *r) { return r->T; }

static int vision_layout(ClipVisionRun *r, int B) {
    const ClipVision *v = r->v;
    size_t N = (size_t)B * r->T, W = v->shape.width, K = (size_t)v->channels * v->patch_size * v->patch_size;
    size_t Hw = (size_t)v->shape.mlp > K ? (size_t)v->shape.mlp : K;
    size_t sizes[] = {N * W, N * W, N * W, N * 3 * W, N * W, N * Hw, (size_t)B * W};
    float **ptrs[] = {&r->x, &r->s, &r->ln, &r->qkv, &r->y, &r->h, &r->pool};
    size_t total = 0;
    for (int i = 0; i < 7; i++) total += sizes[i];
    if (total > r->cap) {
        free(r->mem);
        r->mem = malloc(sizeof(float) * total);
        r->cap = r->mem ? total : 0;
        if (!r->mem) return err_set("vision tower: out of memory for activations (batch %d, %d tokens)", B, r->T);
    }
    float *p = r->mem;
    for (int i = 0; i < 7; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    return 0;
}

typedef struct {
    ClipVisionRun *r;
    const float *pixels;
} EmbedJob;

// cols (T,K) of image b: row 0 zero (the class slot), row 1 + gy*g + gx the patch (c, ky, kx) flattened.
static void im2col_task(void *ctx, int b) {
    const EmbedJob *j = ctx;
    const ClipVision *v = j->r->v;
    int C = v->channels, p = v->patch_size, g = j->r->g, S = j->r->S, K = C * p * p, T = j->r->T;
    float *cols = j->r->h + (size_t)b * T * K;
    memset(cols, 0, sizeof(float) * K);
    for (int gy = 0; gy < g; gy++)
        for (int gx = 0; gx < g; gx++) {
            float *col = cols + (size_t)(1 + gy * g + gx) * K;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < p; ky++)
                    memcpy(col + (c * p + ky) * p, j->pixels + (((size_t)b * C + c) * S + gy * p + ky) * S + gx * p,
                           sizeof(float) * p);
        }
}

// x (T,W) of image b: the class embedding in row 0, then the positions added to every row.
static void positions_task(void *ctx, int b) {
    const EmbedJob *j = ctx;
    const ClipVision *v = j->r->v;
    int W = v->shape.width, T = j->r->T;
    float *x = j->r->x + (size_t)b * T * W;
    memcpy(x, v->class_embedding, sizeof(float) * W);
    for (size_t i = 0; i < (size_t)T * W; i++) x[i] += j->r->pos_used[i];
}

static int in_range(const int *layers, int n, int L, const char *what) {
    for (int i = 0; i < n; i++)
        if (layers[i] < 0 || layers[i] > L)
            return err_set("vision tower: %s layer %d outside 0..%d", what, layers[i], L);
    return 0;
}

// Copies/projects the outputs asked for at layer l (the streams hold O_l in x and, when vv is live, S_l in s).
static void record(ClipVisionRun *r, const ClipVisionOut *out, int l, int B, int vv_live) {
    const ClipVision *v = r->v;
    size_t n = (size_t)B * r->T * v->shape.width;
    const float *S = vv_live ? r->s : r->x;
    for (int i = 0; i < out->n_hidden; i++)
        if (out->hidden_layers[i] == l) memcpy(out->hidden[i], r->x, sizeof(float) * n);
    for (int i = 0; i < out->n_vv; i++)
        if (out->vv_layers[i] == l) memcpy(out->vv[i], S, sizeof(float) * n);
    for (int i = 0; i < out->n_stages; i++) {
        if (out->stage_layers[i] != l) continue;
        int N = B * r->T;
        layernorm_rows_forward(r->ln, NULL, NULL, S, v->post_ln_w, v->post_ln_b, N, v->shape.width,
                               v->shape.ln_eps);
        linear_forward(out->stages[i], v->proj_dim, r->ln, v->shape.width, v->projection, NULL, N, v->shape.width,
                       v->proj_dim, LINEAR_STORE);
    }
}

int clip_vision_forward(ClipVisionRun *r, const float *pixels, int B, const ClipVisionOut *out) {
    const ClipVision *v = r->v;
    const TowerShape *sh = &v->shape;
    int W = sh->width, Wm = sh->mlp, H = sh->heads, hd = W / H, L = sh->layers, T = r->T, N = B * T;
    int p = v->patch_size, K = v->channels * p * p, act = sh->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    if (B <= 0) return err_set("vision tower: batch of %d images", B);
    if (out->vv_from < 0 || out->vv_from > L)
        return err_set("vision tower: V-V path from layer %d, outside 1..%d", out->vv_from, L);
    if (in_range(out->hidden_layers, out->n_hidden, L, "hidden") < 0 ||
        in_range(out->vv_layers, out->n_vv, L, "V-V") < 0 || in_range(out->stage_layers, out->n_stages, L, "stage") < 0)
        return -1;
    int last = out->image_embeds || out->image_embeds_noln ? L : 0;  // run only as deep as the outputs need
    for (int i = 0; i < out->n_hidden; i++) last = out->hidden_layers[i] > last ? out->hidden_layers[i] : last;
    for (int i = 0; i < out->n_vv; i++) last = out->vv_layers[i] > last ? out->vv_layers[i] : last;
    for (int i = 0; i < out->n_stages; i++) last = out->stage_layers[i] > last ? out->stage_layers[i] : last;
    if (vision_layout(r, B) < 0) return -1;

    // O_0 = LN_pre([class; patches · Wpatchᵀ] + positions)
    EmbedJob ej = {r, pixels};
    task_pool_run(B, im2col_task, &ej);
    linear_forward_packed(r->x, W, r->h, K, v->patch_weight, v->patch_p, NULL, N, K, W, LINEAR_STORE);
    task_pool_run(B, positions_task, &ej);
    layernorm_rows_forward(r->x, NULL, NULL, r->x, v->pre_ln_w, v->pre_ln_b, N, W, sh->ln_eps);
    record(r, out, 0, B, 0);

    for (int l = 1; l <= last; l++) {
        const ClipBlock *k = &v->blocks[l - 1];
        int vv_live = out->vv_from && l >= out->vv_from;
        layernorm_rows_forward(r->ln, NULL, NULL, r->x, k->ln1_w, k->ln1_b, N, W, sh->ln_eps);
        linear_forward_packed(r->qkv, 3 * W, r->ln, W, k->qkv_w, k->qkv_p, k->qkv_b, N, W, 3 * W, LINEAR_STORE);
        const float *q = r->qkv, *kk = r->qkv + W, *vv = r->qkv + 2 * W;
        if (vv_live) {  // S_l = S_{l-1} + out_proj(MHA(V, V, V)), S_{vv_from-1} = O_{vv_from-1}
            if (l == out->vv_from) memcpy(r->s, r->x, sizeof(float) * N * W);
            attention_infer_forward(r->y, vv, vv, vv, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
            linear_forward_packed(r->s, W, r->y, W, k->out_w, k->out_p, k->out_b, N, W, W, LINEAR_ACCUM);
        }
        attention_infer_forward(r->y, q, kk, vv, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
        linear_forward_packed(r->x, W, r->y, W, k->out_w, k->out_p, k->out_b, N, W, W, LINEAR_ACCUM);
        layernorm_rows_forward(r->ln, NULL, NULL, r->x, k->ln2_w, k->ln2_b, N, W, sh->ln_eps);
        linear_forward_packed(r->h, Wm, r->ln, W, k->fc1_w, k->fc1_p, k->fc1_b, N, W, Wm,
                              act == 2 ? LINEAR_GELU : LINEAR_QUICKGELU);
        linear_forward_packed(r->x, W, r->h, Wm, k->fc2_w, k->fc2_p, k->fc2_b, N, Wm, W, LINEAR_ACCUM);
        record(r, out, l, B, vv_live);
    }

    if (out->image_embeds) {
        for (int b = 0; b < B; b++)
            layernorm_forward(r->pool + (size_t)b * W, NULL, NULL, r->x + (size_t)b * T * W, v->post_ln_w,
                              v->post_ln_b, 1, W, sh->ln_eps);
        matmul_forward(out->image_embeds, r->pool, v->projection, NULL, B, W, v->proj_dim);
    }
    if (out->image_embeds_noln) {
        for (int b = 0; b < B; b++) memcpy(r->pool + (size_t)b * W, r->x + (size_t)b * T * W, sizeof(float) * W);
        matmul_forward(out->image_embeds_noln, r->pool, v->projection, NULL, B, W, v->proj_dim);
    }
    return 0;
}

ClipVisionOut clip_vision_stage_out(int vv_from, int n_stages, const int *stage_layers, float **stages, float *global,
                                    int global_ln_post) {
    ClipVisionOut out = {.vv_from = vv_from, .n_stages = n_stages, .stage_layers = stage_layers, .stages = stages};
    if (global_ln_post) out.image_embeds = global;
    else out.image_embeds_noln = global;
    return out;
}

int clip_vision_stage_features(ClipVisionRun *r, const float *pixels, int B, int vv_from, int n_stages,
                               const int *stage_layers, float **stages, float *global, int global_ln_post) {
    ClipVisionOut out = clip_vision_stage_out(vv_from, n_stages, stage_layers, stages, global, global_ln_post);
    return clip_vision_forward(r, pixels, B, &out);
}
