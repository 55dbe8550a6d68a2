// The CLIP vision tower on a CUDA device (see model/cuda/clip_cuda.h): model/clip_vision.c step for step.
#include "model/cuda/clip_cuda.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/error.h"
}
#include "model/cuda/clip_cuda_internal.h"
#include "model/cuda/ops_cuda.h"

typedef struct {
    float *dst;     // the caller's buffer
    size_t off, n;  // floats in the pinned output staging
} Pending;

struct ClipVisionCuda {
    const ClipVision *v;
    int S, g, T;
    // weights (one device allocation)
    float *weights;
    ClipBlock *blocks;                 // (layers) device pointers
    const float *cls, *patch_w, *pos;  // (W), (W,K), (T,W) positions at grid g
    const float *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b, *proj;
    // activations (one device allocation, grown with the batch)
    float *act;
    size_t act_cap;
    float *x, *s, *ln, *qkv, *y, *h, *pool, *tmp, *pixels;  // see vision_layout
    // pinned staging: pixels in, outputs out
    float *pin_in, *pin_out;
    size_t pin_in_cap, pin_out_cap, pin_out_used;
    Pending *pending;
    int n_pending, pending_cap, in_flight;
    cudaEvent_t ev[2];  // around the GPU part of the last forward
    int have_events;
    double last_ms;
};

ClipVisionCuda *clip_vision_cuda_new(const ClipVision *v, int image_size, ClipPosResize mode) {
    if (cuda_ops_init()) return NULL;
    if (image_size < v->patch_size) {
        err_set("vision tower (cuda): input size %d is smaller than the patch size %d", image_size, v->patch_size);
        return NULL;
    }
    ClipVisionCuda *r = (ClipVisionCuda *)calloc(1, sizeof *r);
    if (!r) { err_set("vision tower (cuda): out of memory"); return NULL; }
    const TowerShape *sh = &v->shape;
    int W = sh->width, K = v->channels * v->patch_size * v->patch_size;
    r->v = v;
    r->S = image_size;
    r->g = image_size / v->patch_size;
    r->T = r->g * r->g + 1;
    r->blocks = (ClipBlock *)calloc(sh->layers, sizeof(ClipBlock));
    float *pos = (float *)malloc(sizeof(float) * r->T * W);
    if (!r->blocks || !pos) { free(pos); clip_vision_cuda_free(r); err_set("vision tower (cuda): out of memory"); return NULL; }
    if (r->g != v->grid) clip_resize_positions(pos, v->position_embedding, v->grid, r->g, W, mode);
    else memcpy(pos, v->position_embedding, sizeof(float) * r->T * W);
    DevArena a = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !(a.base = r->weights = cuda_alloc_floats(a.used))) break;
        a.used = 0;
        r->cls = arena_put(&a, v->class_embedding, W);
        r->patch_w = arena_put(&a, v->patch_weight, (size_t)W * K);
        r->pos = arena_put(&a, pos, (size_t)r->T * W);
        r->pre_ln_w = arena_put(&a, v->pre_ln_w, W);
        r->pre_ln_b = arena_put(&a, v->pre_ln_b, W);
        r->post_ln_w = arena_put(&a, v->post_ln_w, W);
        r->post_ln_b = arena_put(&a, v->post_ln_b, W);
        r->proj = arena_put(&a, v->projection, (size_t)v->proj_dim * W);
        arena_put_blocks(&a, r->blocks, v->blocks, sh->layers, W, sh->mlp);
    }
    free(pos);
    r->have_events = cudaEventCreate(&r->ev[0]) == cudaSuccess && cudaEventCreate(&r->ev[1]) == cudaSuccess;
    if (!r->weights || cuda_ops_sync()) {
        err_wrap("vision tower (cuda): uploading weights: ");
        clip_vision_cuda_free(r);
        return NULL;
    }
    return r;
}

void clip_vision_cuda_free(ClipVisionCuda *r) {
    if (!r) return;
    cuda_ops_sync();
    cuda_free(r->weights);
    cuda_free(r->act);
    cuda_host_free(r->pin_in);
    cuda_host_free(r->pin_out);
    if (r->have_events) {
        cudaEventDestroy(r->ev[0]);
        cudaEventDestroy(r->ev[1]);
    }
    free(r->blocks);
    free(r->pending);
    free(r);
}

int clip_vision_cuda_tokens(const ClipVisionCuda *r) { return r->T; }

double clip_vision_flops_per_image(const ClipVision *v, int image_size) {
    const TowerShape *sh = &v->shape;
    double g = image_size / v->patch_size, T = g * g + 1, W = sh->width, I = sh->mlp;
    double K = (double)v->channels * v->patch_size * v->patch_size;
    double per_layer = 2 * T * W * (3 * W + W + 2 * I) + 4 * T * T * W;  // linears, then q kᵀ and p v
    return 2 * (T - 1) * K * W + sh->layers * per_layer + 2 * W * v->proj_dim;
}

static int vision_layout(ClipVisionCuda *r, int B) {
    const ClipVision *v = r->v;
    size_t N = (size_t)B * r->T, W = v->shape.width, K = (size_t)v->channels * v->patch_size * v->patch_size;
    size_t Hw = (size_t)v->shape.mlp > K ? (size_t)v->shape.mlp : K, P = v->proj_dim;
    size_t Tw = W > P ? W : P;
    size_t npx = (size_t)B * v->channels * r->S * r->S;
    // x s ln (B,T,W); qkv (B,T,3W); y (B,T,W); h (B,T,max(I,K)); pool (B,W); tmp (B,T,max(W,P)); pixels
    size_t sizes[] = {N * W, N * W, N * W, N * 3 * W, N * W, N * Hw, (size_t)B * W, N * Tw, npx};
    float **ptrs[] = {&r->x, &r->s, &r->ln, &r->qkv, &r->y, &r->h, &r->pool, &r->tmp, &r->pixels};
    size_t total = 0;
    for (int i = 0; i < 9; i++) total += (sizes[i] + 63) & ~(size_t)63;
    if (total > r->act_cap) {
        cuda_free(r->act);
        r->act_cap = 0;
        if (!(r->act = cuda_alloc_floats(total)))
            return err_wrap("vision tower (cuda): activations for a batch of %d: ", B);
        r->act_cap = total;
    }
    float *p = r->act;
    for (int i = 0; i < 9; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 63) & ~(size_t)63;
    }
    if (npx > r->pin_in_cap) {
        cuda_host_free(r->pin_in);
        r->pin_in_cap = 0;
        if (!(r->pin_in = (float *)cuda_host_alloc(npx * sizeof(float)))) return -1;
        r->pin_in_cap = npx;
    }
    return 0;
}

// Output floats one forward downloads.
static size_t out_floats(const ClipVisionCuda *r, const ClipVisionOut *out, int B) {
    size_t NTW = (size_t)B * r->T * r->v->shape.width, NTP = (size_t)B * r->T * r->v->proj_dim;
    size_t BP = (size_t)B * r->v->proj_dim;
    return (out->image_embeds ? BP : 0) + (out->image_embeds_noln ? BP : 0) + (size_t)out->n_hidden * NTW +
           (size_t)out->n_vv * NTW + (size_t)out->n_stages * NTP;
}

static int staging(ClipVisionCuda *r, const ClipVisionOut *out, int B) {
    size_t n = out_floats(r, out, B);
    int np = 2 + out->n_hidden + out->n_vv + out->n_stages;
    if (n > r->pin_out_cap) {
        cuda_host_free(r->pin_out);
        r->pin_out_cap = 0;
        if (!(r->pin_out = (float *)cuda_host_alloc(n * sizeof(float)))) return -1;
        r->pin_out_cap = n;
    }
    if (np > r->pending_cap) {
        free(r->pending);
        r->pending_cap = 0;
        if (!(r->pending = (Pending *)malloc(sizeof(Pending) * np))) return err_set("vision tower (cuda): out of memory");
        r->pending_cap = np;
    }
    r->pin_out_used = 0;
    r->n_pending = 0;
    return 0;
}

// Queues a download of n floats at src (device) for the caller's dst.
static void download_to(ClipVisionCuda *r, float *dst, const float *src, size_t n) {
    Pending *p = &r->pending[r->n_pending++];
    p->dst = dst;
    p->off = r->pin_out_used;
    p->n = n;
    cuda_download(r->pin_out + p->off, src, n);
    r->pin_out_used += n;
}

static int in_range(const int *layers, int n, int L, const char *what) {
    for (int i = 0; i < n; i++)
        if (layers[i] < 0 || layers[i] > L)
            return err_set("vision tower (cuda): %s layer %d outside 0..%d", what, layers[i], L);
    return 0;
}

static void record(ClipVisionCuda *r, const ClipVisionOut *out, int l, int B, int vv_live) {
    const ClipVision *v = r->v;
    int N = B * r->T, W = v->shape.width;
    size_t n = (size_t)N * W;
    const float *S = vv_live ? r->s : r->x;
    for (int i = 0; i < out->n_hidden; i++)
        if (out->hidden_layers[i] == l) download_to(r, out->hidden[i], r->x, n);
    for (int i = 0; i < out->n_vv; i++)
        if (out->vv_layers[i] == l) download_to(r, out->vv[i], S, n);
    for (int i = 0; i < out->n_stages; i++) {
        if (out->stage_layers[i] != l) continue;
        layernorm_forward_cuda(r->ln, NULL, NULL, S, r->post_ln_w, r->post_ln_b, N, W, v->shape.ln_eps);
        matmul_forward_cuda(r->tmp, r->ln, r->proj, NULL, N, W, v->proj_dim);
        download_to(r, out->stages[i], r->tmp, (size_t)N * v->proj_dim);
    }
}

int clip_vision_cuda_submit(ClipVisionCuda *r, const float *pixels, int B, const ClipVisionOut *out) {
    const ClipVision *v = r->v;
    const TowerShape *sh = &v->shape;
    int W = sh->width, Wm = sh->mlp, H = sh->heads, hd = W / H, L = sh->layers, T = r->T, N = B * T;
    int p = v->patch_size, K = v->channels * p * p, act = sh->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    if (r->in_flight) return err_set("vision tower (cuda): a batch is already in flight (call finish first)");
    if (B <= 0) return err_set("vision tower (cuda): batch of %d images", B);
    if (out->vv_from < 0 || out->vv_from > L)
        return err_set("vision tower (cuda): V-V path from layer %d, outside 1..%d", out->vv_from, L);
    if (in_range(out->hidden_layers, out->n_hidden, L, "hidden") < 0 ||
        in_range(out->vv_layers, out->n_vv, L, "V-V") < 0 || in_range(out->stage_layers, out->n_stages, L, "stage") < 0)
        return -1;
    int last = out->image_embeds || out->image_embeds_noln ? L : 0;
    for (int i = 0; i < out->n_hidden; i++) last = out->hidden_layers[i] > last ? out->hidden_layers[i] : last;
    for (int i = 0; i < out->n_vv; i++) last = out->vv_layers[i] > last ? out->vv_layers[i] : last;
    for (int i = 0; i < out->n_stages; i++) last = out->stage_layers[i] > last ? out->stage_layers[i] : last;
    if (vision_layout(r, B) < 0 || staging(r, out, B) < 0) return -1;

    size_t npx = (size_t)B * v->channels * r->S * r->S;
    memcpy(r->pin_in, pixels, sizeof(float) * npx);
    if (r->have_events) cudaEventRecord(r->ev[0], (cudaStream_t)cuda_ops_stream());
    cuda_upload(r->pixels, r->pin_in, npx);
    // O_0 = LN_pre([class; patches · Wpatchᵀ] + positions)
    im2col_patches_cuda(r->h, r->pixels, B, v->channels, r->S, p, r->g);
    gemm_cuda(0, 1, N, W, K, 1.0f, r->h, K, 0, r->patch_w, K, 0, 0.0f, r->x, W, 0, 1);
    add_class_positions_cuda(r->x, r->cls, r->pos, B, T, W);
    layernorm_forward_cuda(r->x, NULL, NULL, r->x, r->pre_ln_w, r->pre_ln_b, N, W, sh->ln_eps);
    record(r, out, 0, B, 0);

    for (int l = 1; l <= last; l++) {
        const ClipBlock *k = &r->blocks[l - 1];
        int vv_live = out->vv_from && l >= out->vv_from;
        layernorm_forward_cuda(r->ln, NULL, NULL, r->x, k->ln1_w, k->ln1_b, N, W, sh->ln_eps);
        matmul_forward_cuda(r->qkv, r->ln, k->qkv_w, k->qkv_b, N, W, 3 * W);
        const float *q = r->qkv, *kk = r->qkv + W, *vv = r->qkv + 2 * W;
        if (vv_live) {  // S_l = S_{l-1} + out_proj(MHA(V, V, V)), S_{vv_from-1} = O_{vv_from-1}
            if (l == out->vv_from) cuda_copy(r->s, r->x, (size_t)N * W);
            attention_infer_forward_cuda(r->y, vv, vv, vv, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
            residual_linear_cuda(r->s, r->y, k->out_w, k->out_b, N, W, W);
        }
        attention_infer_forward_cuda(r->y, q, kk, vv, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
        residual_linear_cuda(r->x, r->y, k->out_w, k->out_b, N, W, W);
        layernorm_forward_cuda(r->ln, NULL, NULL, r->x, k->ln2_w, k->ln2_b, N, W, sh->ln_eps);
        gemm_cuda(0, 1, N, Wm, W, 1.0f, r->ln, W, 0, k->fc1_w, W, 0, 0.0f, r->h, Wm, 0, 1);
        bias_act_forward_cuda(r->h, NULL, k->fc1_b, N, Wm, act);
        residual_linear_cuda(r->x, r->h, k->fc2_w, k->fc2_b, N, Wm, W);
        record(r, out, l, B, vv_live);
    }

    if (out->image_embeds || out->image_embeds_noln)
        cuda_copy_rows(r->pool, W, r->x, T * W, B, W);  // the class rows
    if (out->image_embeds_noln) {
        matmul_forward_cuda(r->tmp, r->pool, r->proj, NULL, B, W, v->proj_dim);
        download_to(r, out->image_embeds_noln, r->tmp, (size_t)B * v->proj_dim);
    }
    if (out->image_embeds) {
        layernorm_forward_cuda(r->pool, NULL, NULL, r->pool, r->post_ln_w, r->post_ln_b, B, W, sh->ln_eps);
        float *dst = r->tmp + (out->image_embeds_noln ? (size_t)B * v->proj_dim : 0);
        matmul_forward_cuda(dst, r->pool, r->proj, NULL, B, W, v->proj_dim);
        download_to(r, out->image_embeds, dst, (size_t)B * v->proj_dim);
    }
    if (r->have_events) cudaEventRecord(r->ev[1], (cudaStream_t)cuda_ops_stream());
    r->in_flight = 1;
    return 0;
}

int clip_vision_cuda_finish(ClipVisionCuda *r) {
    if (!r->in_flight) return err_set("vision tower (cuda): finish without a submitted batch");
    r->in_flight = 0;
    if (cuda_ops_sync()) return err_wrap("vision tower (cuda): ");
    for (int i = 0; i < r->n_pending; i++)
        memcpy(r->pending[i].dst, r->pin_out + r->pending[i].off, sizeof(float) * r->pending[i].n);
    float ms = 0.0f;
    r->last_ms = r->have_events && cudaEventElapsedTime(&ms, r->ev[0], r->ev[1]) == cudaSuccess ? ms : -1.0;
    return 0;
}

double clip_vision_cuda_last_gpu_ms(const ClipVisionCuda *r) { return r->last_ms; }

int clip_vision_cuda_forward(ClipVisionCuda *r, const float *pixels, int B, const ClipVisionOut *out) {
    if (clip_vision_cuda_submit(r, pixels, B, out)) return -1;
    return clip_vision_cuda_finish(r);
}
