// The CLIP text tower on a CUDA device (see model/cuda/clip_cuda.h): model/clip_text.c step for step, forward
// from input embeddings and the backward to them (frozen weights: dinp = dout · W only).
#include "model/cuda/clip_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/error.h"
}
#include "model/cuda/clip_cuda_internal.h"
#include "model/cuda/ops_cuda.h"

struct ClipTextCuda {
    const ClipText *t;
    int keep;
    float *weights;
    ClipBlock *blocks;
    const float *pos, *final_ln_w, *final_ln_b, *proj;  // (ctx,W), (W), (W), (P,W)
    float *act;
    size_t act_cap;
    int B, T, Te;
    size_t res_stride, stat_stride, qkv_stride, att_stride, pre_stride;
    float *res, *mid, *mean1, *rstd1, *mean2, *rstd2, *qkv, *att, *pre;  // as model/clip_text.c, device side
    float *ln, *y, *h, *fmean, *frstd, *pooled_in, *pooled, *emb;
    float *dres, *dqkv, *datt, *dpool, *dpx, *dtext;                    // backward scratch
    int *eot;                                                            // (B) device
    float *host_emb;                                                     // (B,Te,W) host scratch
    int *host_eot;                                                       // (B)
    size_t host_emb_cap;
    int host_eot_cap;
};

ClipTextCuda *clip_text_cuda_new(const ClipText *t, int keep_for_backward) {
    if (cuda_ops_init()) return NULL;
    ClipTextCuda *r = (ClipTextCuda *)calloc(1, sizeof *r);
    if (!r || !(r->blocks = (ClipBlock *)calloc(t->shape.layers, sizeof(ClipBlock)))) {
        free(r);
        err_set("text tower (cuda): out of memory");
        return NULL;
    }
    r->t = t;
    r->keep = keep_for_backward;
    int W = t->shape.width;
    DevArena a = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !(a.base = r->weights = cuda_alloc_floats(a.used))) break;
        a.used = 0;
        r->pos = arena_put(&a, t->position_embedding, (size_t)t->context_length * W);
        r->final_ln_w = arena_put(&a, t->final_ln_w, W);
        r->final_ln_b = arena_put(&a, t->final_ln_b, W);
        r->proj = arena_put(&a, t->projection, (size_t)t->proj_dim * W);
        arena_put_blocks(&a, r->blocks, t->blocks, t->shape.layers, W, t->shape.mlp);
    }
    if (!r->weights || cuda_ops_sync()) {
        err_wrap("text tower (cuda): uploading weights: ");
        clip_text_cuda_free(r);
        return NULL;
    }
    return r;
}

void clip_text_cuda_free(ClipTextCuda *r) {
    if (!r) return;
    cuda_ops_sync();
    cuda_free(r->weights);
    cuda_free(r->act);
    free(r->blocks);
    free(r->host_emb);
    free(r->host_eot);
    free(r);
}

static int text_layout(ClipTextCuda *r, int B, int Te) {
    const TowerShape *s = &r->t->shape;
    size_t N = (size_t)B * Te, W = s->width, Wm = s->mlp, H = s->heads, L = s->layers, P = r->t->proj_dim;
    r->res_stride = r->keep ? N * W : 0;
    r->stat_stride = r->keep ? N : 0;
    r->qkv_stride = r->keep ? N * 3 * W : 0;
    r->att_stride = r->keep ? (size_t)B * H * Te * Te : 0;
    r->pre_stride = r->keep ? N * Wm : 0;
    size_t nl = r->keep ? L : 1, att1 = (size_t)B * H * Te * Te;
    size_t sizes[] = {
        (r->keep ? L + 1 : 1) * N * W, r->keep ? L * N * W : 0,  // res mid
        nl * N, nl * N, nl * N, nl * N,                           // mean1 rstd1 mean2 rstd2
        nl * N * 3 * W, nl * att1, r->keep ? L * N * Wm : 0,       // qkv att pre
        N * W, N * W, N * Wm, (size_t)B, (size_t)B, (size_t)B * W, (size_t)B * W, N * W,  // ln y h fmean frstd
                                                                   // pooled_in pooled emb
        r->keep ? N * W : 0, r->keep ? N * 3 * W : 0, r->keep ? att1 : 0,  // dres dqkv datt
        (size_t)B * W, (size_t)B * W, (size_t)B * P, (size_t)B,    // dpool dpx dtext eot
    };
    float **ptrs[] = {&r->res, &r->mid, &r->mean1, &r->rstd1, &r->mean2, &r->rstd2, &r->qkv, &r->att, &r->pre,
                      &r->ln, &r->y, &r->h, &r->fmean, &r->frstd, &r->pooled_in, &r->pooled, &r->emb,
                      &r->dres, &r->dqkv, &r->datt, &r->dpool, &r->dpx, &r->dtext, (float **)&r->eot};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < NS; i++) total += (sizes[i] + 63) & ~(size_t)63;
    if (total > r->act_cap) {
        cuda_free(r->act);
        r->act_cap = 0;
        if (!(r->act = cuda_alloc_floats(total)))
            return err_wrap("text tower (cuda): activations for %d texts of %d positions: ", B, Te);
        r->act_cap = total;
    }
    if (N * W > r->host_emb_cap) {
        free(r->host_emb);
        r->host_emb_cap = (r->host_emb = (float *)malloc(sizeof(float) * N * W)) ? N * W : 0;
    }
    if (B > r->host_eot_cap) {
        free(r->host_eot);
        r->host_eot_cap = (r->host_eot = (int *)malloc(sizeof(int) * B)) ? B : 0;
    }
    if (!r->host_emb || !r->host_eot) return err_set("text tower (cuda): out of memory");
    float *p = r->act;
    for (int i = 0; i < NS; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 63) & ~(size_t)63;
    }
    if (!r->keep) r->mid = r->res;
    return 0;
}

int clip_text_cuda_forward(ClipTextCuda *r, const float *embeds, const int *eot, int B, int T, float *text_embeds) {
    const ClipText *t = r->t;
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim;
    if (B <= 0 || T <= 0 || T > t->context_length)
        return err_set("text tower (cuda): %d texts of %d positions (the context is %d)", B, T, t->context_length);
    int Te = 0;
    for (int b = 0; b < B; b++) {
        if (eot[b] < 0 || eot[b] >= T)
            return err_set("text tower (cuda): text %d pools at position %d, outside 0..%d", b, eot[b], T - 1);
        if (eot[b] + 1 > Te) Te = eot[b] + 1;
    }
    if (text_layout(r, B, Te) < 0) return -1;
    r->B = B;
    r->T = T;
    r->Te = Te;
    int N = B * Te, act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);

    // res[0] (B,Te,W) = embeds + positions, the first Te positions of each text
    for (int b = 0; b < B; b++)
        memcpy(r->host_emb + (size_t)b * Te * W, embeds + (size_t)b * T * W, sizeof(float) * Te * W);
    memcpy(r->host_eot, eot, sizeof(int) * B);
    cuda_upload(r->res, r->host_emb, (size_t)N * W);
    cuda_upload_bytes(r->eot, r->host_eot, sizeof(int) * B);
    add_positions_cuda(r->res, r->pos, B, Te, W);

    for (int l = 0; l < s->layers; l++) {
        const ClipBlock *k = &r->blocks[l];
        float *x_in = r->res + r->res_stride * l, *x_mid = r->keep ? r->mid + r->res_stride * l : x_in;
        float *x_out = r->res + r->res_stride * (l + 1);
        float *qkv = r->qkv + r->qkv_stride * l;
        layernorm_forward_cuda(r->ln, r->mean1 + r->stat_stride * l, r->rstd1 + r->stat_stride * l, x_in, k->ln1_w,
                               k->ln1_b, N, W, s->ln_eps);
        matmul_forward_cuda(qkv, r->ln, k->qkv_w, k->qkv_b, N, W, 3 * W);
        if (r->keep)
            attention_forward_cuda(r->y, r->att + r->att_stride * l, qkv, qkv + W, qkv + 2 * W, B, Te, Te, H, hd,
                                   3 * W, 3 * W, W, 1, scale);
        else
            attention_infer_forward_cuda(r->y, qkv, qkv + W, qkv + 2 * W, B, Te, Te, H, hd, 3 * W, 3 * W, W, 1,
                                         scale);
        if (x_mid != x_in) cuda_copy(x_mid, x_in, (size_t)N * W);
        residual_linear_cuda(x_mid, r->y, k->out_w, k->out_b, N, W, W);
        layernorm_forward_cuda(r->ln, r->mean2 + r->stat_stride * l, r->rstd2 + r->stat_stride * l, x_mid, k->ln2_w,
                               k->ln2_b, N, W, s->ln_eps);
        gemm_cuda(0, 1, N, Wm, W, 1.0f, r->ln, W, 0, k->fc1_w, W, 0, 0.0f, r->h, Wm, 0, 1);
        bias_act_forward_cuda(r->h, r->keep ? r->pre + r->pre_stride * l : NULL, k->fc1_b, N, Wm, act);
        if (x_out != x_mid) cuda_copy(x_out, x_mid, (size_t)N * W);
        residual_linear_cuda(x_out, r->h, k->fc2_w, k->fc2_b, N, Wm, W);
    }

    // final LN at the pooled rows only, then the projection
    const float *last = r->res + r->res_stride * s->layers;
    gather_rows_cuda(r->pooled_in, last, r->eot, B, Te, W);
    layernorm_forward_cuda(r->pooled, r->fmean, r->frstd, r->pooled_in, r->final_ln_w, r->final_ln_b, B, W, s->ln_eps);
    matmul_forward_cuda(r->dtext, r->pooled, r->proj, NULL, B, W, P);
    cuda_download(text_embeds, r->dtext, (size_t)B * P);
    if (cuda_ops_sync()) return err_wrap("text tower (cuda): forward: ");
    return 0;
}

int clip_text_cuda_backward(ClipTextCuda *r, float *dembeds, const float *dtext_embeds) {
    const ClipText *t = r->t;
    if (!r->keep || r->B == 0)
        return err_set("text tower (cuda): backward needs a forward on a run made with keep_for_backward");
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim;
    int B = r->B, T = r->T, Te = r->Te, N = B * Te, act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    float *dh = r->h, *dln = r->ln, *dy = r->y;  // the forward's scratch is free now

    // text_embeds = LN(res[L] at eot) · projᵀ
    cuda_upload(r->dtext, dtext_embeds, (size_t)B * P);
    gemm_cuda(0, 0, B, W, P, 1.0f, r->dtext, P, 0, r->proj, W, 0, 0.0f, r->dpool, W, 0, 1);
    cuda_zero(r->dpx, (size_t)B * W);
    layernorm_backward_cuda(r->dpx, NULL, NULL, r->dpool, r->pooled_in, r->final_ln_w, r->fmean, r->frstd, B, W);
    cuda_zero(r->dres, (size_t)N * W);
    scatter_add_rows_cuda(r->dres, r->dpx, r->eot, B, Te, W);

    for (int l = s->layers - 1; l >= 0; l--) {
        const ClipBlock *k = &r->blocks[l];
        const float *x_in = r->res + r->res_stride * l, *x_mid = r->mid + r->res_stride * l;
        const float *qkv = r->qkv + r->qkv_stride * l;
        // x_out = x_mid + fc2(act(fc1(LN2(x_mid))))
        gemm_cuda(0, 0, N, Wm, W, 1.0f, r->dres, W, 0, k->fc2_w, Wm, 0, 0.0f, dh, Wm, 0, 1);
        act_backward_inplace_cuda(dh, r->pre + r->pre_stride * l, (size_t)N * Wm, act);
        gemm_cuda(0, 0, N, W, Wm, 1.0f, dh, Wm, 0, k->fc1_w, W, 0, 0.0f, dln, W, 0, 1);
        layernorm_backward_cuda(r->dres, NULL, NULL, dln, x_mid, k->ln2_w, r->mean2 + r->stat_stride * l,
                                r->rstd2 + r->stat_stride * l, N, W);
        // x_mid = x_in + out_proj(attention(qkv(LN1(x_in))))
        gemm_cuda(0, 0, N, W, W, 1.0f, r->dres, W, 0, k->out_w, W, 0, 0.0f, dy, W, 0, 1);
        cuda_zero(r->dqkv, (size_t)N * 3 * W);
        attention_backward_cuda(r->dqkv, r->dqkv + W, r->dqkv + 2 * W, r->datt, dy, r->att + r->att_stride * l, qkv,
                                qkv + W, qkv + 2 * W, B, Te, Te, H, hd, 3 * W, 3 * W, W, scale);
        gemm_cuda(0, 0, N, W, 3 * W, 1.0f, r->dqkv, 3 * W, 0, k->qkv_w, W, 0, 0.0f, dln, W, 0, 1);
        layernorm_backward_cuda(r->dres, NULL, NULL, dln, x_in, k->ln1_w, r->mean1 + r->stat_stride * l,
                                r->rstd1 + r->stat_stride * l, N, W);
    }
    // res[0] = embeds + positions
    cuda_download(r->host_emb, r->dres, (size_t)N * W);
    if (cuda_ops_sync()) return err_wrap("text tower (cuda): backward: ");
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Te; i++) {
            float *d = dembeds + ((size_t)b * T + i) * W;
            const float *g = r->host_emb + ((size_t)b * Te + i) * W;
            for (int c = 0; c < W; c++) d[c] += g[c];
        }
    return 0;
}
