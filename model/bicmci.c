// Bi-CMCI forward/backward for one stage and one image (math in bicmci.h), over the op table (model/backend.h).
// Per-head products are GEMMs batched over the heads; with 2 text tokens every cross-attention matrix is (2, N).
#include "model/bicmci.h"

#include <math.h>
#include <string.h>

#include "common/error.h"

typedef struct { float **ptr; size_t n; } Slot;

int bicmci_acts_alloc(const Backend *be, BicmciActs *a, const KanoclipConfig *cfg) {
    memset(a, 0, sizeof *a);
    a->be = be;
    size_t N = (size_t)cfg->grid_h * cfg->grid_w, P = cfg->width, H = cfg->heads;
    a->N = (int)N; a->P = (int)P; a->H = (int)H;
    int full = cfg->bicmci_full;
    size_t R = N > 2 ? N : 2;
    Slot s[] = {
        {&a->t0, 2 * P}, {&a->tln, 2 * P}, {&a->tln_m, 2}, {&a->tln_r, 2}, {&a->fln, N * P}, {&a->fln_m, N},
        {&a->fln_r, N}, {&a->rvt, 4 * P}, {&a->rvp, 2 * N * P}, {&a->A, 2 * H * N}, {&a->att_t, 2 * H * N},
        {&a->att_p, 2 * H * N}, {&a->ot, 2 * P}, {&a->op, N * P}, {&a->t1, 2 * P}, {&a->f1, N * P},
        {&a->t1a, full ? 2 * P : 0}, {&a->f1a, full ? N * P : 0}, {&a->sln, 2 * P}, {&a->sln_m, 2},
        {&a->sln_r, 2}, {&a->qkv, 6 * P}, {&a->satt, 4 * H}, {&a->sao, 2 * P}, {&a->t2, 2 * P},
        {&a->t2a, full ? 2 * P : 0}, {&a->dln, N * P}, {&a->dln_m, N}, {&a->dln_r, N}, {&a->dout, N * P},
        {&a->f2, N * P}, {&a->f2a, full ? N * P : 0},
        {&a->mlp_ca_t.ln, full ? 2 * P : 0}, {&a->mlp_ca_t.mean, full ? 2 : 0}, {&a->mlp_ca_t.rstd, full ? 2 : 0},
        {&a->mlp_ca_t.h, full ? 8 * P : 0}, {&a->mlp_ca_t.hg, full ? 8 * P : 0},
        {&a->mlp_sa_t.ln, full ? 2 * P : 0}, {&a->mlp_sa_t.mean, full ? 2 : 0}, {&a->mlp_sa_t.rstd, full ? 2 : 0},
        {&a->mlp_sa_t.h, full ? 8 * P : 0}, {&a->mlp_sa_t.hg, full ? 8 * P : 0},
        {&a->mlp_ca_p.ln, full ? N * P : 0}, {&a->mlp_ca_p.mean, full ? N : 0}, {&a->mlp_ca_p.rstd, full ? N : 0},
        {&a->mlp_ca_p.h, full ? 4 * N * P : 0}, {&a->mlp_ca_p.hg, full ? 4 * N * P : 0},
        {&a->mlp_d_p.ln, full ? N * P : 0}, {&a->mlp_d_p.mean, full ? N : 0}, {&a->mlp_d_p.rstd, full ? N : 0},
        {&a->mlp_d_p.h, full ? 4 * N * P : 0}, {&a->mlp_d_p.hg, full ? 4 * N * P : 0},
        {&a->fn, N * P}, {&a->fnorm, N}, {&a->tn, 2 * P}, {&a->tnorm, 2}, {&a->probs, 2 * N},
        {&a->dF, N * P}, {&a->dT, 2 * P}, {&a->d_fln, N * P}, {&a->d_rvp, 2 * N * P}, {&a->d_op, N * P},
        {&a->d_dln, N * P}, {&a->d_mlp_h, full ? 4 * R * P : 0}, {&a->d_mlp_ln, full ? R * P : 0},
        {&a->d_tln, 2 * P}, {&a->d_rvt, 4 * P}, {&a->d_ot, 2 * P}, {&a->d_sln, 2 * P}, {&a->d_qkv, 6 * P},
        {&a->d_sao, 2 * P}, {&a->d_satt, 4 * H}, {&a->dA, 2 * H * N}, {&a->d_attp, 2 * H * N},
        {&a->d_scores, 2 * H * N}, {&a->d_logits, 2 * N},
        {&a->d_fn, N * P}, {&a->d_tn, 2 * P},
    };
    size_t total = 0, n = sizeof s / sizeof s[0];
    for (size_t i = 0; i < n; i++) total += s[i].n;
    if (!(a->mem = be->alloc(total))) return -1;
    float *at = a->mem;
    for (size_t i = 0; i < n; i++) { *s[i].ptr = s[i].n ? at : NULL; at += s[i].n; }
    if (cfg->bicmci && cfg->deform == DEFORM_DAT) {
        DattnShape ds = kanoclip_dattn_shape(cfg);
        if (dattn_acts_alloc(be, &a->dat, &ds)) { bicmci_acts_free(a); return -1; }
    }
    if (cfg->bicmci && cfg->deform == DEFORM_MSDA) {
        MsdaShape ms = kanoclip_msda_shape(cfg);
        if (msda_acts_alloc(be, &a->msda, &ms)) { bicmci_acts_free(a); return -1; }
    }
    return 0;
}

void bicmci_acts_free(BicmciActs *a) {
    if (a->be) a->be->release(a->mem);
    dattn_acts_free(&a->dat);
    msda_acts_free(&a->msda);
    memset(a, 0, sizeof *a);
}

// out (R,P) = x (R,P) + fc2(GELU(fc1(LN(x))))
static void mlp_forward(const Backend *be, float *out, MlpActs *m, const MlpParams *p, const float *x, int R, int P) {
    be->layernorm_forward(m->ln, m->mean, m->rstd, x, p->ln_w, p->ln_b, R, P, 1e-5f);
    be->matmul_forward(m->h, m->ln, p->fc1_w, p->fc1_b, R, P, 4 * P);
    be->gelu_forward(m->hg, m->h, (size_t)R * 4 * P);
    be->matmul_forward(out, m->hg, p->fc2_w, p->fc2_b, R, 4 * P, P);
    be->residual_forward(out, out, x, (size_t)R * P);
}

// d (R,P): gradient of the block's output on entry, of its input on exit (residual + MLP path).
static void mlp_backward(const Backend *be, float *d, MlpParams *g, const MlpActs *m, const MlpParams *p,
                         const float *x, int R, int P, float *dh, float *dln) {
    be->zero(dh, (size_t)R * 4 * P);
    be->zero(dln, (size_t)R * P);
    be->matmul_backward(dh, g->fc2_w, g->fc2_b, d, m->hg, p->fc2_w, R, 4 * P, P);
    be->act_backward_inplace(dh, m->h, (size_t)R * 4 * P, 2);  // exact GELU
    be->matmul_backward(dln, g->fc1_w, g->fc1_b, dh, m->ln, p->fc1_w, R, P, 4 * P);
    be->layernorm_backward(d, g->ln_w, g->ln_b, dln, x, p->ln_w, m->mean, m->rstd, R, P);
}

// probs (N,2) = softmax_2(norm(F) norm(T)ᵀ / tau)
static void maps_forward(const Backend *be, BicmciActs *a, const float *F, const float *T, int N, int P, float tau) {
    be->l2norm_rows_forward(a->fn, a->fnorm, F, N, P);
    be->l2norm_rows_forward(a->tn, a->tnorm, T, 2, P);
    be->gemm(0, 1, N, 2, P, 1.0f / tau, a->fn, P, 0, a->tn, P, 0, 0.0f, a->probs, 2, 0, 1);
    be->softmax_rows_forward(a->probs, a->probs, N, 2, 1.0f);
}

// dF (N,P) += ..., dT (2,P) += ... from dprobs; dF may be NULL (frozen features).
static void maps_backward(const Backend *be, float *dF, float *dT, BicmciActs *a, const float *dprobs, int N, int P,
                          float tau) {
    be->zero(a->d_logits, (size_t)N * 2);
    be->softmax_rows_backward(a->d_logits, dprobs, a->probs, N, 2, 1.0f);
    be->gemm(1, 0, 2, P, N, 1.0f / tau, a->d_logits, 2, 0, a->fn, P, 0, 0.0f, a->d_tn, P, 0, 1);
    be->l2norm_rows_backward(dT, a->d_tn, a->tn, a->tnorm, 2, P);
    if (dF) {
        be->gemm(0, 0, N, P, 2, 1.0f / tau, a->d_logits, 2, 0, a->tn, P, 0, 0.0f, a->d_fn, P, 0, 1);
        be->l2norm_rows_backward(dF, a->d_fn, a->fn, a->fnorm, N, P);
    }
}

void bicmci_forward(const Backend *be, BicmciActs *a, const BicmciParams *p, const KanoclipConfig *cfg, const float *F,
                    const float *T) {
    int N = a->N, P = a->P, H = a->H, hd = P / H;
    long N2 = 2L * N;
    float scale = 1.0f / sqrtf((float)hd);
    if (!cfg->bicmci) { maps_forward(be, a, F, T, N, P, cfg->tau); return; }
    be->copy(a->t0, T, (size_t)2 * P);
    // 1. bi-directional cross-attention with one shared similarity matrix per head
    be->layernorm_forward(a->tln, a->tln_m, a->tln_r, T, p->ln_t_w, p->ln_t_b, 2, P, 1e-5f);
    be->layernorm_forward(a->fln, a->fln_m, a->fln_r, F, p->ln_p_w, p->ln_p_b, N, P, 1e-5f);
    be->matmul_forward(a->rvt, a->tln, p->rv_t_w, p->rv_t_b, 2, P, 2 * P);
    be->matmul_forward(a->rvp, a->fln, p->rv_p_w, p->rv_p_b, N, P, 2 * P);
    // A_h (2,N) = scale · R_t,h R_p,hᵀ; att_t softmax over patches, att_p over the 2 text tokens
    be->gemm(0, 1, 2, N, hd, scale, a->rvt, 2 * P, hd, a->rvp, 2 * P, hd, 0.0f, a->A, N, N2, H);
    be->softmax_rows_forward(a->att_t, a->A, 2 * H, N, 1.0f);
    for (int h = 0; h < H; h++) be->softmax_pair_forward(a->att_p + h * N2, a->A + h * N2, N);
    // ot_h = att_t (2,N) · V_p,h ; op_h = att_pᵀ (N,2) · V_t,h
    be->gemm(0, 0, 2, hd, N, 1.0f, a->att_t, N, N2, a->rvp + P, 2 * P, hd, 0.0f, a->ot, P, hd, H);
    be->gemm(1, 0, N, hd, 2, 1.0f, a->att_p, N, N2, a->rvt + P, 2 * P, hd, 0.0f, a->op, P, hd, H);
    int full = cfg->bicmci_full;
    float *t1 = full ? a->t1a : a->t1, *f1 = full ? a->f1a : a->f1;
    be->matmul_forward(t1, a->ot, p->o_t_w, p->o_t_b, 2, P, P);
    be->residual_forward(t1, t1, T, (size_t)2 * P);
    be->matmul_forward(f1, a->op, p->o_p_w, p->o_p_b, N, P, P);
    be->residual_forward(f1, f1, F, (size_t)N * P);
    if (full) {
        mlp_forward(be, a->t1, &a->mlp_ca_t, &p->mlp_ca_t, a->t1a, 2, P);
        mlp_forward(be, a->f1, &a->mlp_ca_p, &p->mlp_ca_p, a->f1a, N, P);
    }
    // 2. self-attention on the two text tokens
    float *t2 = full ? a->t2a : a->t2;
    be->layernorm_forward(a->sln, a->sln_m, a->sln_r, a->t1, p->sa_ln_w, p->sa_ln_b, 2, P, 1e-5f);
    be->matmul_forward(a->qkv, a->sln, p->sa_qkv_w, p->sa_qkv_b, 2, P, 3 * P);
    be->attention_forward(a->sao, a->satt, a->qkv, a->qkv + P, a->qkv + 2 * P, 1, 2, 2, H, hd, 3 * P, 3 * P, P, 0,
                          scale);
    be->matmul_forward(t2, a->sao, p->sa_o_w, p->sa_o_b, 2, P, P);
    be->residual_forward(t2, t2, a->t1, (size_t)2 * P);
    if (full) mlp_forward(be, a->t2, &a->mlp_sa_t, &p->mlp_sa_t, a->t2a, 2, P);
    // 3. deformable self-attention on the patch grid
    be->layernorm_forward(a->dln, a->dln_m, a->dln_r, a->f1, p->d_ln_w, p->d_ln_b, N, P, 1e-5f);
    if (cfg->deform == DEFORM_MSDA) {
        MsdaShape ms = kanoclip_msda_shape(cfg);
        msda_forward(be, a->dout, &a->msda, &p->msda, a->dln, &ms);
    } else {
        DattnShape ds = kanoclip_dattn_shape(cfg);
        dattn_forward(be, a->dout, &a->dat, &p->dat, a->dln, &ds);
    }
    float *f2 = full ? a->f2a : a->f2;
    be->residual_forward(f2, a->f1, a->dout, (size_t)N * P);
    if (full) mlp_forward(be, a->f2, &a->mlp_d_p, &p->mlp_d_p, a->f2a, N, P);
    // 4. cosine maps with the updated (or the original) text
    maps_forward(be, a, a->f2, cfg->maps_updated_text ? a->t2 : T, N, P, cfg->tau);
}

void bicmci_backward(const Backend *be, float *dT, BicmciParams *g, const float *dprobs, BicmciActs *a,
                     const BicmciParams *p, const KanoclipConfig *cfg, const float *F, const float *T) {
    int N = a->N, P = a->P, H = a->H, hd = P / H, full = cfg->bicmci_full;
    long N2 = 2L * N;
    float scale = 1.0f / sqrtf((float)hd);
    if (!cfg->bicmci) { maps_backward(be, NULL, dT, a, dprobs, N, P, cfg->tau); return; }
    float *dF = a->dF, *dTs = a->dT;
    be->zero(dF, (size_t)N * P);
    be->zero(dTs, (size_t)2 * P);
    maps_backward(be, dF, cfg->maps_updated_text ? dTs : dT, a, dprobs, N, P, cfg->tau);
    // 3. DAttn (residual): dF passes through; the branch adds LN(f1) gradients
    if (full) mlp_backward(be, dF, &g->mlp_d_p, &a->mlp_d_p, &p->mlp_d_p, a->f2a, N, P, a->d_mlp_h, a->d_mlp_ln);
    be->zero(a->d_dln, (size_t)N * P);
    if (cfg->deform == DEFORM_MSDA) {
        MsdaShape ms = kanoclip_msda_shape(cfg);
        msda_backward(be, a->d_dln, &g->msda, dF, &a->msda, &p->msda, a->dln, &ms);
    } else {
        DattnShape ds = kanoclip_dattn_shape(cfg);
        dattn_backward(be, a->d_dln, &g->dat, dF, &a->dat, &p->dat, a->dln, &ds);
    }
    be->layernorm_backward(dF, g->d_ln_w, g->d_ln_b, a->d_dln, a->f1, p->d_ln_w, a->dln_m, a->dln_r, N, P);
    // 2. text self-attention
    if (full) mlp_backward(be, dTs, &g->mlp_sa_t, &a->mlp_sa_t, &p->mlp_sa_t, a->t2a, 2, P, a->d_mlp_h, a->d_mlp_ln);
    be->zero(a->d_sao, (size_t)2 * P);
    be->zero(a->d_qkv, (size_t)6 * P);
    be->zero(a->d_sln, (size_t)2 * P);
    be->matmul_backward(a->d_sao, g->sa_o_w, g->sa_o_b, dTs, a->sao, p->sa_o_w, 2, P, P);
    be->attention_backward(a->d_qkv, a->d_qkv + P, a->d_qkv + 2 * P, a->d_satt, a->d_sao, a->satt, a->qkv,
                           a->qkv + P, a->qkv + 2 * P, 1, 2, 2, H, hd, 3 * P, 3 * P, P, scale);
    be->matmul_backward(a->d_sln, g->sa_qkv_w, g->sa_qkv_b, a->d_qkv, a->sln, p->sa_qkv_w, 2, P, 3 * P);
    be->layernorm_backward(dTs, g->sa_ln_w, g->sa_ln_b, a->d_sln, a->t1, p->sa_ln_w, a->sln_m, a->sln_r, 2, P);
    // 1. cross-attention
    if (full) {
        mlp_backward(be, dTs, &g->mlp_ca_t, &a->mlp_ca_t, &p->mlp_ca_t, a->t1a, 2, P, a->d_mlp_h, a->d_mlp_ln);
        mlp_backward(be, dF, &g->mlp_ca_p, &a->mlp_ca_p, &p->mlp_ca_p, a->f1a, N, P, a->d_mlp_h, a->d_mlp_ln);
    }
    be->zero(a->d_ot, (size_t)2 * P);
    be->zero(a->d_op, (size_t)N * P);
    be->matmul_backward(a->d_ot, g->o_t_w, g->o_t_b, dTs, a->ot, p->o_t_w, 2, P, P);
    be->matmul_backward(a->d_op, g->o_p_w, g->o_p_b, dF, a->op, p->o_p_w, N, P, P);
    be->zero(a->d_rvt, (size_t)4 * P);
    be->zero(a->d_rvp, (size_t)2 * N * P);
    const float *Vt = a->rvt + P, *Vp = a->rvp + P;
    float *dVt = a->d_rvt + P, *dVp = a->d_rvp + P;
    // per head: datt_t = d_ot,h V_p,hᵀ (2,N); datt_p = V_t,h d_op,hᵀ (2,N)
    be->gemm(0, 1, 2, N, hd, 1.0f, a->d_ot, P, hd, Vp, 2 * P, hd, 0.0f, a->dA, N, N2, H);
    be->gemm(0, 1, 2, N, hd, 1.0f, Vt, 2 * P, hd, a->d_op, P, hd, 0.0f, a->d_attp, N, N2, H);
    // dV_p += att_tᵀ d_ot; dV_t += att_p d_op
    be->gemm(1, 0, N, hd, 2, 1.0f, a->att_t, N, N2, a->d_ot, P, hd, 1.0f, dVp, 2 * P, hd, H);
    be->gemm(0, 0, 2, hd, N, 1.0f, a->att_p, N, N2, a->d_op, P, hd, 1.0f, dVt, 2 * P, hd, H);
    // d_scores = softmax_N backward of att_t + softmax_2 backward of att_p
    be->zero(a->d_scores, (size_t)2 * H * N);
    be->softmax_rows_backward(a->d_scores, a->dA, a->att_t, 2 * H, N, 1.0f);
    for (int h = 0; h < H; h++) be->softmax_pair_backward(a->d_scores + h * N2, a->d_attp + h * N2, a->att_p + h * N2, N);
    // dR_t += scale d_scores R_p; dR_p += scale d_scoresᵀ R_t
    be->gemm(0, 0, 2, hd, N, scale, a->d_scores, N, N2, a->rvp, 2 * P, hd, 1.0f, a->d_rvt, 2 * P, hd, H);
    be->gemm(1, 0, N, hd, 2, scale, a->d_scores, N, N2, a->rvt, 2 * P, hd, 1.0f, a->d_rvp, 2 * P, hd, H);
    be->zero(a->d_tln, (size_t)2 * P);
    be->matmul_backward(a->d_tln, g->rv_t_w, g->rv_t_b, a->d_rvt, a->tln, p->rv_t_w, 2, P, 2 * P);
    be->zero(a->d_fln, (size_t)N * P);
    be->matmul_backward(a->d_fln, g->rv_p_w, g->rv_p_b, a->d_rvp, a->fln, p->rv_p_w, N, P, 2 * P);
    be->layernorm_backward(dTs, g->ln_t_w, g->ln_t_b, a->d_tln, T, p->ln_t_w, a->tln_m, a->tln_r, 2, P);
    be->layernorm_backward(NULL, g->ln_p_w, g->ln_p_b, a->d_fln, F, p->ln_p_w, a->fln_m, a->fln_r, N, P);
    be->axpy(dT, dTs, 1.0f, (size_t)2 * P);
}
