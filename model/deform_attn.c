// DAT v1 deformable self-attention (see deform_attn.h for the math), over the op table (model/backend.h): GEMMs
// batched over heads; the relative-position bias is sampled on the fly in the forward and again in the backward
// rather than stored (model/ops_dat.c).
#include "model/deform_attn.h"

#include <math.h>
#include <string.h>

#include "common/error.h"

size_t dattn_param_count(const DattnShape *s) {
    size_t P = s->P, Cg = P / s->G;
    size_t n = 4 * (P * P + P) + Cg * s->k * s->k + Cg + 2 * Cg + 2 * Cg;
    if (s->rpe) n += (size_t)s->H * (2 * s->Hg - 1) * (2 * s->Wg - 1);
    return n;
}

int dattn_acts_alloc(const Backend *be, DattnActs *a, const DattnShape *s) {
    size_t N = (size_t)s->Hg * s->Wg, P = s->P, G = s->G, Cg = P / G;
    size_t sizes[] = {N * P, G * N * Cg, G * N * Cg, G * N * Cg, G * N, G * N, G * N * 2, G * N * 2, N * P, N * P,
                      N * P, (size_t)s->H * N * N, N * P, N * P, N * P, N * P, N * P, N * P, (size_t)(s->H / G) * N * N,
                      G * N * Cg, G * N * Cg, G * N * Cg, G * N * 2, G * N * 2};
    float **ptrs[] = {&a->q, &a->dw, &a->ln, &a->ge, &a->ln_mean, &a->ln_rstd, &a->off, &a->pos, &a->xs, &a->k,
                      &a->v, &a->att, &a->ao, &a->dao, &a->dq, &a->dxs, &a->dk, &a->dv, &a->datt,
                      &a->dge, &a->dln, &a->ddw, &a->dpos, &a->doff};
    size_t total = 0, n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++) total += sizes[i];
    a->be = be;
    if (!(a->mem = be->alloc(total))) return -1;
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *ptrs[i] = at; at += sizes[i]; }
    return 0;
}

void dattn_acts_free(DattnActs *a) {
    if (a->be) a->be->release(a->mem);
    a->mem = NULL;
}

void dattn_forward(const Backend *be, float *out, DattnActs *a, const DattnParams *p, const float *x,
                   const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg;
    float scale = 1.0f / sqrtf((float)hd);
    long NN = (long)N * N;
    be->matmul_forward(a->q, x, p->q_w, p->q_b, N, P, P);
    for (int g = 0; g < G; g++) {
        size_t go = (size_t)g * N * Cg;
        be->dwconv_forward(a->dw + go, a->q + g * Cg, p->off_dw_w, p->off_dw_b, Hg, Wg, Cg, P, s->k);
        be->layernorm_forward(a->ln + go, a->ln_mean + (size_t)g * N, a->ln_rstd + (size_t)g * N, a->dw + go,
                              p->off_ln_w, p->off_ln_b, N, Cg, 1e-5f);
        be->gelu_forward(a->ge + go, a->ln + go, (size_t)N * Cg);
        float *off = a->off + (size_t)g * N * 2, *pos = a->pos + (size_t)g * N * 2;
        be->matmul_forward(off, a->ge + go, p->off_pw_w, NULL, N, Cg, 2);
        be->dat_positions_forward(pos, off, Hg, Wg, s->range);
        be->grid_sample_forward(a->xs + g * Cg, x + g * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
    }
    be->matmul_forward(a->k, a->xs, p->k_w, p->k_b, N, P, P);
    be->matmul_forward(a->v, a->xs, p->v_w, p->v_b, N, P, P);
    // att_h (N,N) = scale · q_h k_hᵀ, all heads at once
    be->gemm(0, 1, N, N, hd, scale, a->q, P, hd, a->k, P, hd, 0.0f, a->att, N, NN, H);
    if (s->rpe) {
        int RS = (2 * Hg - 1) * (2 * Wg - 1);
        for (int g = 0; g < G; g++)
            be->dat_rpe_softmax_forward(a->att + g * hpg * NN, p->rpe + (size_t)g * hpg * RS,
                                        a->pos + (size_t)g * N * 2, hpg, Hg, Wg);
    } else {
        be->softmax_rows_forward(a->att, a->att, H * N, N, 1.0f);
    }
    // ao_h (N,hd) = att_h v_h
    be->gemm(0, 0, N, hd, N, 1.0f, a->att, N, NN, a->v, P, hd, 0.0f, a->ao, P, hd, H);
    be->matmul_forward(out, a->ao, p->o_w, p->o_b, N, P, P);
}

void dattn_backward(const Backend *be, float *dx, DattnParams *gr, const float *dout, DattnActs *a,
                    const DattnParams *p, const float *x, const DattnShape *s) {
    int P = s->P, H = s->H, G = s->G, Cg = P / G, hd = P / H, hpg = H / G;
    int Hg = s->Hg, Wg = s->Wg, N = Hg * Wg, RS = (2 * Hg - 1) * (2 * Wg - 1);
    float scale = 1.0f / sqrtf((float)hd);
    size_t NP = (size_t)N * P;
    long NN = (long)N * N;
    be->zero(a->dao, NP); be->zero(a->dq, NP); be->zero(a->dxs, NP); be->zero(a->dk, NP); be->zero(a->dv, NP);
    be->zero(a->dpos, (size_t)G * N * 2);
    be->matmul_backward(a->dao, gr->o_w, gr->o_b, dout, a->ao, p->o_w, N, P, P);
    for (int g = 0; g < G; g++) {
        int h0 = g * hpg;
        const float *att = a->att + h0 * NN;
        // the group's heads: datt = dao_h v_hᵀ; dv_h += att_hᵀ dao_h; softmax backward in place
        be->gemm(0, 1, N, N, hd, 1.0f, a->dao + h0 * hd, P, hd, a->v + h0 * hd, P, hd, 0.0f, a->datt, N, NN, hpg);
        be->gemm(1, 0, N, hd, N, 1.0f, att, N, NN, a->dao + h0 * hd, P, hd, 1.0f, a->dv + h0 * hd, P, hd, hpg);
        be->softmax_rows_backward_inplace(a->datt, att, hpg * N, N);
        if (s->rpe)
            be->dat_rpe_backward(gr->rpe + (size_t)g * hpg * RS, a->dpos + (size_t)g * N * 2, a->datt,
                                 p->rpe + (size_t)g * hpg * RS, a->pos + (size_t)g * N * 2, hpg, Hg, Wg);
        // dq_h += scale dlogits k_h; dk_h += scale dlogitsᵀ q_h
        be->gemm(0, 0, N, hd, N, scale, a->datt, N, NN, a->k + h0 * hd, P, hd, 1.0f, a->dq + h0 * hd, P, hd, hpg);
        be->gemm(1, 0, N, hd, N, scale, a->datt, N, NN, a->q + h0 * hd, P, hd, 1.0f, a->dk + h0 * hd, P, hd, hpg);
    }
    be->matmul_backward(a->dxs, gr->k_w, gr->k_b, a->dk, a->xs, p->k_w, N, P, P);
    be->matmul_backward(a->dxs, gr->v_w, gr->v_b, a->dv, a->xs, p->v_w, N, P, P);
    for (int gi = 0; gi < G; gi++) {
        size_t go = (size_t)gi * N * Cg;
        float *pos = a->pos + (size_t)gi * N * 2, *dpos = a->dpos + (size_t)gi * N * 2;
        float *off = a->off + (size_t)gi * N * 2, *doff = a->doff + (size_t)gi * N * 2;
        be->grid_sample_backward(dx + gi * Cg, dpos, a->dxs + gi * Cg, x + gi * Cg, pos, Hg, Wg, Cg, P, N, P, 1);
        be->dat_positions_backward(doff, dpos, off, Hg, Wg, s->range);
        be->zero(a->dge + go, (size_t)N * Cg);
        be->zero(a->dln + go, (size_t)N * Cg);
        be->zero(a->ddw + go, (size_t)N * Cg);
        be->matmul_backward(a->dge + go, gr->off_pw_w, NULL, doff, a->ge + go, p->off_pw_w, N, Cg, 2);
        be->gelu_backward(a->dln + go, a->ln + go, a->dge + go, (size_t)N * Cg);
        be->layernorm_backward(a->ddw + go, gr->off_ln_w, gr->off_ln_b, a->dln + go, a->dw + go, p->off_ln_w,
                               a->ln_mean + (size_t)gi * N, a->ln_rstd + (size_t)gi * N, N, Cg);
        be->dwconv_backward(a->dq + gi * Cg, gr->off_dw_w, gr->off_dw_b, a->ddw + go, a->q + gi * Cg, p->off_dw_w,
                            Hg, Wg, Cg, P, s->k);
    }
    be->matmul_backward(dx, gr->q_w, gr->q_b, a->dq, x, p->q_w, N, P, P);
}
