// AnomalyCLIP's text encoder with deep prompts (docs/reference/zsad-anchors.md §1.1, docs/reference/kanoclip-components.md §4.2): the frozen
// CLIP text tower where, before text layer i = 1..D-1 (0-based), the hidden states at positions 1..n are
// overwritten by learnable deep[i-1] (ResidualAttentionBlock_learnable_token). Forward keeps what the backward
// needs; the backward gives the gradients of the input embeddings and of the deep prompts (weights frozen).
// The engine's text tower has no hook between layers, so the loop is written here on the op table.
#include "model/baselines.h"
#include "model/ops.h"
#include "model/ops_infer.h"
#include "common/error.h"

#include "model/gemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct DeepTextRun {
    const ClipText *t;
    float *mem;
    size_t cap;
    int B, T, Te, n_deep, deep_len;
    int fp16;     // deep prompts through .half() (deep_text_run_set_fp16)
    int *eot;
    float *res;   // (L+1, B,Te,W) input of each layer (after the deep overwrite); res[L] the output
    float *mid;   // (L, B,Te,W) after the attention half
    float *m1, *r1, *m2, *r2;  // (L, B*Te) LayerNorm statistics
    float *qkv;   // (L, B,Te,3W)
    float *att;   // (L, B,H,Te,Te)
    float *pre;   // (L, B,Te,Wm) MLP pre-activations
    float *ln, *y, *h;  // scratch (B,Te,W), (B,Te,W), (B,Te,Wm)
    float *fm, *fr, *pooled;  // (B), (B), (B,W)
};

DeepTextRun *deep_text_run_new(const ClipText *t) {
    DeepTextRun *r = calloc(1, sizeof *r);
    if (!r) { err_set("deep text: out of memory"); return NULL; }
    r->t = t;
    return r;
}

void deep_text_run_free(DeepTextRun *r) {
    if (!r) return;
    free(r->mem);
    free(r->eot);
    free(r);
}

static int layout(DeepTextRun *r, int B, int Te) {
    const TowerShape *s = &r->t->shape;
    size_t N = (size_t)B * Te, W = s->width, Wm = s->mlp, H = s->heads, L = s->layers;
    size_t sizes[] = {(L + 1) * N * W, L * N * W, L * N, L * N, L * N, L * N, L * N * 3 * W, L * B * H * Te * Te,
                      L * N * Wm, N * W, N * W, N * Wm, (size_t)B, (size_t)B, (size_t)B * W};
    float **ptrs[] = {&r->res, &r->mid, &r->m1, &r->r1, &r->m2, &r->r2, &r->qkv, &r->att, &r->pre, &r->ln, &r->y,
                      &r->h, &r->fm, &r->fr, &r->pooled};
    size_t total = 0;
    for (int i = 0; i < 15; i++) total += sizes[i];
    if (total > r->cap) {
        free(r->mem);
        r->mem = malloc(sizeof(float) * total);
        r->cap = r->mem ? total : 0;
        if (!r->mem) return err_set("deep text: out of memory (%zu floats)", total);
    }
    float *p = r->mem;
    for (int i = 0; i < 15; i++) { *ptrs[i] = p; p += sizes[i]; }
    free(r->eot);
    r->eot = malloc(sizeof(int) * B);
    return r->eot ? 0 : err_set("deep text: out of memory");
}

void deep_text_run_set_fp16(DeepTextRun *r, int on) { r->fp16 = on != 0; }

static inline float round_fp16(float x) { return (float)(_Float16)x; }  // round to nearest even, as torch's .half()

int deep_text_forward(DeepTextRun *r, const float *embeds, const int *eot, int B, int T, const float *deep,
                      int n_deep, int deep_len, float *text_embeds) {
    const ClipText *t = r->t;
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim, L = s->layers;
    if (n_deep < 0 || n_deep >= L) return err_set("deep text: %d deep prompts for %d layers", n_deep, L);
    int Te = 0;
    for (int b = 0; b < B; b++) {
        if (eot[b] < 0 || eot[b] >= T) return err_set("deep text: text %d pools at %d, outside 0..%d", b, eot[b], T - 1);
        if (eot[b] + 1 > Te) Te = eot[b] + 1;
    }
    if (n_deep > 0 && deep_len >= Te) return err_set("deep text: deep prompts of %d tokens reach the end of text", deep_len);
    if (layout(r, B, Te) < 0) return -1;
    r->B = B, r->T = T, r->Te = Te, r->n_deep = n_deep, r->deep_len = deep_len;
    memcpy(r->eot, eot, sizeof(int) * B);
    int N = B * Te, act = s->act == ACT_GELU ? 2 : 1;
    size_t NW = (size_t)N * W;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Te; i++)
            for (int c = 0; c < W; c++)
                r->res[((size_t)b * Te + i) * W + c] = embeds[((size_t)b * T + i) * W + c] + t->position_embedding[(size_t)i * W + c];
    for (int l = 0; l < L; l++) {
        const ClipBlock *k = &t->blocks[l];
        float *x = r->res + NW * l, *mid = r->mid + NW * l, *xo = r->res + NW * (l + 1);
        float *qkv = r->qkv + NW * 3 * l;
        if (l >= 1 && l <= n_deep)  // positions 1..n of every text take this layer's prompt
            for (int b = 0; b < B; b++) {
                float *dst = x + ((size_t)b * Te + 1) * W;
                const float *src = deep + (size_t)(l - 1) * deep_len * W;
                if (r->fp16)
                    for (size_t i = 0; i < (size_t)deep_len * W; i++) dst[i] = round_fp16(src[i]);
                else memcpy(dst, src, sizeof(float) * deep_len * W);
            }
        layernorm_forward(r->ln, r->m1 + (size_t)N * l, r->r1 + (size_t)N * l, x, k->ln1_w, k->ln1_b, N, W, s->ln_eps);
        matmul_forward(qkv, r->ln, k->qkv_w, k->qkv_b, N, W, 3 * W);
        attention_forward(r->y, r->att + (size_t)B * H * Te * Te * l, qkv, qkv + W, qkv + 2 * W, B, Te, Te, H, hd,
                          3 * W, 3 * W, W, 1, scale);
        memcpy(mid, x, sizeof(float) * NW);
        add_bias_rows(mid, k->out_b, N, W);
        sgemm(CblasNoTrans, CblasTrans, N, W, W, 1.0f, r->y, W, k->out_w, W, 1.0f, mid, W);
        layernorm_forward(r->ln, r->m2 + (size_t)N * l, r->r2 + (size_t)N * l, mid, k->ln2_w, k->ln2_b, N, W, s->ln_eps);
        sgemm(CblasNoTrans, CblasTrans, N, Wm, W, 1.0f, r->ln, W, k->fc1_w, W, 0.0f, r->h, Wm);
        bias_act_forward(r->h, r->pre + (size_t)N * Wm * l, k->fc1_b, N, Wm, act);
        memcpy(xo, mid, sizeof(float) * NW);
        add_bias_rows(xo, k->fc2_b, N, W);
        sgemm(CblasNoTrans, CblasTrans, N, W, Wm, 1.0f, r->h, Wm, k->fc2_w, Wm, 1.0f, xo, W);
    }
    const float *last = r->res + NW * L;
    for (int b = 0; b < B; b++)
        layernorm_forward(r->pooled + (size_t)b * W, r->fm + b, r->fr + b, last + ((size_t)b * Te + eot[b]) * W,
                          t->final_ln_w, t->final_ln_b, 1, W, s->ln_eps);
    matmul_forward(text_embeds, r->pooled, t->projection, NULL, B, W, P);
    return 0;
}

// dinp (N,C) = dout (N,OC) · weight (OC,C)
static void gemm_nn(float *dinp, const float *dout, const float *weight, int N, int C, int OC) {
    sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
}

int deep_text_backward(DeepTextRun *r, float *dembeds, float *ddeep, const float *dtext_embeds) {
    const ClipText *t = r->t;
    if (r->B == 0) return err_set("deep text: backward without a forward");
    const TowerShape *s = &t->shape;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, P = t->proj_dim, L = s->layers;
    int B = r->B, T = r->T, Te = r->Te, N = B * Te, act = s->act == ACT_GELU ? 2 : 1, n = r->deep_len;
    size_t NW = (size_t)N * W, natt = (size_t)B * H * Te * Te;
    float scale = 1.0f / sqrtf((float)hd);
    float *mem = malloc(sizeof(float) * (NW + 3 * NW + natt + (size_t)B * W + (size_t)N * Wm));
    if (!mem) return err_set("deep text: out of memory for the backward");
    float *dres = mem, *dqkv = dres + NW, *datt = dqkv + 3 * NW, *dpool = datt + natt, *dpre = dpool + (size_t)B * W;
    memset(dres, 0, sizeof(float) * NW);
    gemm_nn(dpool, dtext_embeds, t->projection, B, W, P);
    const float *last = r->res + NW * L;
    for (int b = 0; b < B; b++) {
        size_t row = ((size_t)b * Te + r->eot[b]) * W;
        layernorm_backward(dres + row, NULL, NULL, dpool + (size_t)b * W, last + row, t->final_ln_w, r->fm + b, r->fr + b, 1, W);
    }
    for (int l = L - 1; l >= 0; l--) {
        const ClipBlock *k = &t->blocks[l];
        const float *x = r->res + NW * l, *mid = r->mid + NW * l, *qkv = r->qkv + NW * 3 * l;
        const float *pre = r->pre + (size_t)N * Wm * l;
        // xo = mid + fc2(act(fc1(LN2(mid))))
        gemm_nn(r->h, dres, k->fc2_w, N, Wm, W);
        memset(dpre, 0, sizeof(float) * N * Wm);
        if (act == 2) gelu_backward(dpre, pre, r->h, (size_t)N * Wm);
        else quickgelu_backward(dpre, pre, r->h, (size_t)N * Wm);
        gemm_nn(r->ln, dpre, k->fc1_w, N, W, Wm);
        layernorm_backward(dres, NULL, NULL, r->ln, mid, k->ln2_w, r->m2 + (size_t)N * l, r->r2 + (size_t)N * l, N, W);
        // mid = x + out_proj(attention(qkv(LN1(x))))
        gemm_nn(r->y, dres, k->out_w, N, W, W);
        memset(dqkv, 0, sizeof(float) * 3 * NW);
        attention_backward(dqkv, dqkv + W, dqkv + 2 * W, datt, r->y, r->att + natt * l, qkv, qkv + W, qkv + 2 * W,
                           B, Te, Te, H, hd, 3 * W, 3 * W, W, scale);
        gemm_nn(r->ln, dqkv, k->qkv_w, N, W, 3 * W);
        layernorm_backward(dres, NULL, NULL, r->ln, x, k->ln1_w, r->m1 + (size_t)N * l, r->r1 + (size_t)N * l, N, W);
        if (l >= 1 && l <= r->n_deep)  // overwritten rows: their gradient belongs to the prompt, not the layer below
            for (int b = 0; b < B; b++) {
                float *d = dres + ((size_t)b * Te + 1) * W;
                if (ddeep) {
                    float *dd = ddeep + (size_t)(l - 1) * n * W;
                    for (size_t i = 0; i < (size_t)n * W; i++) dd[i] += r->fp16 ? round_fp16(d[i]) : d[i];
                }
                memset(d, 0, sizeof(float) * n * W);
            }
    }
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Te; i++)
            for (int c = 0; c < W; c++) dembeds[((size_t)b * T + i) * W + c] += dres[((size_t)b * Te + i) * W + c];
    free(mem);
    return 0;
}
