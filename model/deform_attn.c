// DAT v1 deformable self-attention (see deform_attn.h for the math). GEMMs through OpenBLAS per head; the
// relative-position bias is sampled on the fly in the forward and again in the backward rather than stored.
#include "model/deform_attn.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/ops.h"
#include "model/ops_extra.h"

size_t dattn_param_count(const DattnShape *s) {
    size_t P = s->P, Cg = P / s->G;
    size_t n = 4 * (P * P + P) + Cg * s->k * s->k + Cg + 2 * Cg + 2 * Cg;
    if (s->rpe) n += (size_t)s->H * (2 * s->Hg - 1) * (2 * s->Wg - 1);
    return n;
}

int dattn_acts_alloc(DattnActs *a, const DattnShape *s) {
    size_t N = (size_t)s->Hg * s->Wg, P = s->P, G = s->G, Cg = P / G;
    size_t sizes[] = {N * P, G * N * Cg, G * N * Cg, G * N * Cg, G * N, G * N, G * N * 2, G * N * 2, N * P, N * P,
                      N * P, (size_t)s->H * N * N, N * P, N * P, N * P, N * P, N * P, N * P, N * N,
                      G * N * Cg, G * N * Cg, G * N * Cg, G * N * 2, G * N * 2};
    float **ptrs[] = {&a->q, &a->dw, &a->ln, &a->ge, &a->ln_mean, &a->ln_rstd, &a->off, &a->pos, &a->xs, &a->k,
                      &a->v, &a->att, &a->ao, &a->dao, &a->dq, &a->dxs, &a->dk, &a->dv, &a->datt,
                      &a->dge, &a->dln, &a->ddw, &a->dpos, &a->doff};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += sizes[i];
    a->mem = malloc(total * sizeof(float));
    if (!a->mem) return err_set("deformable attention: out of memory (%zu MB)", total * 4 >> 20);
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = at; at += sizes[i]; }
    return 0;
}

void dattn_acts_free(DattnActs *a) { free(a->mem); a->mem = NULL; }

// Pixel-centre reference of grid cell n, normalised to [-1, 1] (DAT _get_ref_points).
static inline void ref_point(int n, int Hg, int Wg, float *rx, float *ry) {
    *rx = ((n % Wg) + 0.5f) / Wg * 2.0f - 1.0f;
    *ry = ((n / Wg) + 0.5f) / Hg * 2.0f - 1.0f;
}

void dattn_forward(float *out, DattnActs *a, const DattnParams *p, const float *x, const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    int RH = 2 * Hg - 1, RW = 2 * Wg - 1;
    float scale = 1.0f / sqrtf((float)hd);
    matmul_forward(a->q, x, p->q_w, p->q_b, N, P, P);
    for (int g = 0; g < G; g++) {
        size_t go = (size_t)g * N * Cg;
        dwconv_forward(a->dw + go, a->q + g * Cg, p->off_dw_w, p->off_dw_b, Hg, Wg, Cg, P, s->k);
        layernorm_forward(a->ln + go, a->ln_mean + (size_t)g * N, a->ln_rstd + (size_t)g * N, a->dw + go,
                          p->off_ln_w, p->off_ln_b, N, Cg, 1e-5f);
        gelu_forward(a->ge + go, a->ln + go, (size_t)N * Cg);
        float *off = a->off + (size_t)g * N * 2, *pos = a->pos + (size_t)g * N * 2;
        matmul_forward(off, a->ge + go, p->off_pw_w, NULL, N, Cg, 2);
        for (int n = 0; n < N; n++) {
            float rx, ry;
            ref_point(n, Hg, Wg, &rx, &ry);
            pos[2 * n] = rx + s->range * tanhf(off[2 * n + 1]) / Wg;
            pos[2 * n + 1] = ry + s->range * tanhf(off[2 * n]) / Hg;
        }
        grid_sample_forward(a->xs + g * Cg, x + g * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
    }
    matmul_forward(a->k, a->xs, p->k_w, p->k_b, N, P, P);
    matmul_forward(a->v, a->xs, p->v_w, p->v_b, N, P, P);
    for (int h = 0; h < H; h++) {
        float *att = a->att + (size_t)h * N * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, scale, a->q + h * hd, P, a->k + h * hd, P,
                    0.0f, att, N);
        if (s->rpe) {
            const float *tab = p->rpe + (size_t)h * RH * RW, *pos = a->pos + (size_t)(h / hpg) * N * 2;
            #pragma omp parallel for
            for (int i = 0; i < N; i++) {
                float rx, ry;
                ref_point(i, Hg, Wg, &rx, &ry);
                float *row = att + (size_t)i * N;
                for (int j = 0; j < N; j++) {
                    BilinearTap t = bilinear_tap((rx - pos[2 * j]) * 0.5f, (ry - pos[2 * j + 1]) * 0.5f, RH, RW, 1);
                    float b = 0.0f;
                    for (int c = 0; c < 4; c++)
                        if (t.idx[c] >= 0) b += t.w[c] * tab[t.idx[c]];
                    row[j] += b;
                }
            }
        }
        softmax_rows_forward(att, att, N, N, 1.0f);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, 1.0f, att, N, a->v + h * hd, P, 0.0f,
                    a->ao + h * hd, P);
    }
    matmul_forward(out, a->ao, p->o_w, p->o_b, N, P, P);
}

void dattn_backward(float *dx, DattnParams *g, const float *dout, DattnActs *a, const DattnParams *p,
                    const float *x, const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    int RH = 2 * Hg - 1, RW = 2 * Wg - 1, RS = RH * RW;
    float scale = 1.0f / sqrtf((float)hd);
    size_t NP = (size_t)N * P;
    memset(a->dao, 0, NP * 4); memset(a->dq, 0, NP * 4); memset(a->dxs, 0, NP * 4);
    memset(a->dk, 0, NP * 4); memset(a->dv, 0, NP * 4);
    memset(a->dpos, 0, sizeof(float) * G * N * 2);
    matmul_backward(a->dao, g->o_w, g->o_b, dout, a->ao, p->o_w, N, P, P);
    int nth = omp_get_max_threads();
    float *priv = s->rpe ? calloc((size_t)nth * (RS + 2 * N), sizeof(float)) : NULL;
    for (int h = 0; h < H; h++) {
        const float *att = a->att + (size_t)h * N * N;
        float *datt = a->datt;
        // datt = dao_h v_hᵀ; dv_h += att_hᵀ dao_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, 1.0f, a->dao + h * hd, P, a->v + h * hd, P,
                    0.0f, datt, N);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hd, N, 1.0f, att, N, a->dao + h * hd, P, 1.0f,
                    a->dv + h * hd, P);
        // softmax backward in place: dlogits = att ⊙ (datt − Σ att·datt)
        #pragma omp parallel for
        for (int i = 0; i < N; i++) {
            const float *pr = att + (size_t)i * N;
            float *d = datt + (size_t)i * N;
            double dot = 0.0;
            for (int j = 0; j < N; j++) dot += (double)pr[j] * d[j];
            for (int j = 0; j < N; j++) d[j] = pr[j] * (d[j] - (float)dot);
        }
        if (s->rpe) {
            // bias B[i,j] = rpe_h sampled at (ref_i − pos_j)/2: gradient to the table and to pos_j
            const float *tab = p->rpe + (size_t)h * RH * RW;
            const float *pos = a->pos + (size_t)(h / hpg) * N * 2;
            memset(priv, 0, sizeof(float) * nth * (RS + 2 * N));
            #pragma omp parallel
            {
                float *dtab = priv + (size_t)omp_get_thread_num() * (RS + 2 * N), *dp = dtab + RS;
                #pragma omp for
                for (int i = 0; i < N; i++) {
                    float rx, ry;
                    ref_point(i, Hg, Wg, &rx, &ry);
                    const float *d = datt + (size_t)i * N;
                    for (int j = 0; j < N; j++) {
                        BilinearTap t = bilinear_tap((rx - pos[2 * j]) * 0.5f, (ry - pos[2 * j + 1]) * 0.5f, RH, RW, 1);
                        float v[4];
                        for (int c = 0; c < 4; c++) {
                            v[c] = t.idx[c] >= 0 ? tab[t.idx[c]] : 0.0f;
                            if (t.idx[c] >= 0) dtab[t.idx[c]] += t.w[c] * d[j];
                        }
                        float gx = ((1.0f - t.fy) * (v[1] - v[0]) + t.fy * (v[3] - v[2])) * t.sx;
                        float gy = ((1.0f - t.fx) * (v[2] - v[0]) + t.fx * (v[3] - v[1])) * t.sy;
                        dp[2 * j] -= 0.5f * gx * d[j];
                        dp[2 * j + 1] -= 0.5f * gy * d[j];
                    }
                }
            }
            float *gtab = g->rpe + (size_t)h * RS, *gpos = a->dpos + (size_t)(h / hpg) * N * 2;
            for (int t = 0; t < nth; t++) {
                const float *dtab = priv + (size_t)t * (RS + 2 * N), *dp = dtab + RS;
                for (int r = 0; r < RS; r++) gtab[r] += dtab[r];
                for (int r = 0; r < 2 * N; r++) gpos[r] += dp[r];
            }
        }
        // dq_h += scale dlogits k_h; dk_h += scale dlogitsᵀ q_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, scale, datt, N, a->k + h * hd, P, 1.0f,
                    a->dq + h * hd, P);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hd, N, scale, datt, N, a->q + h * hd, P, 1.0f,
                    a->dk + h * hd, P);
    }
    free(priv);
    matmul_backward(a->dxs, g->k_w, g->k_b, a->dk, a->xs, p->k_w, N, P, P);
    matmul_backward(a->dxs, g->v_w, g->v_b, a->dv, a->xs, p->v_w, N, P, P);
    for (int gi = 0; gi < G; gi++) {
        size_t go = (size_t)gi * N * Cg;
        float *pos = a->pos + (size_t)gi * N * 2, *dpos = a->dpos + (size_t)gi * N * 2;
        float *off = a->off + (size_t)gi * N * 2, *doff = a->doff + (size_t)gi * N * 2;
        grid_sample_backward(dx + gi * Cg, dpos, a->dxs + gi * Cg, x + gi * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
        for (int n = 0; n < N; n++) {
            float ty = tanhf(off[2 * n]), tx = tanhf(off[2 * n + 1]);
            doff[2 * n] = dpos[2 * n + 1] * s->range / Hg * (1.0f - ty * ty);
            doff[2 * n + 1] = dpos[2 * n] * s->range / Wg * (1.0f - tx * tx);
        }
        memset(a->dge + go, 0, sizeof(float) * N * Cg);
        memset(a->dln + go, 0, sizeof(float) * N * Cg);
        memset(a->ddw + go, 0, sizeof(float) * N * Cg);
        matmul_backward(a->dge + go, g->off_pw_w, NULL, doff, a->ge + go, p->off_pw_w, N, Cg, 2);
        gelu_backward(a->dln + go, a->ln + go, a->dge + go, (size_t)N * Cg);
        layernorm_backward(a->ddw + go, g->off_ln_w, g->off_ln_b, a->dln + go, a->dw + go, p->off_ln_w,
                           a->ln_mean + (size_t)gi * N, a->ln_rstd + (size_t)gi * N, N, Cg);
        dwconv_backward(a->dq + gi * Cg, g->off_dw_w, g->off_dw_b, a->ddw + go, a->q + gi * Cg, p->off_dw_w, Hg, Wg,
                        Cg, P, s->k);
    }
    matmul_backward(dx, g->q_w, g->q_b, a->dq, x, p->q_w, N, P, P);
}
