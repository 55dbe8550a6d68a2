// KAnoCLIP model: parameters, the training step (forward + backward + Adam) and evaluation (see kanoclip.h).
#include "model/kanoclip.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/adam.h"
#include "model/conv_adapter.h"
#include "model/kanoclip_internal.h"
#include "model/kanoclip_losses.h"
#include "model/ops.h"
#include "model/ops_extra.h"
#include "model/ops_infer.h"

// ---- seeded PRNG (xoshiro256**, seeded through splitmix64) ----

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4]) { return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double rng_normal(uint64_t s[4]) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

// N(0, std²) truncated to ±2 std (timm's trunc_normal_ bounds in units of std)
static double rng_trunc_normal(uint64_t s[4]) {
    for (;;) {
        double x = rng_normal(s);
        if (fabs(x) <= 2.0) return x;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

// Initialisation by tensor role (docs/reference/kanoclip-components.md §4.3, §5.4 item 5, §6.2): contexts N(0, ctx_std²);
// LayerNorm weight 1, every bias 0; rpe trunc-normal 0.01; output projections zero when zero_init_out; the
// adapter's W_up zero with the residual switch; other weights trunc-normal init_std.
static void init_params(Kanoclip *m) {
    const KanoclipConfig *c = &m->cfg;
    uint64_t *s = m->rng;
    for (int i = 0; i < m->L.n; i++) {
        const KanoTensor *t = &m->L.t[i];
        float *x = m->params + t->offset;
        const char *nm = t->name;
        double std = c->init_std;
        int zero = 0, one = 0, plain_normal = 0;
        if (strstr(nm, "knpl.")) { std = c->ctx_init_std; plain_normal = 1; }
        else if (ends_with(nm, "ln_w")) one = 1;
        else if (ends_with(nm, "_b")) zero = 1;
        else if (ends_with(nm, "dat.rpe")) std = 0.01;
        else if (c->zero_init_out && (ends_with(nm, ".o_t_w") || ends_with(nm, ".o_p_w") ||
                                      ends_with(nm, ".sa_o_w") || ends_with(nm, "dat.o_w") ||
                                      ends_with(nm, "msda.o_w"))) zero = 1;
        else if (ends_with(nm, "msda.off_w") || ends_with(nm, "msda.att_w")) zero = 1;
        else if (c->adapter_residual && strcmp(nm, "adapter.up_w") == 0) zero = 1;
        if (strstr(nm, "msda.") && (ends_with(nm, ".v_w") || ends_with(nm, ".o_w")) && !zero) {
            // Deformable DETR: Xavier-uniform value and output projections
            double bound = sqrt(6.0 / (t->shape[0] + t->shape[1]));
            for (size_t j = 0; j < t->size; j++) x[j] = (float)(bound * (2.0 * rng_uniform(s) - 1.0));
            continue;
        }
        for (size_t j = 0; j < t->size; j++)
            x[j] = zero ? 0.0f : one ? 1.0f : (float)(std * (plain_normal ? rng_normal(s) : rng_trunc_normal(s)));
        if (ends_with(nm, "msda.off_b")) msda_init_offset_bias(x, c->heads, c->msda_points);
    }
}

Kanoclip *kanoclip_new(const KanoclipConfig *cfg, int n_classes, const ClipText *text) {
    if (kanoclip_config_check(cfg)) return NULL;
    if (n_classes < 1) { err_set("kanoclip: %d classes", n_classes); return NULL; }
    if (cfg->knpl) {
        if (!text) { err_set("kanoclip: KnPL needs the text tower"); return NULL; }
        if (cfg->deep_prompts && cfg->deep_depth > text->shape.layers) {
            err_set("method.deep_depth: %d exceeds the text tower's %d layers", cfg->deep_depth, text->shape.layers);
            return NULL;
        }
        if (text->shape.width != cfg->text_width || text->proj_dim != cfg->width) {
            err_set("kanoclip: text tower width %d / projection %d differ from method.text_width %d / width %d",
                    text->shape.width, text->proj_dim, cfg->text_width, cfg->width);
            return NULL;
        }
    }
    Kanoclip *m = calloc(1, sizeof *m);
    if (!m) { err_set("kanoclip: out of memory"); return NULL; }
    m->cfg = *cfg;
    m->n_classes = n_classes;
    m->text = cfg->knpl ? text : NULL;
    kanoclip_layout(&m->L, NULL, cfg, NULL);
    m->block = calloc(4 * m->L.total + 1, sizeof(float));
    if (!m->block) { err_set("kanoclip: out of memory for %zu parameters", m->L.total); free(m); return NULL; }
    m->params = m->block; m->grads = m->params + m->L.total;
    m->adam_m = m->grads + m->L.total; m->adam_v = m->adam_m + m->L.total;
    kanoclip_views(&m->p, cfg, m->params);
    kanoclip_views(&m->g, cfg, m->grads);
    uint64_t x = cfg->seed;
    for (int i = 0; i < 4; i++) m->rng[i] = splitmix64(&x);
    init_params(m);
    if (bicmci_acts_alloc(&m->acts, cfg)) { kanoclip_free(m); return NULL; }
    if (m->text && cfg->deep_prompts) {
        if (!(m->deep_run = deep_text_run_new(m->text))) { kanoclip_free(m); return NULL; }
    } else if (m->text && !(m->run = text_tower_new(m->text, 1, cfg->device, cfg->precision))) {
        kanoclip_free(m);
        return NULL;
    }
    return m;
}

void kanoclip_free(Kanoclip *m) {
    if (!m) return;
    bicmci_acts_free(&m->acts);
    if (m->run) text_tower_free(m->run);
    deep_text_run_free(m->deep_run);
    free(m->block); free(m->kb); free(m->fixed); free(m->ids); free(m->eot); free(m->tunit);
    free(m);
}

int kanoclip_prompt_ids(int *ids, int *eot, int ctx_len, int n_ctx, const int *words, int n_words) {
    int n = 1 + n_ctx + n_words + 1;
    if (n > ctx_len) return err_set("prompt: %d tokens (context %d + words %d) exceed the context length %d", n, n_ctx, n_words, ctx_len);
    memset(ids, 0, sizeof(int) * ctx_len);
    ids[0] = 49406;
    for (int i = 0; i < n_ctx; i++) ids[1 + i] = 343;  // "x" (AnomalyCLIP's X placeholders; replaced anyway)
    for (int i = 0; i < n_words; i++) ids[1 + n_ctx + i] = words[i];
    ids[n - 1] = 49407;
    *eot = n - 1;
    return 0;
}

int kanoclip_set_prompts(Kanoclip *m, const KanoPrompts *pr) {
    if (!m->text) return err_set("kanoclip: prompts given but KnPL is off");
    if (pr->n_classes != m->n_classes || pr->ctx_len != m->text->context_length)
        return err_set("kanoclip: prompts for %d classes x %d tokens, model has %d classes, context %d", pr->n_classes,
                       pr->ctx_len, m->n_classes, m->text->context_length);
    int A = pr->n_adj > 0 ? pr->n_adj : 1;
    size_t n = (size_t)pr->n_classes * 2 * A;
    free(m->ids); free(m->eot);
    m->ids = malloc(sizeof(int) * n * pr->ctx_len);
    m->eot = malloc(sizeof(int) * n);
    memcpy(m->ids, pr->ids, sizeof(int) * n * pr->ctx_len);
    memcpy(m->eot, pr->eot, sizeof(int) * n);
    for (size_t j = 0; j < n; j++) {
        if (m->eot[j] <= m->cfg.n_ctx || m->eot[j] >= pr->ctx_len)
            return err_set("kanoclip: prompt %zu: [EOT] at %d leaves no room after %d contexts", j, m->eot[j], m->cfg.n_ctx);
        for (int t = 0; t < pr->ctx_len; t++)
            if (m->ids[j * pr->ctx_len + t] < 0 || m->ids[j * pr->ctx_len + t] >= m->text->vocab_size)
                return err_set("kanoclip: prompt %zu: token id %d out of the vocabulary", j, m->ids[j * pr->ctx_len + t]);
    }
    m->ctx_len = pr->ctx_len;
    m->n_adj = A;
    return 0;
}

int kanoclip_set_kb(Kanoclip *m, const float *kb) {
    int P = m->cfg.width;
    free(m->kb);
    m->kb = malloc(sizeof(float) * m->n_classes * P);
    l2norm_rows_forward(m->kb, NULL, kb, m->n_classes, P);
    return 0;
}

int kanoclip_set_fixed_text(Kanoclip *m, const float *fixed) {
    size_t n = (size_t)m->n_classes * 2 * m->cfg.width;
    free(m->fixed);
    m->fixed = malloc(sizeof(float) * n);
    memcpy(m->fixed, fixed, sizeof(float) * n);
    return 0;
}

float *kanoclip_params(Kanoclip *m) { return m->params; }
float *kanoclip_grads(Kanoclip *m) { return m->grads; }
const KanoLayout *kanoclip_layout_of(const Kanoclip *m) { return &m->L; }
const KanoclipConfig *kanoclip_config(const Kanoclip *m) { return &m->cfg; }
long kanoclip_step(const Kanoclip *m) { return m->step; }

// The distinct classes of the batch in ascending order (U of them) and each image's index among them.
static int batch_classes(const Kanoclip *m, const KanoBatch *b, int *cls, int *uidx) {
    int U = 0;
    for (int c = 0; c < m->n_classes; c++)
        for (int i = 0; i < b->B; i++)
            if (b->class_id[i] == c) { cls[U++] = c; break; }
    for (int i = 0; i < b->B; i++)
        for (int u = 0; u < U; u++)
            if (cls[u] == b->class_id[i]) uidx[i] = u;
    return U;
}

static int check_batch(const Kanoclip *m, const KanoBatch *b, int training) {
    if (b->B < 1) return err_set("kanoclip: empty batch");
    for (int i = 0; i < b->B; i++)
        if (b->class_id[i] < 0 || b->class_id[i] >= m->n_classes)
            return err_set("kanoclip: image %d: class id %d not in 0..%d", i, b->class_id[i], m->n_classes - 1);
    if (training && (!b->mask || !b->label)) return err_set("kanoclip: training batch without masks or labels");
    if (m->cfg.knpl && !m->ids) return err_set("kanoclip: KnPL prompts not set");
    if (m->cfg.knpl && training && m->cfg.w_kd != 0 && !m->kb) return err_set("kanoclip: knowledge base not set");
    if (!m->cfg.knpl && !m->fixed) return err_set("kanoclip: fixed text features not set (KnPL off)");
    return 0;
}

// Text features of the batch's classes: tfeat (2,U,P) unit rows (state-major), tnorm (2,U) the raw norms.
// With KnPL the text tower runs once over the 2U prompts and keeps its activations for text_backward.
static int text_forward(Kanoclip *m, const int *cls, int U, float *tfeat, float *tnorm, float *emb) {
    int P = m->cfg.width;
    if (!m->cfg.knpl) {
        for (int s = 0; s < 2; s++)
            for (int u = 0; u < U; u++)
                memcpy(tfeat + ((size_t)s * U + u) * P, m->fixed + ((size_t)cls[u] * 2 + s) * P, sizeof(float) * P);
        l2norm_rows_forward(tfeat, tnorm, tfeat, 2 * U, P);
        return 0;
    }
    int L = m->ctx_len, TW = m->cfg.text_width, nc = m->cfg.n_ctx, A = m->n_adj, n = 2 * U * A;
    int *eot = malloc(sizeof(int) * n);
    for (int s = 0; s < 2; s++)
        for (int u = 0; u < U; u++)
            for (int a = 0; a < A; a++) {
                int j = (s * U + u) * A + a;
                const int *ids = m->ids + (((size_t)cls[u] * 2 + s) * A + a) * L;
                float *e = emb + (size_t)j * L * TW;
                if (clip_text_token_embeddings(m->text, ids, 1, L, e)) { free(eot); return -1; }
                memcpy(e + TW, s ? m->p.ctx_a : m->p.ctx_n, sizeof(float) * nc * TW);
                eot[j] = m->eot[(cls[u] * 2 + s) * A + a];
            }
    float *raw = malloc(sizeof(float) * n * P);
    free(m->tunit);
    m->tunit = malloc(sizeof(float) * n * (P + 1));
    m->tunorm = m->tunit + (size_t)n * P;
    int rc = m->deep_run ? deep_text_forward(m->deep_run, emb, eot, n, L, m->p.deep, m->cfg.deep_depth - 1,
                                             m->cfg.deep_tokens, raw)
                         : text_tower_forward(m->run, emb, eot, n, L, raw);
    if (!rc && A == 1) l2norm_rows_forward(tfeat, tnorm, raw, n, P);  // one prompt per state: t = unit(raw)
    else if (!rc) {  // t(s,u) = norm(mean_a unit(raw(s,u,a)))
        l2norm_rows_forward(m->tunit, m->tunorm, raw, n, P);
        for (int r = 0; r < 2 * U; r++)
            for (int p = 0; p < P; p++) {
                float acc = 0;
                for (int a = 0; a < A; a++) acc += m->tunit[((size_t)r * A + a) * P + p];
                tfeat[(size_t)r * P + p] = acc / A;
            }
        l2norm_rows_forward(tfeat, tnorm, tfeat, 2 * U, P);
    }
    free(raw); free(eot);
    return rc;
}

// dtfeat (2,U,P) -> gradients of the contexts through both normalisations, the adjectives' mean and the frozen
// text tower.
static int text_backward(Kanoclip *m, int U, const float *tfeat, const float *tnorm, const float *dtfeat, float *emb) {
    int P = m->cfg.width, L = m->ctx_len, TW = m->cfg.text_width, nc = m->cfg.n_ctx, A = m->n_adj, n = 2 * U * A;
    float *dmean = calloc((size_t)2 * U * P, sizeof(float)), *dunit = malloc(sizeof(float) * n * P);
    float *draw = calloc((size_t)n * P, sizeof(float));
    l2norm_rows_backward(A == 1 ? draw : dmean, dtfeat, tfeat, tnorm, 2 * U, P);
    if (A > 1) {
        for (int r = 0; r < 2 * U; r++)
            for (int a = 0; a < A; a++)
                for (int p = 0; p < P; p++) dunit[((size_t)r * A + a) * P + p] = dmean[(size_t)r * P + p] / A;
        l2norm_rows_backward(draw, dunit, m->tunit, m->tunorm, n, P);
    }
    memset(emb, 0, sizeof(float) * n * L * TW);
    int rc = m->deep_run ? deep_text_backward(m->deep_run, emb, m->g.deep, draw)
                         : text_tower_backward(m->run, emb, draw);
    free(draw); free(dmean); free(dunit);
    if (rc) return -1;
    for (int s = 0; s < 2; s++) {
        float *dctx = s ? m->g.ctx_a : m->g.ctx_n;
        for (int j = s * U * A; j < (s + 1) * U * A; j++) {
            const float *d = emb + ((size_t)j * L + 1) * TW;
            for (int i = 0; i < nc * TW; i++) dctx[i] += d[i];
        }
    }
    return 0;
}

int kanoclip_forward_backward(Kanoclip *m, const KanoBatch *b, KanoLosses *out) {
    const KanoclipConfig *c = &m->cfg;
    if (check_batch(m, b, 1)) return -1;
    int B = b->B, P = c->width, N = c->grid_h * c->grid_w, S = c->image_size, SS = S * S;
    int R = c->adapter ? P / c->adapter_ratio : 1;
    memset(m->grads, 0, sizeof(float) * m->L.total);
    KanoLosses L = {0};
    int *cls = malloc(sizeof(int) * 2 * (m->n_classes + B)), *uidx = cls + m->n_classes + B;
    int U = batch_classes(m, b, cls, uidx);
    size_t emb_n = c->knpl ? (size_t)2 * U * (m->n_adj > 0 ? m->n_adj : 1) * m->ctx_len * c->text_width : 1;
    float *emb = malloc(sizeof(float) * emb_n);
    float *tfeat = malloc(sizeof(float) * 2 * U * P), *tnorm = malloc(sizeof(float) * 2 * U);
    float *dtfeat = calloc((size_t)2 * U * P, sizeof(float));
    double t0 = omp_get_wtime();
    int rc = text_forward(m, cls, U, tfeat, tnorm, emb);
    L.time_text = (float)(omp_get_wtime() - t0);
    if (rc) goto done;

    // KD against the knowledge-base mean of the batch's classes
    if (c->knpl) {
        float *kbar = calloc(P, sizeof(float));
        if (m->kb) {
            for (int u = 0; u < U; u++)
                for (int p = 0; p < P; p++) kbar[p] += m->kb[(size_t)cls[u] * P + p];
            l2norm_rows_forward(kbar, NULL, kbar, 1, P);
            L.kd = kd_forward_backward(dtfeat + (size_t)U * P, dtfeat, tfeat + (size_t)U * P, tfeat, kbar, U, P, c,
                                       c->w_kd, &L.cos_ak, &L.cos_nk, &L.cos_an);
        }
        free(kbar);
    }

    int joint = kano_paper_switches_on(c);  // the paper switches: global and local together (kanoclip_paper.c)
    if (joint && kano_global_local_joint(m, b, tfeat, U, uidx, dtfeat, &L) < 0) { rc = -1; goto done; }
    // global: CE over the two logits = BCE on p_a, as softplus(l_other − l_label)
    if (!joint) {
        AdapterActs ad;
        float *buf = kano_global_buffers(&ad, B, P, R), *ic = ad.dln + B * P, *icn = ic + B * P, *icnorm = icn + B * P,
              *logits = icnorm + B;
        float *dicn = malloc(sizeof(float) * B * P * 2), *dic = dicn + B * P;
        kano_global_forward(m, b, tfeat, U, uidx, &ad, ic, icn, icnorm, logits);
        double lg = 0.0;
        memset(dicn, 0, sizeof(float) * B * P * 2);
        for (int i = 0; i < B; i++) {
            int y = b->label[i] ? 1 : 0;
            float z = logits[i * 2 + 1 - y] - logits[i * 2 + y];
            lg += softplus_f(z);
            float gz = sigmoid_f(z) * c->w_global / B;  // dL/dz; dz/dl_other = 1, dz/dl_y = −1
            float dl[2];
            dl[1 - y] = gz; dl[y] = -gz;
            for (int s = 0; s < 2; s++) {
                float *dt = dtfeat + ((size_t)s * U + uidx[i]) * P;
                const float *t = tfeat + ((size_t)s * U + uidx[i]) * P;
                for (int p = 0; p < P; p++) {
                    dt[p] += dl[s] / c->tau * icn[(size_t)i * P + p];
                    dicn[(size_t)i * P + p] += dl[s] / c->tau * t[p];
                }
            }
        }
        L.global = (float)(lg / B);
        if (c->adapter) {
            l2norm_rows_backward(dic, dicn, icn, icnorm, B, P);
            adapter_backward(&m->g.adapter, dic, &ad, &m->p.adapter, b->global, B, P, R);
        }
        free(dicn); free(buf);
    }

    // local: per stage and image, Bi-CMCI -> maps -> focal + dice, forward and backward at once
    t0 = omp_get_wtime();
    if (!joint) {
        float *pn = malloc(sizeof(float) * (size_t)N * 4), *pa = pn + N, *dpn = pa + N, *dpa = dpn + N;
        float *up = malloc(sizeof(float) * (size_t)SS * 6), *upn = up, *upa = up + SS, *dupn = up + 2 * SS,
              *dupa = up + 3 * SS, *gt = up + 4 * SS, *ngt = up + 5 * SS;
        float *dprobs = malloc(sizeof(float) * N * 2), *T = malloc(sizeof(float) * 4 * P), *dT = T + 2 * P;
        for (int s = 0; s < c->n_stages; s++) {
            double focal = 0.0, dice_a = 0.0, dice_n = 0.0;
            for (int i = 0; i < B; i++) {
                const float *F = b->stage + (((size_t)i * c->n_stages + s) * (1 + N) + 1) * P;
                for (int k = 0; k < 2; k++) memcpy(T + k * P, tfeat + ((size_t)k * U + uidx[i]) * P, sizeof(float) * P);
                bicmci_forward(&m->acts, &m->p.stage[s], c, F, T);
                for (int n = 0; n < N; n++) { pn[n] = m->acts.probs[2 * n]; pa[n] = m->acts.probs[2 * n + 1]; }
                upsample_bilinear_forward(upn, pn, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
                upsample_bilinear_forward(upa, pa, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
                const float *mk = b->mask + (size_t)i * SS;
                for (int q = 0; q < SS; q++) { gt[q] = mk[q] > 0.5f ? 1.0f : 0.0f; ngt[q] = 1.0f - gt[q]; }
                focal += focal_sum_forward(upn, upa, gt, SS);
                dice_a += dice_forward(upa, gt, SS);
                dice_n += dice_forward(upn, ngt, SS);
                memset(dupn, 0, sizeof(float) * SS * 2);
                focal_sum_backward(dupn, dupa, upn, upa, gt, SS, c->w_local / ((float)B * SS));
                dice_backward(dupa, upa, gt, SS, -c->w_local / B);
                dice_backward(dupn, upn, ngt, SS, -c->w_local / B);
                memset(dpn, 0, sizeof(float) * N * 2);
                upsample_bilinear_backward(dpn, dupn, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
                upsample_bilinear_backward(dpa, dupa, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
                for (int n = 0; n < N; n++) { dprobs[2 * n] = dpn[n]; dprobs[2 * n + 1] = dpa[n]; }
                memset(dT, 0, sizeof(float) * 2 * P);
                bicmci_backward(dT, &m->g.stage[s], dprobs, &m->acts, &m->p.stage[s], c, F, T);
                for (int k = 0; k < 2; k++) {
                    float *d = dtfeat + ((size_t)k * U + uidx[i]) * P;
                    for (int p = 0; p < P; p++) d[p] += dT[k * P + p];
                }
            }
            float f = (float)(focal / ((double)B * SS)), da = (float)(1.0 - dice_a / B), dn = (float)(1.0 - dice_n / B);
            L.focal += f;
            L.dice += da + dn;
            L.local += f + da + dn;
        }
        free(pn); free(up); free(dprobs); free(T);
    }
    L.time_local = (float)(omp_get_wtime() - t0);

    t0 = omp_get_wtime();
    if (c->knpl) rc = text_backward(m, U, tfeat, tnorm, dtfeat, emb);
    L.time_text += (float)(omp_get_wtime() - t0);
    L.total = c->w_kd * (c->knpl && m->kb ? L.kd : 0.0f) + c->w_global * L.global + c->w_local * L.local;
    if (out) *out = L;
done:
    free(cls); free(emb); free(tfeat); free(tnorm); free(dtfeat);
    return rc;
}

void kanoclip_adam_step(Kanoclip *m) {
    m->step++;
    adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->L.total, m->step, m->cfg.lr, m->cfg.beta1,
                m->cfg.beta2, m->cfg.adam_eps);
}

int kanoclip_train_step(Kanoclip *m, const KanoBatch *b, KanoLosses *out) {
    if (kanoclip_forward_backward(m, b, out)) return -1;
    kanoclip_adam_step(m);
    return 0;
}

int kanoclip_eval(Kanoclip *m, const KanoBatch *b, float *maps, float *p_global, float *score) {
    const KanoclipConfig *c = &m->cfg;
    if (check_batch(m, b, 0)) return -1;
    int B = b->B, P = c->width, N = c->grid_h * c->grid_w, S = c->image_size, SS = S * S;
    int R = c->adapter ? P / c->adapter_ratio : 1;
    int *cls = malloc(sizeof(int) * 2 * (m->n_classes + B)), *uidx = cls + m->n_classes + B;
    int U = batch_classes(m, b, cls, uidx);
    size_t emb_n = c->knpl ? (size_t)2 * U * (m->n_adj > 0 ? m->n_adj : 1) * m->ctx_len * c->text_width : 1;
    float *emb = malloc(sizeof(float) * emb_n);
    float *tfeat = malloc(sizeof(float) * 2 * U * P), *tnorm = malloc(sizeof(float) * 2 * U);
    float *map = malloc(sizeof(float) * ((size_t)SS * 2 + N)), *up = map + SS, *pa = up + SS;
    int rc = text_forward(m, cls, U, tfeat, tnorm, emb);
    if (rc) goto done;
    AdapterActs ad;
    float *buf = kano_global_buffers(&ad, B, P, R), *ic = ad.dln + B * P, *icn = ic + B * P, *icnorm = icn + B * P,
          *logits = icnorm + B;
    kano_global_forward(m, b, tfeat, U, uidx, &ad, ic, icn, icnorm, logits);
    float *Tb = malloc(sizeof(float) * 2 * P);
    for (int i = 0; i < B; i++) {
        float pg = 1.0f / (1.0f + expf(logits[i * 2] - logits[i * 2 + 1]));
        memset(map, 0, sizeof(float) * SS);
        for (int k = 0; k < 2; k++) memcpy(Tb + k * P, tfeat + ((size_t)k * U + uidx[i]) * P, sizeof(float) * P);
        for (int s = 0; s < c->n_stages; s++) {
            const float *F = b->stage + (((size_t)i * c->n_stages + s) * (1 + N) + 1) * P;
            bicmci_forward(&m->acts, &m->p.stage[s], c, F, Tb);
            for (int n = 0; n < N; n++) pa[n] = m->acts.probs[2 * n + 1];
            upsample_bilinear_forward(up, pa, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
            for (int q = 0; q < SS; q++) map[q] += up[q] / c->n_stages;
        }
        if (c->map_minmax) kano_minmax_forward(map, SS);  // Norm(.) of Eq. 10 as min-max (scale-free)
        if (c->gauss_sigma > 0) gaussian_filter_forward(map, map, 1, S, S, c->gauss_sigma, c->gauss_truncate);
        float mx = -INFINITY;
        for (int q = 0; q < SS; q++) mx = fmaxf(mx, map[q]);
        if (maps) memcpy(maps + (size_t)i * SS, map, sizeof(float) * SS);
        if (p_global) p_global[i] = pg;
        if (score) score[i] = pg + mx;
    }
    free(Tb);
    free(buf);
done:
    free(cls); free(emb); free(tfeat); free(tnorm); free(map);
    return rc;
}
