// Single-level MSDeformAttn forward/backward (see msda_attn.h).
#include "model/msda_attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/ops.h"
#include "model/ops_extra.h"

size_t msda_param_count(const MsdaShape *s) {
    size_t P = s->P, MK = (size_t)s->M * s->K;
    return 2 * (P * P + P) + MK * 2 * (P + 1) + MK * (P + 1);
}

// DETR PositionEmbeddingSine(num_pos_feats = P/2, temperature 10000, normalize, scale 2π): [pos_y | pos_x],
// each interleaving sin (even channels) and cos (odd channels).
static void sine_positions(float *pos, int Hg, int Wg, int P) {
    int F = P / 2;
    const double scale = 2.0 * M_PI, eps = 1e-6;
    for (int i = 0; i < Hg; i++)
        for (int j = 0; j < Wg; j++) {
            float *o = pos + ((size_t)i * Wg + j) * P;
            double ye = (i + 1) / (Hg + eps) * scale, xe = (j + 1) / (Wg + eps) * scale;
            for (int c = 0; c < F; c++) {
                double dim_t = pow(10000.0, 2.0 * (c / 2) / F);
                o[c] = (float)(c % 2 ? cos(ye / dim_t) : sin(ye / dim_t));
                o[F + c] = (float)(c % 2 ? cos(xe / dim_t) : sin(xe / dim_t));
            }
        }
}

int msda_acts_alloc(MsdaActs *a, const MsdaShape *s) {
    size_t N = (size_t)s->Hg * s->Wg, P = s->P, MK = (size_t)s->M * s->K, hd = P / s->M;
    size_t sizes[] = {N * P, N * P, N * P, N * MK * 2, N * MK, MK * N * 2, MK * N * hd, N * P,
                      N * P, N * P, N * P, N * MK * 2, N * MK, MK * N * hd, MK * N * 2};
    float **ptrs[] = {&a->pos, &a->query, &a->value, &a->off, &a->att, &a->grid, &a->samp, &a->ao,
                      &a->dao, &a->dquery, &a->dvalue, &a->doff, &a->datt, &a->dsamp, &a->dgrid};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += sizes[i];
    a->mem = calloc(total, sizeof(float));
    if (!a->mem) return err_set("deformable attention (msda): out of memory");
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = at; at += sizes[i]; }
    sine_positions(a->pos, s->Hg, s->Wg, s->P);
    return 0;
}

void msda_acts_free(MsdaActs *a) { free(a->mem); a->mem = NULL; }

void msda_init_offset_bias(float *off_b, int M, int K) {
    for (int h = 0; h < M; h++) {
        double th = 2.0 * M_PI * h / M, cx = cos(th), cy = sin(th), mx = fmax(fabs(cx), fabs(cy));
        for (int k = 0; k < K; k++) {
            off_b[(h * K + k) * 2] = (float)(cx / mx * (k + 1));
            off_b[(h * K + k) * 2 + 1] = (float)(cy / mx * (k + 1));
        }
    }
}

void msda_forward(float *out, MsdaActs *a, const MsdaParams *p, const float *x, const MsdaShape *s) {
    int P = s->P, M = s->M, K = s->K, MK = M * K, hd = P / M, Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    residual_forward(a->query, x, a->pos, (size_t)N * P);
    matmul_forward(a->value, x, p->v_w, p->v_b, N, P, P);
    matmul_forward(a->off, a->query, p->off_w, p->off_b, N, P, MK * 2);
    matmul_forward(a->att, a->query, p->att_w, p->att_b, N, P, MK);
    softmax_rows_forward(a->att, a->att, N * M, K, 1.0f);
    for (int h = 0; h < M; h++) {
        float *grid = a->grid + (size_t)h * N * K * 2, *samp = a->samp + (size_t)h * N * K * hd;
        for (int q = 0; q < N; q++) {
            float rx = ((q % Wg) + 0.5f) / Wg, ry = ((q / Wg) + 0.5f) / Hg;
            for (int k = 0; k < K; k++) {
                const float *o = a->off + (size_t)q * MK * 2 + (h * K + k) * 2;
                grid[(q * K + k) * 2] = 2.0f * (rx + o[0] / Wg) - 1.0f;
                grid[(q * K + k) * 2 + 1] = 2.0f * (ry + o[1] / Hg) - 1.0f;
            }
        }
        grid_sample_forward(samp, a->value + h * hd, grid, Hg, Wg, hd, P, N * K, hd, 0);
        #pragma omp parallel for
        for (int q = 0; q < N; q++) {
            float *o = a->ao + (size_t)q * P + h * hd;
            memset(o, 0, sizeof(float) * hd);
            for (int k = 0; k < K; k++) {
                float w = a->att[(size_t)q * MK + h * K + k];
                const float *sv = samp + ((size_t)q * K + k) * hd;
                for (int c = 0; c < hd; c++) o[c] += w * sv[c];
            }
        }
    }
    matmul_forward(out, a->ao, p->o_w, p->o_b, N, P, P);
}

void msda_backward(float *dx, MsdaParams *g, const float *dout, MsdaActs *a, const MsdaParams *p, const float *x,
                   const MsdaShape *s) {
    int P = s->P, M = s->M, K = s->K, MK = M * K, hd = P / M, Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    size_t NP = (size_t)N * P;
    memset(a->dao, 0, NP * 4); memset(a->dquery, 0, NP * 4); memset(a->dvalue, 0, NP * 4);
    memset(a->doff, 0, sizeof(float) * N * MK * 2); memset(a->datt, 0, sizeof(float) * N * MK);
    memset(a->dgrid, 0, sizeof(float) * MK * N * 2);
    matmul_backward(a->dao, g->o_w, g->o_b, dout, a->ao, p->o_w, N, P, P);
    float *dlogit = malloc(sizeof(float) * N * MK);
    for (int h = 0; h < M; h++) {
        float *grid = a->grid + (size_t)h * N * K * 2, *samp = a->samp + (size_t)h * N * K * hd;
        float *dsamp = a->dsamp + (size_t)h * N * K * hd, *dgrid = a->dgrid + (size_t)h * N * K * 2;
        #pragma omp parallel for
        for (int q = 0; q < N; q++) {
            const float *d = a->dao + (size_t)q * P + h * hd;
            for (int k = 0; k < K; k++) {
                float w = a->att[(size_t)q * MK + h * K + k];
                const float *sv = samp + ((size_t)q * K + k) * hd;
                float *ds = dsamp + ((size_t)q * K + k) * hd;
                double dw = 0.0;
                for (int c = 0; c < hd; c++) { dw += (double)d[c] * sv[c]; ds[c] = w * d[c]; }
                a->datt[(size_t)q * MK + h * K + k] = (float)dw;
            }
        }
        grid_sample_backward(a->dvalue + h * hd, dgrid, dsamp, a->value + h * hd, grid, Hg, Wg, hd, P, N * K, hd, 0);
        for (int q = 0; q < N; q++)
            for (int k = 0; k < K; k++) {
                float *o = a->doff + (size_t)q * MK * 2 + (h * K + k) * 2;
                o[0] = dgrid[(q * K + k) * 2] * 2.0f / Wg;
                o[1] = dgrid[(q * K + k) * 2 + 1] * 2.0f / Hg;
            }
    }
    memset(dlogit, 0, sizeof(float) * N * MK);
    softmax_rows_backward(dlogit, a->datt, a->att, N * M, K, 1.0f);
    matmul_backward(a->dquery, g->att_w, g->att_b, dlogit, a->query, p->att_w, N, P, MK);
    matmul_backward(a->dquery, g->off_w, g->off_b, a->doff, a->query, p->off_w, N, P, MK * 2);
    matmul_backward(dx, g->v_w, g->v_b, a->dvalue, x, p->v_w, N, P, P);
    residual_forward(dx, dx, a->dquery, NP);
    free(dlogit);
}
