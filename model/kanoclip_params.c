// Parameter table of KAnoCLIP: one walk over the modules, in a fixed order, assigns every tensor its offset.
#include "model/kanoclip_params.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    KanoLayout *L;
    float *base;
    char prefix[32];
} Walker;

static float *take(Walker *w, const char *name, int d0, int d1, int d2) {
    KanoLayout *L = w->L;
    KanoTensor *t = &L->t[L->n];
    snprintf(t->name, sizeof t->name, "%s%s", w->prefix, name);
    t->ndim = d2 ? 3 : d1 ? 2 : 1;
    t->shape[0] = d0; t->shape[1] = d1; t->shape[2] = d2;
    t->size = (size_t)d0 * (d1 ? d1 : 1) * (d2 ? d2 : 1);
    t->offset = L->total;
    L->total += t->size;
    L->n++;
    return w->base ? w->base + t->offset : NULL;
}

static void take_mlp(Walker *w, MlpParams *m, const char *pre, int P) {
    char n[48];
#define T(field, d0, d1) (snprintf(n, sizeof n, "%s.%s", pre, #field), m->field = take(w, n, d0, d1, 0))
    T(ln_w, P, 0); T(ln_b, P, 0); T(fc1_w, 4 * P, P); T(fc1_b, 4 * P, 0); T(fc2_w, P, 4 * P); T(fc2_b, P, 0);
#undef T
}

DattnShape kanoclip_dattn_shape(const KanoclipConfig *cfg) {
    DattnShape s = {cfg->width, cfg->heads, cfg->dat_groups, cfg->grid_h, cfg->grid_w, cfg->dat_kernel,
                    cfg->dat_offset_range, cfg->dat_rpe};
    return s;
}

void kanoclip_layout(KanoLayout *L, KanoParams *v, const KanoclipConfig *cfg, float *base) {
    memset(L, 0, sizeof *L);
    KanoParams dummy;
    if (!v) v = &dummy;
    memset(v, 0, sizeof *v);
    Walker w = {L, base, ""};
    int P = cfg->width, TW = cfg->text_width;
    if (cfg->knpl) {
        v->ctx_n = take(&w, "knpl.ctx_n", cfg->n_ctx, TW, 0);
        v->ctx_a = take(&w, "knpl.ctx_a", cfg->n_ctx, TW, 0);
        if (cfg->deep_prompts) v->deep = take(&w, "knpl.deep", cfg->deep_depth - 1, cfg->deep_tokens, TW);
    }
    if (cfg->adapter) {
        AdapterParams *a = &v->adapter;
        int R = P / cfg->adapter_ratio;
        a->ln_w = take(&w, "adapter.ln_w", P, 0, 0);
        a->ln_b = take(&w, "adapter.ln_b", P, 0, 0);
        a->down_w = take(&w, "adapter.down_w", R, P, 0);
        a->down_b = take(&w, "adapter.down_b", R, 0, 0);
        a->up_w = take(&w, "adapter.up_w", P, R, 0);
        a->up_b = take(&w, "adapter.up_b", P, 0, 0);
    }
    if (cfg->bicmci) {
        int Cg = P / cfg->dat_groups, k = cfg->dat_kernel;
        for (int s = 0; s < cfg->n_stages; s++) {
            BicmciParams *b = &v->stage[s];
            snprintf(w.prefix, sizeof w.prefix, "stage%d.", s);
#define T(field, d0, d1) (b->field = take(&w, #field, d0, d1, 0))
            T(ln_t_w, P, 0); T(ln_t_b, P, 0); T(ln_p_w, P, 0); T(ln_p_b, P, 0);
            T(rv_t_w, 2 * P, P); T(rv_t_b, 2 * P, 0); T(rv_p_w, 2 * P, P); T(rv_p_b, 2 * P, 0);
            T(o_t_w, P, P); T(o_t_b, P, 0); T(o_p_w, P, P); T(o_p_b, P, 0);
            T(sa_ln_w, P, 0); T(sa_ln_b, P, 0); T(sa_qkv_w, 3 * P, P); T(sa_qkv_b, 3 * P, 0);
            T(sa_o_w, P, P); T(sa_o_b, P, 0);
            T(d_ln_w, P, 0); T(d_ln_b, P, 0);
#undef T
#define T(field, d0, d1) (b->dat.field = take(&w, "dat." #field, d0, d1, 0))
            T(q_w, P, P); T(q_b, P, 0); T(k_w, P, P); T(k_b, P, 0); T(v_w, P, P); T(v_b, P, 0);
            T(o_w, P, P); T(o_b, P, 0);
            T(off_dw_w, Cg, k * k); T(off_dw_b, Cg, 0); T(off_ln_w, Cg, 0); T(off_ln_b, Cg, 0);
            T(off_pw_w, 2, Cg);
#undef T
            if (cfg->dat_rpe) b->dat.rpe = take(&w, "dat.rpe", cfg->heads, 2 * cfg->grid_h - 1, 2 * cfg->grid_w - 1);
            if (cfg->bicmci_full) {
                take_mlp(&w, &b->mlp_ca_t, "mlp_ca_t", P);
                take_mlp(&w, &b->mlp_ca_p, "mlp_ca_p", P);
                take_mlp(&w, &b->mlp_sa_t, "mlp_sa_t", P);
                take_mlp(&w, &b->mlp_d_p, "mlp_d_p", P);
            }
        }
    }
}

void kanoclip_views(KanoParams *views, const KanoclipConfig *cfg, float *base) {
    KanoLayout scratch;
    kanoclip_layout(&scratch, views, cfg, base);
}
