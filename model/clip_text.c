// The CLIP text tower: forward from token ids or input embeddings, and the backward to the input embeddings
// only (frozen weights: every matmul backward is dinp = dout · W, no weight gradient, no stored LN outputs).
#include "model/clip_model.h"
#include "model/ops.h"
#include "model/ops_infer.h"
#include "model/task_pool.h"
#include "common/error.h"

#include "model/gemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ClipTextRun {
    const ClipText *t;
    int keep;            // keep what the backward needs, per layer
    float *mem;          // one allocation, sliced below
    size_t cap;          // floats in mem
    int *eot;            // (B) pooling positions of the last forward
    int eot_cap;
    int B, T, Te;        // last forward: batch, input length, computed length (largest eot + 1)
    // Per-layer slices (stride 0 between layers when !keep, so all layers share one buffer):
    float *res;          // (L+1, B,Te,W) residual stream entering each block; res[L] leaves the last one
    float *mid;          // (L, B,Te,W) residual stream after the attention half
    float *mean1, *rstd1, *mean2, *rstd2;  // (L, B*Te)
    float *qkv;          // (L, B,Te,3W)
    float *att;          // (L, B,H,Te,Te) attention probabilities (keep only)
    float *pre;          // (L, B,Te,Wm) MLP pre-activations (keep only)
    size_t res_stride, mid_stride, stat_stride, qkv_stride, att_stride, pre_stride;
    // Scratch shared by all layers:
    float *ln;           // (B,Te,W) LayerNorm output
    float *y;            // (B,Te,W) attention output before out_proj
    float *h;            // (B,Te,Wm) MLP hidden after the activation
    float *fmean, *frstd;  // (B) final LN statistics at the pooled rows
    float *pooled;       // (B,W) final-LN'd pooled rows
};

ClipTextRun *clip_text_run_new(const ClipText *t, int keep_for_backward) {
    ClipTextRun *r = calloc(1, sizeof *r);
    if (!r) { err_set("text tower: out of memory"); return NULL; }
    r->t = t;
    r->keep = keep_for_backward;
    return r;
}

void clip_text_run_free(ClipTextRun *r) {
    if (!r) return;
    free(r->mem);
    free(r->eot);
    free(r);
}

// Slices the activation memory for B rows of Te positions, growing it when needed.
static int text_layout(ClipTextRun *r, int B, int Te) {
    const TowerShape *s = &r->t->shape;
    size_t N = (size_t)B * Te, W = s->width, Wm = s->mlp, H = s->heads, L = s->layers;
    size_t nl = r->keep ? L : 1;  // layers that get their own slice
    r->res_stride = r->keep ? N * W : 0;
    r->mid_stride = r->keep ? N * W : 0;
    r->stat_stride = r->keep ? N : 0;
    r->qkv_stride = r->keep ? N * 3 * W : 0;
    r->att_stride = r->keep ? (size_t)B * H * Te * Te : 0;
    r->pre_stride = r->keep ? N * Wm : 0;
    size_t sizes[] = {
        (r->keep ? L + 1 : 1) * N * W,              // res
        r->keep ? L * N * W : 0,                    // mid
        nl * N, nl * N, nl * N, nl * N,             // mean1 rstd1 mean2 rstd2
        nl * N * 3 * W,                             // qkv
        r->keep ? L * B * H * Te * Te : 0,          // att
        r->keep ? L * N * Wm : 0,                    // pre
        N * W, N * W, N * Wm,                        // ln y h
        (size_t)B, (size_t)B, (size_t)B * W,        // fmean frstd pooled
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    if (total > r->cap) {
        free(r->mem);
        r->mem = malloc(sizeof(float) * total);
        r->cap = r->mem ? total : 0;
        if (!r->mem) return err_set("text tower: out of memory for activations (%zu floats, batch %d)", total, B);
    }
    float **ptrs[] = {&r->res, &r->mid, &r->mean1, &r->rstd1, &r->mean2, &r->rstd2, &r->qkv, &r->att,
                      &r->pre, &r->ln, &r->y, &r->h, &r->fmean, &r->frstd, &r->pooled};
    float *p = r->mem;
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    if (!r->keep) r->mid = r->res;  // inference updates one residual stream in place
    if (B > r->eot_cap) {
        free(r->eot);
        r->eot = malloc(sizeof(int) * B);
        r->eot_cap = r->eot ? B : 0;
        if (!r->eot) return err_set("text tower: out of memory");
    }
    return 0;
}

int clip_text_eot(const ClipText *t, const int *ids, int T) {
    if (t->eos_token_id == 2) {  // legacy configs (HF before PR #24773): argmax of the ids
        int best = 0;
        for (int i = 1; i < T; i++)
            if (ids[i] > ids[best]) best = i;
        return T > 0 ? best : -1;
    }
    for (int i = 0; i < T; i++)
        if (ids[i] == t->eos_token_id) return i;
    return -1;
}

int clip_text_token_embeddings(const ClipText *t, const int *ids, int B, int T, float *embeds) {
    int W = t->shape.width;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return err_set("text tower: token id %d (text %zu, position %zu) outside the vocabulary of %d", ids[i],
                           i / T, i % T, t->vocab_size);
        memcpy(embeds + i * W, t->token_embedding + (size_t)ids[i] * W, sizeof(float) * W);
    }
    return 0;
}

// dinp (N,C) = dout (N,OC) · weight (OC,C), overwriting dinp (the frozen-weight half of matmul_backward).
static void gemm_nn(float *dinp, const float *dout, const float *weight, int N, int C, int OC) {
    sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
}

int clip_text_forward(ClipTextRun *r, const float *embeds, const int *eot, int B, int T, float *text_embeds) {
    const ClipText *t = r->t;
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim;
    if (B <= 0 || T <= 0 || T > t->context_length)
        return err_set("text tower: %d texts of %d positions (the context is %d)", B, T, t->context_length);
    int Te = 0;
    for (int b = 0; b < B; b++) {
        if (eot[b] < 0 || eot[b] >= T)
            return err_set("text tower: text %d pools at position %d, outside 0..%d", b, eot[b], T - 1);
        if (eot[b] + 1 > Te) Te = eot[b] + 1;
    }
    if (text_layout(r, B, Te) < 0) return -1;
    r->B = B;
    r->T = T;
    r->Te = Te;
    memcpy(r->eot, eot, sizeof(int) * B);
    int N = B * Te, act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);

    // res[0] (B,Te,W) = embeds + positions, the first Te positions of each text
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Te; i++) {
            const float *e = embeds + ((size_t)b * T + i) * W, *p = t->position_embedding + (size_t)i * W;
            float *x = r->res + ((size_t)b * Te + i) * W;
            for (int c = 0; c < W; c++) x[c] = e[c] + p[c];
        }

    for (int l = 0; l < s->layers; l++) {
        const ClipBlock *k = &t->blocks[l];
        float *x_in = r->res + r->res_stride * l, *x_mid = r->mid + r->mid_stride * l;
        float *x_out = r->res + r->res_stride * (l + 1);
        float *qkv = r->qkv + r->qkv_stride * l;
        layernorm_rows_forward(r->ln, r->mean1 + r->stat_stride * l, r->rstd1 + r->stat_stride * l, x_in, k->ln1_w,
                               k->ln1_b, N, W, s->ln_eps);
        linear_forward(qkv, 3 * W, r->ln, W, k->qkv_w, k->qkv_b, N, W, 3 * W, LINEAR_STORE);
        if (r->keep)
            attention_keep_forward(r->y, r->att + r->att_stride * l, qkv, qkv + W, qkv + 2 * W, B, Te, Te, H, hd,
                                   3 * W, 3 * W, W, 1, scale);
        else
            attention_infer_forward(r->y, qkv, qkv + W, qkv + 2 * W, B, Te, Te, H, hd, 3 * W, 3 * W, W, 1, scale);
        if (x_mid != x_in) memcpy(x_mid, x_in, sizeof(float) * N * W);
        linear_forward(x_mid, W, r->y, W, k->out_w, k->out_b, N, W, W, LINEAR_ACCUM);
        layernorm_rows_forward(r->ln, r->mean2 + r->stat_stride * l, r->rstd2 + r->stat_stride * l, x_mid, k->ln2_w,
                               k->ln2_b, N, W, s->ln_eps);
        if (r->keep) {  // the MLP pre-activation is kept for the backward
            float *pre = r->pre + r->pre_stride * l;
            linear_forward(pre, Wm, r->ln, W, k->fc1_w, k->fc1_b, N, W, Wm, LINEAR_STORE);
            act_forward(r->h, pre, (size_t)N * Wm, act);
        } else {
            linear_forward(r->h, Wm, r->ln, W, k->fc1_w, k->fc1_b, N, W, Wm, act == 2 ? LINEAR_GELU : LINEAR_QUICKGELU);
        }
        if (x_out != x_mid) memcpy(x_out, x_mid, sizeof(float) * N * W);
        linear_forward(x_out, W, r->h, Wm, k->fc2_w, k->fc2_b, N, Wm, W, LINEAR_ACCUM);
    }

    // final LN at the pooled rows only, then the projection
    const float *last = r->res + r->res_stride * s->layers;
    for (int b = 0; b < B; b++)
        layernorm_forward(r->pooled + (size_t)b * W, r->fmean + b, r->frstd + b,
                          last + ((size_t)b * Te + eot[b]) * W, t->final_ln_w, t->final_ln_b, 1, W, s->ln_eps);
    matmul_forward(text_embeds, r->pooled, t->projection, NULL, B, W, P);
    return 0;
}

int clip_text_forward_ids(ClipTextRun *r, const int *ids, int B, int T, float *text_embeds) {
    const ClipText *t = r->t;
    if (B <= 0 || T <= 0 || T > t->context_length)
        return err_set("text tower: %d texts of %d tokens (the context is %d)", B, T, t->context_length);
    float *embeds = malloc(sizeof(float) * B * T * t->shape.width);
    int *eot = malloc(sizeof(int) * B);
    int rc = -1;
    if (!embeds || !eot) { err_set("text tower: out of memory"); goto done; }
    for (int b = 0; b < B; b++)
        if ((eot[b] = clip_text_eot(t, ids + (size_t)b * T, T)) < 0) {
            err_set("text tower: text %d has no end-of-text token (%d)", b, t->eos_token_id);
            goto done;
        }
    if (clip_text_token_embeddings(t, ids, B, T, embeds) < 0) goto done;
    rc = clip_text_forward(r, embeds, eot, B, T, text_embeds);
done:
    free(embeds);
    free(eot);
    return rc;
}

int clip_text_backward(ClipTextRun *r, float *dembeds, const float *dtext_embeds) {
    const ClipText *t = r->t;
    if (!r->keep || r->B == 0)
        return err_set("text tower: backward needs a forward on a run made with keep_for_backward");
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim;
    int B = r->B, T = r->T, Te = r->Te, N = B * Te, act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    // Scratch for the backward (the forward's scratch ln/y/h is free now).
    size_t n_dres = (size_t)N * W, n_dqkv = (size_t)N * 3 * W, n_datt = (size_t)B * H * Te * Te;
    float *mem = malloc(sizeof(float) * (n_dres + n_dqkv + n_datt + (size_t)B * W));
    if (!mem) return err_set("text tower: out of memory for the backward (batch %d)", B);
    float *dres = mem;              // (B,Te,W) gradient of the residual stream
    float *dqkv = dres + n_dres;    // (B,Te,3W)
    float *datt = dqkv + n_dqkv;    // (B,H,Te,Te)
    float *dpool = datt + n_datt;   // (B,W)
    float *dh = r->h, *dln = r->ln, *dy = r->y;  // (B,Te,Wm), (B,Te,W), (B,Te,W)
    memset(dres, 0, sizeof(float) * n_dres);

    // text_embeds = pooled · projᵀ; pooled = LN(res[L] at eot)
    gemm_nn(dpool, dtext_embeds, t->projection, B, W, P);
    const float *last = r->res + r->res_stride * s->layers;
    for (int b = 0; b < B; b++) {
        size_t row = ((size_t)b * Te + r->eot[b]) * W;
        layernorm_backward(dres + row, NULL, NULL, dpool + (size_t)b * W, last + row, t->final_ln_w, r->fmean + b,
                           r->frstd + b, 1, W);
    }

    for (int l = s->layers - 1; l >= 0; l--) {
        const ClipBlock *k = &t->blocks[l];
        const float *x_in = r->res + r->res_stride * l, *x_mid = r->mid + r->mid_stride * l;
        const float *qkv = r->qkv + r->qkv_stride * l;
        // x_out = x_mid + fc2(act(fc1(LN2(x_mid)))): dres flows through unchanged and into the MLP
        linear_backward_inp(dh, dres, k->fc2_w, N, Wm, W);
        act_backward_inplace(dh, r->pre + r->pre_stride * l, (size_t)N * Wm, act);
        linear_backward_inp(dln, dh, k->fc1_w, N, W, Wm);
        layernorm_rows_backward(dres, dln, x_mid, k->ln2_w, r->mean2 + r->stat_stride * l,
                                r->rstd2 + r->stat_stride * l, N, W);
        // x_mid = x_in + out_proj(attention(qkv(LN1(x_in))))
        linear_backward_inp(dy, dres, k->out_w, N, W, W);
        memset(dqkv, 0, sizeof(float) * n_dqkv);
        attention_keep_backward(dqkv, dqkv + W, dqkv + 2 * W, datt, dy, r->att + r->att_stride * l, qkv, qkv + W,
                                qkv + 2 * W, B, Te, Te, H, hd, 3 * W, 3 * W, W, scale);
        linear_backward_inp(dln, dqkv, k->qkv_w, N, W, 3 * W);
        layernorm_rows_backward(dres, dln, x_in, k->ln1_w, r->mean1 + r->stat_stride * l,
                                r->rstd1 + r->stat_stride * l, N, W);
    }
    // res[0] = embeds + positions
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Te; i++) {
            float *d = dembeds + ((size_t)b * T + i) * W;
            const float *g = dres + ((size_t)b * Te + i) * W;
            for (int c = 0; c < W; c++) d[c] += g[c];
        }
    free(mem);
    return 0;
}
