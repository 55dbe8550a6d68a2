// Single-level MSDeformAttn forward/backward (see msda_attn.h).
#include "model/msda_attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

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

int msda_acts_alloc(const Backend *be, MsdaActs *a, const MsdaShape *s) {
    size_t N = (size_t)s->Hg * s->Wg, P = s->P, MK = (size_t)s->M * s->K, hd = P / s->M;
    size_t sizes[] = {N * P, N * P, N * P, N * MK * 2, N * MK, MK * N * 2, MK * N * hd, N * P,
                      N * P, N * P, N * P, N * MK * 2, N * MK, MK * N * hd, MK * N * 2, N * MK};
    float **ptrs[] = {&a->pos, &a->query, &a->value, &a->off, &a->att, &a->grid, &a->samp, &a->ao,
                      &a->dao, &a->dquery, &a->dvalue, &a->doff, &a->datt, &a->dsamp, &a->dgrid, &a->dlogit};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += sizes[i];
    a->be = be;
    float *pos = malloc(sizeof(float) * N * P);
    if (!pos) return err_set("deformable attention (msda): out of memory");
    if (!(a->mem = be->alloc(total))) { free(pos); return -1; }
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = at; at += sizes[i]; }
    sine_positions(pos, s->Hg, s->Wg, s->P);
    be->upload(a->pos, pos, N * P);
    free(pos);
    return 0;
}

void msda_acts_free(MsdaActs *a) {
    if (a->be) a->be->release(a->mem);
    a->mem = NULL;
}

void msda_init_offset_bias(float *off_b, int M, int K) {
    for (int h = 0; h < M; h++) {
        double th = 2.0 * M_PI * h / M, cx = cos(th), cy = sin(th), mx = fmax(fabs(cx), fabs(cy));
        for (int k = 0; k < K; k++) {
            off_b[(h * K + k) * 2] = (float)(cx / mx * (k + 1));
            off_b[(h * K + k) * 2 + 1] = (float)(cy / mx * (k + 1));
        }
    }
}

void msda_forward(const Backend *be, float *out, MsdaActs *a, const MsdaParams *p, const float *x,
                  const MsdaShape *s) {
    int P = s->P, M = s->M, K = s->K, MK = M * K, hd = P / M, Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    be->residual_forward(a->query, x, a->pos, (size_t)N * P);
    be->matmul_forward(a->value, x, p->v_w, p->v_b, N, P, P);
    be->matmul_forward(a->off, a->query, p->off_w, p->off_b, N, P, MK * 2);
    be->matmul_forward(a->att, a->query, p->att_w, p->att_b, N, P, MK);
    be->softmax_rows_forward(a->att, a->att, N * M, K, 1.0f);
    for (int h = 0; h < M; h++) {
        float *grid = a->grid + (size_t)h * N * K * 2, *samp = a->samp + (size_t)h * N * K * hd;
        be->msda_grid_forward(grid, a->off, h, M, K, Hg, Wg);
        be->grid_sample_forward(samp, a->value + h * hd, grid, Hg, Wg, hd, P, N * K, hd, 0);
        be->msda_combine_forward(a->ao, a->att, samp, h, N, M, K, hd, P);
    }
    be->matmul_forward(out, a->ao, p->o_w, p->o_b, N, P, P);
}

void msda_backward(const Backend *be, float *dx, MsdaParams *g, const float *dout, MsdaActs *a, const MsdaParams *p,
                   const float *x, const MsdaShape *s) {
    int P = s->P, M = s->M, K = s->K, MK = M * K, hd = P / M, Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    size_t NP = (size_t)N * P;
    be->zero(a->dao, NP); be->zero(a->dquery, NP); be->zero(a->dvalue, NP);
    be->zero(a->doff, (size_t)N * MK * 2); be->zero(a->datt, (size_t)N * MK);
    be->zero(a->dgrid, (size_t)MK * N * 2);
    be->matmul_backward(a->dao, g->o_w, g->o_b, dout, a->ao, p->o_w, N, P, P);
    for (int h = 0; h < M; h++) {
        float *grid = a->grid + (size_t)h * N * K * 2, *samp = a->samp + (size_t)h * N * K * hd;
        float *dsamp = a->dsamp + (size_t)h * N * K * hd, *dgrid = a->dgrid + (size_t)h * N * K * 2;
        be->msda_combine_backward(a->datt, dsamp, a->dao, a->att, samp, h, N, M, K, hd, P);
        be->grid_sample_backward(a->dvalue + h * hd, dgrid, dsamp, a->value + h * hd, grid, Hg, Wg, hd, P, N * K, hd,
                                 0);
        be->msda_grid_backward(a->doff, dgrid, h, M, K, Hg, Wg);
    }
    be->zero(a->dlogit, (size_t)N * MK);
    be->softmax_rows_backward(a->dlogit, a->datt, a->att, N * M, K, 1.0f);
    be->matmul_backward(a->dquery, g->att_w, g->att_b, a->dlogit, a->query, p->att_w, N, P, MK);
    be->matmul_backward(a->dquery, g->off_w, g->off_b, a->doff, a->query, p->off_w, N, P, MK * 2);
    be->matmul_backward(dx, g->v_w, g->v_b, a->dvalue, x, p->v_w, N, P, P);
    be->residual_forward(dx, dx, a->dquery, NP);
}
