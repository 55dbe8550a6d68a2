// CLIP training on the CPU: the towers' forward with stored activations and their backward to every weight,
// over the layer pairs of model/ops.h (see model/clip_train.h). Semantics are Hugging Face CLIPModel's
// (modeling_clip.py; tests/ref_clip.py holds the same model in plain PyTorch).
#include "model/clip_train.h"
#include "model/checkpoint_write.h"
#include "model/ops.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(ClipTrainParams) == CLIP_TRAIN_N_TENSORS * sizeof(float *), "one pointer per tensor");
_Static_assert(sizeof(ClipTrainBlocks) == 12 * sizeof(float *), "12 stacked block tensors");

// ---------------------------------------------------------------------------------------------------------------
// sizes and slicing

static void block_sizes(size_t *s, const TowerShape *t) {
    size_t L = t->layers, W = t->width, I = t->mlp;
    size_t v[12] = {L * W, L * W, L * 3 * W * W, L * 3 * W, L * W * W, L * W, L * W, L * W, L * I * W, L * I,
                    L * W * I, L * W};
    memcpy(s, v, sizeof v);
}

static void fill_sizes(size_t *s, const ClipConfig *c) {
    size_t Wt = c->text.width, Wv = c->vision.width, P = c->projection_dim;
    size_t K = (size_t)c->channels * c->patch_size * c->patch_size, g = c->image_size / c->patch_size;
    int i = 0;
    s[i++] = (size_t)c->vocab_size * Wt;
    s[i++] = (size_t)c->context_length * Wt;
    block_sizes(s + i, &c->text), i += 12;
    s[i++] = Wt, s[i++] = Wt, s[i++] = P * Wt;
    s[i++] = Wv, s[i++] = Wv * K, s[i++] = (g * g + 1) * Wv, s[i++] = Wv, s[i++] = Wv;
    block_sizes(s + i, &c->vision), i += 12;
    s[i++] = Wv, s[i++] = Wv, s[i++] = P * Wv;
    s[i++] = 1;
    assert(i == CLIP_TRAIN_N_TENSORS);
}

static void point(ClipTrainParams *p, float *base, const size_t *sizes) {
    float **ptrs = (float **)p;
    for (int i = 0; i < CLIP_TRAIN_N_TENSORS; i++) {
        ptrs[i] = base;
        base += sizes[i];
    }
}

// Tensors whose AdamW update includes weight decay: the matrices of the blocks, the patch kernel, the projections.
static int decays(int i) {
    // text blocks 2..13, vision blocks 22..33; block tensor k: qkvw 2, attprojw 4, fcw 8, fcprojw 10
    if (i >= 2 && i < 14) { int k = i - 2; return k == 2 || k == 4 || k == 8 || k == 10; }
    if (i >= 22 && i < 34) { int k = i - 22; return k == 2 || k == 4 || k == 8 || k == 10; }
    return i == 16 || i == 18 || i == 36;  // tproj, patch, vproj
}

// ---------------------------------------------------------------------------------------------------------------
// activations

// One tower's block activations for N = B*T rows, stacked over layers, and the backward's scratch.
typedef struct {
    int L, W, H, I, B, T;
    float *res;               // (L+1, N, W) residual stream entering each block; res[L] leaves the last
    float *ln1;               // (L, N, W)
    float *ln1m, *ln1r;       // (L, N)
    float *qkv;               // (L, N, 3W)
    float *att;               // (L, B, H, T, T)
    float *atty;              // (L, N, W) attention output before the out projection
    float *mid;               // (L, N, W) residual stream after the attention half
    float *ln2;               // (L, N, W)
    float *ln2m, *ln2r;       // (L, N)
    float *fch;               // (L, N, I) MLP pre-activation
    float *fchg;              // (L, N, I) after QuickGELU
    float *dres, *dln, *datty;  // (N, W) backward scratch
    float *dqkv;              // (N, 3W)
    float *datt;              // (B, H, T, T)
    float *dfch, *dfchg;      // (N, I)
    float *pooled;            // (B, W) final LN of the pooled rows
    float *pm, *pr;           // (B) its statistics
    float *emb;               // (B, P) projected
    float *embn;              // (B, P) unit norm
    float *norm;              // (B) |emb|
    float *dpooled;           // (B, W)
    float *demb;              // (B, P)
} TowerActs;

struct ClipTrainActs {
    int B, T;
    TowerActs text, vision;
    int *eot;                 // (B)
    int *ids;                 // (B, T)
    float *cols;              // (B, g*g, K) im2col of the pixels
    float *x0;                // (B, Tv, Wv) embeddings before the pre-LN
    float *x0m, *x0r;         // (B*Tv)
    float *dx0;               // (B, Tv, Wv)
    float *logits;            // (B, B) image rows, text columns (logits_per_image)
    float *dlogits;           // (B, B)
    float *mem;
};

static size_t tower_sizes(size_t *s, int L, int W, int H, int I, int B, int T, int P) {
    size_t N = (size_t)B * T;
    size_t v[] = {(L + 1) * N * W, L * N * W, L * N, L * N, L * N * 3 * W, (size_t)L * B * H * T * T, L * N * W,
                  L * N * W, L * N * W, L * N, L * N, L * N * I, L * N * I,
                  N * W, N * W, N * W, N * 3 * W, (size_t)B * H * T * T, N * I, N * I,
                  (size_t)B * W, B, B, (size_t)B * P, (size_t)B * P, B, (size_t)B * W, (size_t)B * P};
    size_t total = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        if (s) s[i] = v[i];
        total += v[i];
    }
    return total;
}

static float *tower_point(TowerActs *a, float *p, int L, int W, int H, int I, int B, int T, int P) {
    size_t s[28];
    tower_sizes(s, L, W, H, I, B, T, P);
    *a = (TowerActs){.L = L, .W = W, .H = H, .I = I, .B = B, .T = T};
    float **ptrs[] = {&a->res, &a->ln1, &a->ln1m, &a->ln1r, &a->qkv, &a->att, &a->atty, &a->mid, &a->ln2,
                      &a->ln2m, &a->ln2r, &a->fch, &a->fchg, &a->dres, &a->dln, &a->datty, &a->dqkv, &a->datt,
                      &a->dfch, &a->dfchg, &a->pooled, &a->pm, &a->pr, &a->emb, &a->embn, &a->norm, &a->dpooled,
                      &a->demb};
    for (int i = 0; i < 28; i++) {
        *ptrs[i] = p;
        p += s[i];
    }
    return p;
}

static ClipTrainActs *acts_new(const ClipConfig *c, int B, int T) {
    const TowerShape *ts = &c->text, *vs = &c->vision;
    int P = c->projection_dim, g = c->image_size / c->patch_size, Tv = g * g + 1;
    size_t K = (size_t)c->channels * c->patch_size * c->patch_size, Nv = (size_t)B * Tv;
    size_t total = tower_sizes(NULL, ts->layers, ts->width, ts->heads, ts->mlp, B, T, P) +
                   tower_sizes(NULL, vs->layers, vs->width, vs->heads, vs->mlp, B, Tv, P) +
                   (size_t)B * g * g * K + Nv * vs->width * 2 + Nv * 2 + (size_t)B * B * 2;
    ClipTrainActs *a = calloc(1, sizeof *a);
    float *mem = malloc(sizeof(float) * total);
    int *eot = malloc(sizeof(int) * B), *ids = malloc(sizeof(int) * B * T);
    if (!a || !mem || !eot || !ids) {
        free(a), free(mem), free(eot), free(ids);
        err_set("clip training: out of memory for the activations of batch %d", B);
        return NULL;
    }
    a->B = B, a->T = T, a->mem = mem, a->eot = eot, a->ids = ids;
    float *p = tower_point(&a->text, mem, ts->layers, ts->width, ts->heads, ts->mlp, B, T, P);
    p = tower_point(&a->vision, p, vs->layers, vs->width, vs->heads, vs->mlp, B, Tv, P);
    a->cols = p, p += (size_t)B * g * g * K;
    a->x0 = p, p += Nv * vs->width;
    a->dx0 = p, p += Nv * vs->width;
    a->x0m = p, p += Nv;
    a->x0r = p, p += Nv;
    a->logits = p, p += (size_t)B * B;
    a->dlogits = p;
    return a;
}

static void acts_free(ClipTrainActs *a) {
    if (!a) return;
    free(a->mem);
    free(a->eot);
    free(a->ids);
    free(a);
}

// ---------------------------------------------------------------------------------------------------------------
// the transformer blocks (pre-norm; QuickGELU MLP)

// a->res[0] holds the tower's input; fills every layer's activations and a->res[L].
static void blocks_forward(const ClipTrainBlocks *p, TowerActs *a, int causal, float eps) {
    int W = a->W, I = a->I, H = a->H, hd = W / H, B = a->B, T = a->T, N = B * T;
    size_t NW = (size_t)N * W;
    float scale = 1.0f / sqrtf((float)hd);
    for (int l = 0; l < a->L; l++) {
        const float *x = a->res + l * NW;
        float *ln1 = a->ln1 + l * NW, *qkv = a->qkv + l * NW * 3, *att = a->att + (size_t)l * B * H * T * T;
        float *atty = a->atty + l * NW, *mid = a->mid + l * NW, *ln2 = a->ln2 + l * NW;
        float *fch = a->fch + (size_t)l * N * I, *fchg = a->fchg + (size_t)l * N * I, *out = a->res + (l + 1) * NW;
        layernorm_forward(ln1, a->ln1m + (size_t)l * N, a->ln1r + (size_t)l * N, x, p->ln1w + (size_t)l * W,
                          p->ln1b + (size_t)l * W, N, W, eps);
        matmul_forward(qkv, ln1, p->qkvw + (size_t)l * 3 * W * W, p->qkvb + (size_t)l * 3 * W, N, W, 3 * W);
        attention_forward(atty, att, qkv, qkv + W, qkv + 2 * W, B, T, T, H, hd, 3 * W, 3 * W, W, causal, scale);
        matmul_forward(mid, atty, p->attprojw + (size_t)l * W * W, p->attprojb + (size_t)l * W, N, W, W);
        residual_forward(mid, mid, x, NW);
        layernorm_forward(ln2, a->ln2m + (size_t)l * N, a->ln2r + (size_t)l * N, mid, p->ln2w + (size_t)l * W,
                          p->ln2b + (size_t)l * W, N, W, eps);
        matmul_forward(fch, ln2, p->fcw + (size_t)l * I * W, p->fcb + (size_t)l * I, N, W, I);
        quickgelu_forward(fchg, fch, (size_t)N * I);
        matmul_forward(out, fchg, p->fcprojw + (size_t)l * W * I, p->fcprojb + (size_t)l * W, N, I, W);
        residual_forward(out, out, mid, NW);
    }
}

// a->dres holds d res[L] on entry and d res[0] on return; weight gradients accumulate into g.
static void blocks_backward(const ClipTrainBlocks *p, ClipTrainBlocks *g, TowerActs *a) {
    int W = a->W, I = a->I, H = a->H, hd = W / H, B = a->B, T = a->T, N = B * T;
    size_t NW = (size_t)N * W;
    float scale = 1.0f / sqrtf((float)hd);
    for (int l = a->L - 1; l >= 0; l--) {
        const float *x = a->res + l * NW, *ln1 = a->ln1 + l * NW, *qkv = a->qkv + l * NW * 3;
        const float *att = a->att + (size_t)l * B * H * T * T, *atty = a->atty + l * NW, *mid = a->mid + l * NW;
        const float *ln2 = a->ln2 + l * NW, *fch = a->fch + (size_t)l * N * I, *fchg = a->fchg + (size_t)l * N * I;
        // out = mid + fcproj(gelu(fc(ln2(mid)))): dres passes through to mid unchanged
        memset(a->dfchg, 0, sizeof(float) * N * I);
        matmul_backward(a->dfchg, g->fcprojw + (size_t)l * W * I, g->fcprojb + (size_t)l * W, a->dres, fchg,
                        p->fcprojw + (size_t)l * W * I, N, I, W);
        memset(a->dfch, 0, sizeof(float) * N * I);
        quickgelu_backward(a->dfch, fch, a->dfchg, (size_t)N * I);
        memset(a->dln, 0, sizeof(float) * NW);
        matmul_backward(a->dln, g->fcw + (size_t)l * I * W, g->fcb + (size_t)l * I, a->dfch, ln2,
                        p->fcw + (size_t)l * I * W, N, W, I);
        layernorm_backward(a->dres, g->ln2w + (size_t)l * W, g->ln2b + (size_t)l * W, a->dln, mid,
                           p->ln2w + (size_t)l * W, a->ln2m + (size_t)l * N, a->ln2r + (size_t)l * N, N, W);
        // mid = x + attproj(attention(qkv(ln1(x))))
        memset(a->datty, 0, sizeof(float) * NW);
        matmul_backward(a->datty, g->attprojw + (size_t)l * W * W, g->attprojb + (size_t)l * W, a->dres, atty,
                        p->attprojw + (size_t)l * W * W, N, W, W);
        memset(a->dqkv, 0, sizeof(float) * NW * 3);
        attention_backward(a->dqkv, a->dqkv + W, a->dqkv + 2 * W, a->datt, a->datty, att, qkv, qkv + W, qkv + 2 * W,
                           B, T, T, H, hd, 3 * W, 3 * W, W, scale);
        memset(a->dln, 0, sizeof(float) * NW);
        matmul_backward(a->dln, g->qkvw + (size_t)l * 3 * W * W, g->qkvb + (size_t)l * 3 * W, a->dqkv, ln1,
                        p->qkvw + (size_t)l * 3 * W * W, N, W, 3 * W);
        layernorm_backward(a->dres, g->ln1w + (size_t)l * W, g->ln1b + (size_t)l * W, a->dln, x,
                           p->ln1w + (size_t)l * W, a->ln1m + (size_t)l * N, a->ln1r + (size_t)l * N, N, W);
    }
}

// emb (B,P) = proj · pooled; embn = emb / |emb|
static void project_normalise(TowerActs *a, const float *proj, int P) {
    matmul_forward(a->emb, a->pooled, proj, NULL, a->B, a->W, P);
    for (int b = 0; b < a->B; b++) {
        double s = 0;
        for (int j = 0; j < P; j++) s += (double)a->emb[b * P + j] * a->emb[b * P + j];
        a->norm[b] = (float)sqrt(s);
        for (int j = 0; j < P; j++) a->embn[b * P + j] = a->emb[b * P + j] / a->norm[b];
    }
}

// d emb from d embn (in a->demb on entry): (dn - n (n·dn)) / |emb|, in place.
static void normalise_backward(TowerActs *a, int P) {
    for (int b = 0; b < a->B; b++) {
        float *d = a->demb + (size_t)b * P;
        const float *n = a->embn + (size_t)b * P;
        double dot = 0;
        for (int j = 0; j < P; j++) dot += (double)n[j] * d[j];
        for (int j = 0; j < P; j++) d[j] = (d[j] - n[j] * (float)dot) / a->norm[b];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// model

ClipTrain *clip_train_load(const char *dir, const ClipConfig *cfg) {
    const TowerShape *ts = &cfg->text, *vs = &cfg->vision;
    if (ts->width % ts->heads || vs->width % vs->heads || cfg->patch_size <= 0 || cfg->image_size < cfg->patch_size)
        return err_set("clip training: widths must be multiples of the heads and the image at least one patch"), NULL;
    if (ts->act != ACT_QUICK_GELU || vs->act != ACT_QUICK_GELU)
        return err_set("clip training: only hidden_act quick_gelu is trained"), NULL;
    ClipTrain *m = calloc(1, sizeof *m);
    if (!m) return err_set("clip training: out of memory"), NULL;
    m->cfg = *cfg;
    fill_sizes(m->sizes, cfg);
    for (int i = 0; i < CLIP_TRAIN_N_TENSORS; i++) m->n_params += m->sizes[i];
    m->memory = calloc(4 * m->n_params, sizeof(float));
    if (!m->memory) {
        err_set("clip training: out of memory for %zu parameters", m->n_params);
        free(m);
        return NULL;
    }
    point(&m->params, m->memory, m->sizes);
    point(&m->grads, m->memory + m->n_params, m->sizes);
    point(&m->m, m->memory + 2 * m->n_params, m->sizes);
    point(&m->v, m->memory + 3 * m->n_params, m->sizes);

    Checkpoint *ck = checkpoint_open(dir);
    if (!ck) { clip_train_free(m); return NULL; }
    int Wt = ts->width, Wv = vs->width, P = cfg->projection_dim, p = cfg->patch_size, C = cfg->channels;
    int g = cfg->image_size / p;
    ClipTrainParams *q = &m->params;
    struct { const char *name; float *dst; int ndim; int64_t shape[4]; } top[] = {
        {"text_model.embeddings.token_embedding.weight", q->tok, 2, {cfg->vocab_size, Wt}},
        {"text_model.embeddings.position_embedding.weight", q->tpos, 2, {cfg->context_length, Wt}},
        {"text_model.final_layer_norm.weight", q->tlnfw, 1, {Wt}},
        {"text_model.final_layer_norm.bias", q->tlnfb, 1, {Wt}},
        {"text_projection.weight", q->tproj, 2, {P, Wt}},
        {"vision_model.embeddings.class_embedding", q->cls, 1, {Wv}},
        {"vision_model.embeddings.patch_embedding.weight", q->patch, 4, {Wv, C, p, p}},
        {"vision_model.embeddings.position_embedding.weight", q->vpos, 2, {g * g + 1, Wv}},
        {"vision_model.pre_layrnorm.weight", q->prew, 1, {Wv}},
        {"vision_model.pre_layrnorm.bias", q->preb, 1, {Wv}},
        {"vision_model.post_layernorm.weight", q->postw, 1, {Wv}},
        {"vision_model.post_layernorm.bias", q->postb, 1, {Wv}},
        {"visual_projection.weight", q->vproj, 2, {P, Wv}},
        {"logit_scale", q->logit_scale, 0, {0}},
    };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        const float *src = checkpoint_tensor_f32(ck, top[i].name, top[i].shape, top[i].ndim);
        if (!src) { checkpoint_close(ck); clip_train_free(m); return NULL; }
        size_t n = 1;
        for (int d = 0; d < top[i].ndim; d++) n *= (size_t)top[i].shape[d];
        memcpy(top[i].dst, src, sizeof(float) * n);
    }
    for (int tower = 0; tower < 2; tower++) {
        const TowerShape *s = tower ? vs : ts;
        ClipTrainBlocks *b = tower ? &q->vb : &q->tb;
        int W = s->width, I = s->mlp;
        for (int l = 0; l < s->layers; l++) {
            struct { const char *suffix; float *dst; int ndim; int64_t shape[2]; } t[] = {
                {"layer_norm1.weight", b->ln1w + (size_t)l * W, 1, {W}},
                {"layer_norm1.bias", b->ln1b + (size_t)l * W, 1, {W}},
                {"self_attn.q_proj.weight", b->qkvw + (size_t)l * 3 * W * W, 2, {W, W}},
                {"self_attn.k_proj.weight", b->qkvw + (size_t)l * 3 * W * W + (size_t)W * W, 2, {W, W}},
                {"self_attn.v_proj.weight", b->qkvw + (size_t)l * 3 * W * W + (size_t)2 * W * W, 2, {W, W}},
                {"self_attn.q_proj.bias", b->qkvb + (size_t)l * 3 * W, 1, {W}},
                {"self_attn.k_proj.bias", b->qkvb + (size_t)l * 3 * W + W, 1, {W}},
                {"self_attn.v_proj.bias", b->qkvb + (size_t)l * 3 * W + 2 * W, 1, {W}},
                {"self_attn.out_proj.weight", b->attprojw + (size_t)l * W * W, 2, {W, W}},
                {"self_attn.out_proj.bias", b->attprojb + (size_t)l * W, 1, {W}},
                {"layer_norm2.weight", b->ln2w + (size_t)l * W, 1, {W}},
                {"layer_norm2.bias", b->ln2b + (size_t)l * W, 1, {W}},
                {"mlp.fc1.weight", b->fcw + (size_t)l * I * W, 2, {I, W}},
                {"mlp.fc1.bias", b->fcb + (size_t)l * I, 1, {I}},
                {"mlp.fc2.weight", b->fcprojw + (size_t)l * W * I, 2, {W, I}},
                {"mlp.fc2.bias", b->fcprojb + (size_t)l * W, 1, {W}},
            };
            for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
                char name[160];
                snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower ? "vision_model" : "text_model", l,
                         t[i].suffix);
                const float *src = checkpoint_tensor_f32(ck, name, t[i].shape, t[i].ndim);
                if (!src) { checkpoint_close(ck); clip_train_free(m); return NULL; }
                memcpy(t[i].dst, src, sizeof(float) * t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1));
            }
        }
    }
    checkpoint_close(ck);
    return m;
}

void clip_train_free(ClipTrain *m) {
    if (!m) return;
    acts_free(m->acts);
    free(m->memory);
    free(m);
}

void clip_train_zero_grad(ClipTrain *m) { memset(m->memory + m->n_params, 0, sizeof(float) * m->n_params); }

const float *clip_train_image_embeds(const ClipTrain *m) { return m->acts ? m->acts->vision.embn : NULL; }
const float *clip_train_text_embeds(const ClipTrain *m) { return m->acts ? m->acts->text.embn : NULL; }

float clip_train_forward(ClipTrain *m, const float *pixels, const int *ids, const int *eot, int B, int T) {
    const ClipConfig *c = &m->cfg;
    if (B < 1 || T < 2 || T > c->context_length)
        return err_set("clip training: %d pairs of %d tokens (context %d)", B, T, c->context_length);
    for (int b = 0; b < B; b++) {
        if (eot[b] < 0 || eot[b] >= T) return err_set("clip training: text %d pools at %d, outside 0..%d", b, eot[b], T - 1);
        for (int t = 0; t < T; t++)
            if (ids[b * T + t] < 0 || ids[b * T + t] >= c->vocab_size)
                return err_set("clip training: token id %d (text %d) outside the vocabulary of %d", ids[b * T + t], b,
                               c->vocab_size);
    }
    if (!m->acts || m->acts->B != B || m->acts->T != T) {
        acts_free(m->acts);
        if (!(m->acts = acts_new(c, B, T))) return -1;
    }
    ClipTrainActs *a = m->acts;
    const ClipTrainParams *p = &m->params;
    int P = c->projection_dim;
    memcpy(a->eot, eot, sizeof(int) * B);
    memcpy(a->ids, ids, sizeof(int) * B * T);
    m->B = B, m->T = T;

    // text: res[0] (B,T,Wt) = token + position embeddings
    TowerActs *ta = &a->text;
    int Wt = ta->W;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *x = ta->res + ((size_t)b * T + t) * Wt;
            const float *e = p->tok + (size_t)ids[b * T + t] * Wt, *q = p->tpos + (size_t)t * Wt;
            for (int i = 0; i < Wt; i++) x[i] = e[i] + q[i];
        }
    blocks_forward(&p->tb, ta, 1, c->text.ln_eps);
    const float *tlast = ta->res + (size_t)ta->L * B * T * Wt;
    for (int b = 0; b < B; b++)
        layernorm_forward(ta->pooled + (size_t)b * Wt, ta->pm + b, ta->pr + b, tlast + ((size_t)b * T + eot[b]) * Wt,
                          p->tlnfw, p->tlnfb, 1, Wt, c->text.ln_eps);
    project_normalise(ta, p->tproj, P);

    // vision: cols (B, g*g, K) patches flattened (c, ky, kx); x0 (B,Tv,Wv) = [cls; patches · kernelᵀ] + positions
    TowerActs *va = &a->vision;
    int Wv = va->W, Tv = va->T, S = c->image_size, ps = c->patch_size, C = c->channels, g = S / ps;
    int K = C * ps * ps;
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < g; gy++)
            for (int gx = 0; gx < g; gx++) {
                float *col = a->cols + ((size_t)b * g * g + gy * g + gx) * K;
                for (int ch = 0; ch < C; ch++)
                    for (int ky = 0; ky < ps; ky++)
                        memcpy(col + (ch * ps + ky) * ps, pixels + (((size_t)b * C + ch) * S + gy * ps + ky) * S + gx * ps,
                               sizeof(float) * ps);
            }
    for (int b = 0; b < B; b++) {
        float *x = a->x0 + (size_t)b * Tv * Wv;
        memcpy(x, p->cls, sizeof(float) * Wv);
        matmul_forward(x + Wv, a->cols + (size_t)b * g * g * K, p->patch, NULL, g * g, K, Wv);
        residual_forward(x, x, p->vpos, (size_t)Tv * Wv);
    }
    layernorm_forward(va->res, a->x0m, a->x0r, a->x0, p->prew, p->preb, B * Tv, Wv, c->vision.ln_eps);
    blocks_forward(&p->vb, va, 0, c->vision.ln_eps);
    const float *vlast = va->res + (size_t)va->L * B * Tv * Wv;
    for (int b = 0; b < B; b++)
        layernorm_forward(va->pooled + (size_t)b * Wv, va->pm + b, va->pr + b, vlast + (size_t)b * Tv * Wv, p->postw,
                          p->postb, 1, Wv, c->vision.ln_eps);
    project_normalise(va, p->vproj, P);

    // logits (B,B) = exp(logit_scale) · image · textᵀ; loss = (CE over rows + CE over columns) / 2
    float s = expf(p->logit_scale[0]);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double d = 0;
            for (int k = 0; k < P; k++) d += (double)va->embn[i * P + k] * ta->embn[j * P + k];
            a->logits[i * B + j] = s * (float)d;
        }
    double loss = 0;
    memset(a->dlogits, 0, sizeof(float) * B * B);
    for (int dir = 0; dir < 2; dir++)     // dir 0: rows (image → texts), 1: columns (text → images)
        for (int i = 0; i < B; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < B; j++) {
                float z = dir ? a->logits[j * B + i] : a->logits[i * B + j];
                if (z > mx) mx = z;
            }
            for (int j = 0; j < B; j++) sum += exp((dir ? a->logits[j * B + i] : a->logits[i * B + j]) - mx);
            loss -= a->logits[i * B + i] - mx - log(sum);
            // d loss / d logits = (softmax - onehot) / (2B)
            for (int j = 0; j < B; j++) {
                float z = dir ? a->logits[j * B + i] : a->logits[i * B + j];
                float d = (float)((exp(z - mx) / sum - (i == j)) / (2.0 * B));
                a->dlogits[dir ? j * B + i : i * B + j] += d;
            }
        }
    m->loss = (float)(loss / (2.0 * B));
    return m->loss;
}

int clip_train_backward(ClipTrain *m) {
    ClipTrainActs *a = m->acts;
    if (!a || m->B == 0) return err_set("clip training: backward needs a forward first");
    const ClipConfig *c = &m->cfg;
    const ClipTrainParams *p = &m->params;
    ClipTrainParams *g = &m->grads;
    int B = m->B, T = m->T, P = c->projection_dim;
    TowerActs *ta = &a->text, *va = &a->vision;
    float s = expf(p->logit_scale[0]);

    // logits = s · In · Tnᵀ: d In = s · dL · Tn; d Tn = s · dLᵀ · In; d logit_scale = Σ dL ∘ logits
    double dls = 0;
    for (int i = 0; i < B * B; i++) dls += (double)a->dlogits[i] * a->logits[i];
    g->logit_scale[0] += (float)dls;
    memset(va->demb, 0, sizeof(float) * B * P);
    memset(ta->demb, 0, sizeof(float) * B * P);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            float d = s * a->dlogits[i * B + j];
            for (int k = 0; k < P; k++) {
                va->demb[i * P + k] += d * ta->embn[j * P + k];
                ta->demb[j * P + k] += d * va->embn[i * P + k];
            }
        }

    // text: emb = proj · LN_f(res[L] at eot) ... back to the embeddings
    normalise_backward(ta, P);
    int Wt = ta->W;
    memset(ta->dpooled, 0, sizeof(float) * B * Wt);
    matmul_backward(ta->dpooled, g->tproj, NULL, ta->demb, ta->pooled, p->tproj, B, Wt, P);
    size_t NWt = (size_t)B * T * Wt;
    memset(ta->dres, 0, sizeof(float) * NWt);
    const float *tlast = ta->res + (size_t)ta->L * NWt;
    for (int b = 0; b < B; b++) {
        size_t row = ((size_t)b * T + a->eot[b]) * Wt;
        layernorm_backward(ta->dres + row, g->tlnfw, g->tlnfb, ta->dpooled + (size_t)b * Wt, tlast + row, p->tlnfw,
                           ta->pm + b, ta->pr + b, 1, Wt);
    }
    blocks_backward(&p->tb, &g->tb, ta);
    // res[0] = tok[ids] + tpos
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = ta->dres + ((size_t)b * T + t) * Wt;
            float *gp = g->tpos + (size_t)t * Wt, *gt = g->tok + (size_t)a->ids[b * T + t] * Wt;
            for (int i = 0; i < Wt; i++) gp[i] += d[i], gt[i] += d[i];
        }

    // vision
    normalise_backward(va, P);
    int Wv = va->W, Tv = va->T, ps = c->patch_size, gr = c->image_size / ps, K = c->channels * ps * ps;
    memset(va->dpooled, 0, sizeof(float) * B * Wv);
    matmul_backward(va->dpooled, g->vproj, NULL, va->demb, va->pooled, p->vproj, B, Wv, P);
    size_t NWv = (size_t)B * Tv * Wv;
    memset(va->dres, 0, sizeof(float) * NWv);
    const float *vlast = va->res + (size_t)va->L * NWv;
    for (int b = 0; b < B; b++)
        layernorm_backward(va->dres + (size_t)b * Tv * Wv, g->postw, g->postb, va->dpooled + (size_t)b * Wv,
                           vlast + (size_t)b * Tv * Wv, p->postw, va->pm + b, va->pr + b, 1, Wv);
    blocks_backward(&p->vb, &g->vb, va);
    memset(a->dx0, 0, sizeof(float) * NWv);
    layernorm_backward(a->dx0, g->prew, g->preb, va->dres, a->x0, p->prew, a->x0m, a->x0r, B * Tv, Wv);
    for (int b = 0; b < B; b++) {
        const float *d = a->dx0 + (size_t)b * Tv * Wv;
        for (int i = 0; i < Wv; i++) g->cls[i] += d[i];
        residual_forward(g->vpos, g->vpos, d, (size_t)Tv * Wv);
        matmul_backward(NULL, g->patch, NULL, d + Wv, a->cols + (size_t)b * gr * gr * K, p->patch, gr * gr, K, Wv);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// optimisation

double clip_train_lr(const ClipTrainOpt *o, long step) {
    if (step < o->warmup) return o->lr * (step + 1) / (double)o->warmup;
    long span = o->steps - o->warmup;
    double t = span > 0 ? (double)(step - o->warmup) / span : 1.0;
    if (t > 1) t = 1;
    return o->lr_min + 0.5 * (o->lr - o->lr_min) * (1 + cos(M_PI * t));
}

double clip_train_update(ClipTrain *m, const ClipTrainOpt *o) {
    float *p = m->memory, *g = p + m->n_params, *mm = g + m->n_params, *vv = mm + m->n_params;
    double sq = 0;
    #pragma omp parallel for reduction(+ : sq)
    for (size_t i = 0; i < m->n_params; i++) sq += (double)g[i] * g[i];
    double norm = sqrt(sq);
    float gscale = o->clip_norm > 0 && norm > o->clip_norm ? (float)(o->clip_norm / norm) : 1.0f;
    double lr = clip_train_lr(o, m->step);
    m->step++;
    double bc1 = 1.0 - pow(o->beta1, (double)m->step), bc2 = 1.0 - pow(o->beta2, (double)m->step);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float step_size = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    size_t off = 0;
    for (int t = 0; t < CLIP_TRAIN_N_TENSORS; t++) {
        float decay = decays(t) ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        size_t end = off + m->sizes[t];
        #pragma omp parallel for
        for (size_t i = off; i < end; i++) {
            float gi = g[i] * gscale;
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            p[i] = p[i] * decay - step_size * mm[i] / (sqrtf(vv[i]) / sqrt_bc2 + eps);
        }
        off = end;
    }
    const float max_scale = logf(100.0f);
    if (m->params.logit_scale[0] > max_scale) m->params.logit_scale[0] = max_scale;
    return norm;
}

// ---------------------------------------------------------------------------------------------------------------
// files

int clip_train_save(const ClipTrain *m, const char *dir) {
    const ClipConfig *c = &m->cfg;
    const ClipTrainParams *q = &m->params;
    int Wt = c->text.width, Wv = c->vision.width, P = c->projection_dim, ps = c->patch_size, g = c->image_size / ps;
    int nt = 14 + 16 * (c->text.layers + c->vision.layers);
    TensorOut *t = calloc(nt, sizeof *t);
    char (*names)[160] = calloc(nt, sizeof *names);
    if (!t || !names) { free(t); free(names); return err_set("%s: out of memory saving the model", dir); }
    int n = 0;
#define ADD(nm, ptr, nd, ...) \
    do { snprintf(names[n], 160, "%s", nm); t[n] = (TensorOut){names[n], ptr, nd, {__VA_ARGS__}}; n++; } while (0)
    ADD("text_model.embeddings.token_embedding.weight", q->tok, 2, c->vocab_size, Wt);
    ADD("text_model.embeddings.position_embedding.weight", q->tpos, 2, c->context_length, Wt);
    ADD("text_model.final_layer_norm.weight", q->tlnfw, 1, Wt);
    ADD("text_model.final_layer_norm.bias", q->tlnfb, 1, Wt);
    ADD("text_projection.weight", q->tproj, 2, P, Wt);
    ADD("vision_model.embeddings.class_embedding", q->cls, 1, Wv);
    ADD("vision_model.embeddings.patch_embedding.weight", q->patch, 4, Wv, c->channels, ps, ps);
    ADD("vision_model.embeddings.position_embedding.weight", q->vpos, 2, g * g + 1, Wv);
    ADD("vision_model.pre_layrnorm.weight", q->prew, 1, Wv);
    ADD("vision_model.pre_layrnorm.bias", q->preb, 1, Wv);
    ADD("vision_model.post_layernorm.weight", q->postw, 1, Wv);
    ADD("vision_model.post_layernorm.bias", q->postb, 1, Wv);
    ADD("visual_projection.weight", q->vproj, 2, P, Wv);
    ADD("logit_scale", q->logit_scale, 0, 0);
    for (int tower = 0; tower < 2; tower++) {
        const TowerShape *s = tower ? &c->vision : &c->text;
        const ClipTrainBlocks *b = tower ? &q->vb : &q->tb;
        const char *pre = tower ? "vision_model" : "text_model";
        int W = s->width, I = s->mlp;
        for (int l = 0; l < s->layers; l++) {
            char nm[160];
#define BLK(suffix, ptr, nd, ...) \
    do { snprintf(nm, sizeof nm, "%s.encoder.layers.%d.%s", pre, l, suffix); ADD(nm, ptr, nd, __VA_ARGS__); } while (0)
            BLK("layer_norm1.weight", b->ln1w + (size_t)l * W, 1, W);
            BLK("layer_norm1.bias", b->ln1b + (size_t)l * W, 1, W);
            BLK("self_attn.q_proj.weight", b->qkvw + (size_t)l * 3 * W * W, 2, W, W);
            BLK("self_attn.k_proj.weight", b->qkvw + (size_t)l * 3 * W * W + (size_t)W * W, 2, W, W);
            BLK("self_attn.v_proj.weight", b->qkvw + (size_t)l * 3 * W * W + (size_t)2 * W * W, 2, W, W);
            BLK("self_attn.q_proj.bias", b->qkvb + (size_t)l * 3 * W, 1, W);
            BLK("self_attn.k_proj.bias", b->qkvb + (size_t)l * 3 * W + W, 1, W);
            BLK("self_attn.v_proj.bias", b->qkvb + (size_t)l * 3 * W + 2 * W, 1, W);
            BLK("self_attn.out_proj.weight", b->attprojw + (size_t)l * W * W, 2, W, W);
            BLK("self_attn.out_proj.bias", b->attprojb + (size_t)l * W, 1, W);
            BLK("layer_norm2.weight", b->ln2w + (size_t)l * W, 1, W);
            BLK("layer_norm2.bias", b->ln2b + (size_t)l * W, 1, W);
            BLK("mlp.fc1.weight", b->fcw + (size_t)l * I * W, 2, I, W);
            BLK("mlp.fc1.bias", b->fcb + (size_t)l * I, 1, I);
            BLK("mlp.fc2.weight", b->fcprojw + (size_t)l * W * I, 2, W, I);
            BLK("mlp.fc2.bias", b->fcprojb + (size_t)l * W, 1, W);
#undef BLK
        }
    }
#undef ADD
    int rc = fs_mkdirs(dir);
    char *path = fs_join(dir, "model.safetensors");
    if (rc == 0) rc = safetensors_write(path, t, n);
    if (rc == 0) rc = clip_write_config(dir, c);
    free(path);
    free(t);
    free(names);
    return rc;
}

// optimizer.bin: "KCLIPOPT" magic, int64 step, int64 n_params, then m and v as float32 (n_params each).
int clip_train_save_state(const ClipTrain *m, const char *dir) {
    size_t n = m->n_params, bytes = 24 + 8 * n;
    char *buf = malloc(bytes);
    if (!buf) return err_set("%s: out of memory saving the optimizer state", dir);
    int64_t hdr[2] = {m->step, (int64_t)n};
    memcpy(buf, "KCLIPOPT", 8);
    memcpy(buf + 8, hdr, 16);
    memcpy(buf + 24, m->memory + 2 * n, 8 * n);
    char *path = fs_join(dir, "optimizer.bin");
    int rc = fs_write_atomic(path, buf, bytes);
    free(path);
    free(buf);
    return rc;
}

int clip_train_load_state(ClipTrain *m, const char *dir) {
    char *path = fs_join(dir, "optimizer.bin");
    size_t size = 0;
    char *buf = fs_read_file(path, &size);
    int rc = 0;
    int64_t hdr[2] = {0, 0};
    if (!buf) rc = -1;
    else if (size < 24 || memcmp(buf, "KCLIPOPT", 8) != 0) rc = err_set("%s: not an optimizer state file", path);
    else {
        memcpy(hdr, buf + 8, 16);
        if (hdr[1] != (int64_t)m->n_params || size != 24 + 8 * (size_t)hdr[1] || hdr[0] < 0)
            rc = err_set("%s: holds %lld parameters, the model has %zu", path, (long long)hdr[1], m->n_params);
    }
    if (rc == 0) {
        m->step = hdr[0];
        memcpy(m->memory + 2 * m->n_params, buf + 24, 8 * m->n_params);
    }
    free(buf);
    free(path);
    return rc;
}
