// The CLIP vision tower on subsets of tokens (WinCLIP's windows, docs/reference/zsad-anchors.md §1.6; anomalib
// _get_window_embeddings): the embedded tokens before ln_pre are gathered per window as [class, window patches],
// then ln_pre, every block, post-LN of the class row and the projection. Built on the op table (model/ops.h,
// model/ops_infer.h); the engine's own forward keeps its loop private, so the blocks are driven here.
#include "model/baselines.h"
#include "model/ops.h"
#include "model/ops_infer.h"
#include "common/error.h"

#include "model/gemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int clip_vision_embed(const ClipVision *v, const float *pos, int g, const float *pixels, int B, int S,
                      float *embeds) {
    int W = v->shape.width, p = v->patch_size, C = v->channels, K = C * p * p, T = g * g + 1;
    if (g * p > S) return err_set("vision embed: grid %d of patch %d exceeds the input size %d", g, p, S);
    float *cols = malloc(sizeof(float) * (size_t)B * g * g * K);  // (B*g*g, K) patches flattened (c, ky, kx)
    if (!cols) return err_set("vision embed: out of memory");
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < g; gy++)
            for (int gx = 0; gx < g; gx++) {
                float *col = cols + ((size_t)(b * g + gy) * g + gx) * K;
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(col + (c * p + ky) * p, pixels + (((size_t)b * C + c) * S + gy * p + ky) * S + gx * p,
                               sizeof(float) * p);
            }
    for (int b = 0; b < B; b++) {
        float *e = embeds + (size_t)b * T * W;
        memcpy(e, v->class_embedding, sizeof(float) * W);
        sgemm(CblasNoTrans, CblasTrans, g * g, W, K, 1.0f, cols + (size_t)b * g * g * K, K,
                    v->patch_weight, K, 0.0f, e + W, W);
        for (size_t i = 0; i < (size_t)T * W; i++) e[i] += pos[i];
    }
    free(cols);
    return 0;
}

// x (N = n_seq*T, W): ln_pre, then every pre-norm block, in place. Scratch from the caller: ln (N,W),
// qkv (N,3W), y (N,W), h (N,Wm).
static void run_blocks(const ClipVision *v, float *x, int n_seq, int T, float *ln, float *qkv, float *y, float *h) {
    const TowerShape *sh = &v->shape;
    int W = sh->width, Wm = sh->mlp, H = sh->heads, hd = W / H, N = n_seq * T, act = sh->act == ACT_GELU ? 2 : 1;
    float scale = 1.0f / sqrtf((float)hd);
    layernorm_forward(x, NULL, NULL, x, v->pre_ln_w, v->pre_ln_b, N, W, sh->ln_eps);
    for (int l = 0; l < sh->layers; l++) {
        const ClipBlock *k = &v->blocks[l];
        layernorm_forward(ln, NULL, NULL, x, k->ln1_w, k->ln1_b, N, W, sh->ln_eps);
        matmul_forward(qkv, ln, k->qkv_w, k->qkv_b, N, W, 3 * W);
        attention_infer_forward(y, qkv, qkv + W, qkv + 2 * W, n_seq, T, T, H, hd, 3 * W, 3 * W, W, 0, scale);
        add_bias_rows(x, k->out_b, N, W);
        sgemm(CblasNoTrans, CblasTrans, N, W, W, 1.0f, y, W, k->out_w, W, 1.0f, x, W);
        layernorm_forward(ln, NULL, NULL, x, k->ln2_w, k->ln2_b, N, W, sh->ln_eps);
        sgemm(CblasNoTrans, CblasTrans, N, Wm, W, 1.0f, ln, W, k->fc1_w, W, 0.0f, h, Wm);
        bias_act_forward(h, NULL, k->fc1_b, N, Wm, act);
        add_bias_rows(x, k->fc2_b, N, W);
        sgemm(CblasNoTrans, CblasTrans, N, W, Wm, 1.0f, h, Wm, k->fc2_w, Wm, 1.0f, x, W);
    }
}

#define WINDOW_CHUNK 256  // sequences per pass: bounds the activation memory at any window count

int clip_vision_window_embeds(const ClipVision *v, const float *embeds, int B, int T, const int *idx, int nw,
                              int k2, float *out) {
    const TowerShape *sh = &v->shape;
    int W = sh->width, Wm = sh->mlp, P = v->proj_dim, Ts = k2 + 1;
    for (int i = 0; i < nw * k2; i++)
        if (idx[i] < 0 || idx[i] >= T - 1) return err_set("window embeddings: patch index %d outside 0..%d", idx[i], T - 2);
    size_t N = (size_t)WINDOW_CHUNK * Ts;
    float *mem = malloc(sizeof(float) * (N * (W * 6 + Wm) + (size_t)WINDOW_CHUNK * W));
    if (!mem) return err_set("window embeddings: out of memory");
    float *x = mem, *ln = x + N * W, *qkv = ln + N * W, *y = qkv + N * 3 * W, *h = y + N * W, *pool = h + N * Wm;
    int total = B * nw;
    for (int s0 = 0; s0 < total; s0 += WINDOW_CHUNK) {
        int ns = total - s0 < WINDOW_CHUNK ? total - s0 : WINDOW_CHUNK;
        #pragma omp parallel for
        for (int s = 0; s < ns; s++) {
            int b = (s0 + s) / nw, w = (s0 + s) % nw;
            const float *e = embeds + (size_t)b * T * W;
            float *dst = x + (size_t)s * Ts * W;
            memcpy(dst, e, sizeof(float) * W);
            for (int j = 0; j < k2; j++)
                memcpy(dst + (size_t)(1 + j) * W, e + (size_t)(1 + idx[(size_t)w * k2 + j]) * W, sizeof(float) * W);
        }
        run_blocks(v, x, ns, Ts, ln, qkv, y, h);
        for (int s = 0; s < ns; s++)
            layernorm_forward(pool + (size_t)s * W, NULL, NULL, x + (size_t)s * Ts * W, v->post_ln_w, v->post_ln_b,
                              1, W, sh->ln_eps);
        matmul_forward(out + (size_t)s0 * P, pool, v->projection, NULL, ns, W, P);
    }
    free(mem);
    return 0;
}
