// Frozen pre-norm blocks between two layers, forward with kept activations and the backward to the input
// (see frozen_blocks.h). The op sequence is the vision tower's (model/clip_vision.c) on the original path.
#include "model/frozen_blocks.h"
#include "model/ops_infer.h"
#include "common/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// What one layer keeps for the backward.
typedef struct {
    float *in;          // (B,T,W) the stream entering the block
    float *mid;         // (B,T,W) after the attention half
    float *m1, *r1, *m2, *r2;  // (B*T) LayerNorm statistics
    float *qkv;         // (B,T,3W)
    float *att;         // (B,H,T,T) attention probabilities
    float *pre;         // (B,T,Wm) MLP pre-activations
    int B, T;           // the forward that filled it (0: none)
} Kept;

struct FrozenBlocks {
    const ClipBlock *blocks;
    TowerShape s;
    int first, last, keep;
    int B, T;           // the size the memory is sliced for
    float *mem;
    size_t cap;
    Kept *kept;         // (last - first + 1) keeping runs; (1) scratch slot otherwise
    float *ln, *y, *h;  // (B,T,W), (B,T,W), (B,T,Wm) scratch
    float *dres, *dqkv, *datt;  // (B,T,W), (B,T,3W), (B,H,T,T) backward scratch (keeping runs)
};

FrozenBlocks *frozen_blocks_new(const ClipBlock *blocks, const TowerShape *shape, int first, int last, int keep) {
    if (first < 1 || last > shape->layers || first > last) {
        err_set("frozen blocks: layers %d..%d outside 1..%d", first, last, shape->layers);
        return NULL;
    }
    FrozenBlocks *f = calloc(1, sizeof *f);
    int n = keep ? last - first + 1 : 1;
    if (f) f->kept = calloc((size_t)n, sizeof *f->kept);
    if (!f || !f->kept) {
        free(f);
        err_set("frozen blocks: out of memory");
        return NULL;
    }
    f->blocks = blocks, f->s = *shape, f->first = first, f->last = last, f->keep = keep != 0;
    return f;
}

void frozen_blocks_free(FrozenBlocks *f) {
    if (!f) return;
    free(f->mem);
    free(f->kept);
    free(f);
}

// Slices the memory for B images of T tokens, growing it when needed (which forgets what was kept).
static int layout(FrozenBlocks *f, int B, int T) {
    if (f->mem && B == f->B && T == f->T) return 0;
    size_t N = (size_t)B * T, W = f->s.width, Wm = f->s.mlp, A = (size_t)B * f->s.heads * T * T;
    int nk = f->keep ? f->last - f->first + 1 : 0;
    size_t per = f->keep ? 2 * N * W + 4 * N + 3 * N * W + A + N * Wm : 0;
    size_t scratch = 2 * N * W + N * Wm + (f->keep ? N * W + N * 3 * W + A : N * 3 * W);
    size_t total = nk * per + scratch;
    if (total > f->cap) {
        free(f->mem);
        f->mem = malloc(sizeof(float) * total);
        f->cap = f->mem ? total : 0;
        if (!f->mem) return err_set("frozen blocks: out of memory for activations (%zu floats, batch %d)", total, B);
    }
    float *p = f->mem;
    for (int i = 0; i < nk; i++) {
        Kept *k = &f->kept[i];
        k->in = p, p += N * W;
        k->mid = p, p += N * W;
        k->m1 = p, p += N;
        k->r1 = p, p += N;
        k->m2 = p, p += N;
        k->r2 = p, p += N;
        k->qkv = p, p += N * 3 * W;
        k->att = p, p += A;
        k->pre = p, p += N * Wm;
        k->B = k->T = 0;
    }
    f->ln = p, p += N * W;
    f->y = p, p += N * W;
    f->h = p, p += N * Wm;
    if (!f->keep) {
        f->kept[0].qkv = p;  // the one q|k|v buffer of an inference run
    } else {
        f->dres = p, p += N * W;
        f->dqkv = p, p += N * 3 * W;
        f->datt = p;
    }
    f->B = B, f->T = T;
    return 0;
}

static int check_range(const FrozenBlocks *f, int from, int to) {
    if (from <= to && (from < f->first || to > f->last))
        return err_set("frozen blocks: layers %d..%d outside the run's %d..%d", from, to, f->first, f->last);
    return 0;
}

int frozen_blocks_forward(FrozenBlocks *f, float *y, const float *x, int from, int to, int B, int T) {
    if (check_range(f, from, to) < 0) return -1;
    if (B <= 0 || T <= 0) return err_set("frozen blocks: %d images of %d tokens", B, T);
    if (layout(f, B, T) < 0) return -1;
    const TowerShape *s = &f->s;
    int W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, N = B * T, act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    size_t NW = (size_t)N * W;
    if (y != x) memcpy(y, x, sizeof(float) * NW);
    for (int l = from; l <= to; l++) {
        const ClipBlock *k = &f->blocks[l - 1];
        Kept *kp = &f->kept[f->keep ? l - f->first : 0];
        float *q = kp->qkv;
        if (f->keep) memcpy(kp->in, y, sizeof(float) * NW);
        // y = y + out_proj(attention(qkv(LN1(y))))
        layernorm_rows_forward(f->ln, f->keep ? kp->m1 : NULL, f->keep ? kp->r1 : NULL, y, k->ln1_w, k->ln1_b, N, W,
                               s->ln_eps);
        linear_forward_packed(q, 3 * W, f->ln, W, k->qkv_w, k->qkv_p, k->qkv_b, N, W, 3 * W, LINEAR_STORE);
        if (f->keep)
            attention_keep_forward(f->y, kp->att, q, q + W, q + 2 * W, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
        else
            attention_infer_forward(f->y, q, q + W, q + 2 * W, B, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
        linear_forward_packed(y, W, f->y, W, k->out_w, k->out_p, k->out_b, N, W, W, LINEAR_ACCUM);
        // y = y + fc2(act(fc1(LN2(y))))
        if (f->keep) memcpy(kp->mid, y, sizeof(float) * NW);
        layernorm_rows_forward(f->ln, f->keep ? kp->m2 : NULL, f->keep ? kp->r2 : NULL, y, k->ln2_w, k->ln2_b, N, W,
                               s->ln_eps);
        if (f->keep) {
            linear_forward_packed(kp->pre, Wm, f->ln, W, k->fc1_w, k->fc1_p, k->fc1_b, N, W, Wm, LINEAR_STORE);
            act_forward(f->h, kp->pre, (size_t)N * Wm, act);
            kp->B = B, kp->T = T;
        } else {
            linear_forward_packed(f->h, Wm, f->ln, W, k->fc1_w, k->fc1_p, k->fc1_b, N, W, Wm,
                                  act == 2 ? LINEAR_GELU : LINEAR_QUICKGELU);
        }
        linear_forward_packed(y, W, f->h, Wm, k->fc2_w, k->fc2_p, k->fc2_b, N, Wm, W, LINEAR_ACCUM);
    }
    return 0;
}

int frozen_blocks_backward(FrozenBlocks *f, float *dx, const float *dy, int from, int to) {
    if (!f->keep) return err_set("frozen blocks: backward on a run that keeps no activations");
    if (check_range(f, from, to) < 0) return -1;
    const TowerShape *s = &f->s;
    int B = f->B, T = f->T, W = s->width, Wm = s->mlp, H = s->heads, hd = W / H, N = B * T;
    int act = s->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    size_t NW = (size_t)N * W;
    for (int l = from; l <= to; l++)
        if (f->kept[l - f->first].B != B || f->kept[l - f->first].T != T)
            return err_set("frozen blocks: backward through layer %d without its forward", l);
    float *dres = f->dres, *dh = f->h, *dln = f->ln, *dyatt = f->y;  // the forward's scratch is free now
    memcpy(dres, dy, sizeof(float) * NW);
    for (int l = to; l >= from; l--) {
        const ClipBlock *k = &f->blocks[l - 1];
        const Kept *kp = &f->kept[l - f->first];
        const float *q = kp->qkv;
        // out = mid + fc2(act(fc1(LN2(mid)))): dres flows through unchanged and into the MLP
        linear_backward_inp(dh, dres, k->fc2_w, N, Wm, W);
        act_backward_inplace(dh, kp->pre, (size_t)N * Wm, act);
        linear_backward_inp(dln, dh, k->fc1_w, N, W, Wm);
        layernorm_rows_backward(dres, dln, kp->mid, k->ln2_w, kp->m2, kp->r2, N, W);
        // mid = in + out_proj(attention(qkv(LN1(in))))
        linear_backward_inp(dyatt, dres, k->out_w, N, W, W);
        memset(f->dqkv, 0, sizeof(float) * NW * 3);
        attention_keep_backward(f->dqkv, f->dqkv + W, f->dqkv + 2 * W, f->datt, dyatt, kp->att, q, q + W, q + 2 * W, B,
                                T, T, H, hd, 3 * W, 3 * W, W, scale);
        linear_backward_inp(dln, f->dqkv, k->qkv_w, N, W, 3 * W);
        layernorm_rows_backward(dres, dln, kp->in, k->ln1_w, kp->m1, kp->r1, N, W);
    }
    memcpy(dx, dres, sizeof(float) * NW);
    return 0;
}
