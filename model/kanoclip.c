// KAnoCLIP model: parameters, the text side (KnPL through the frozen text tower, the KD loss) and the training
// step (forward + backward + Adam) over the op table (see kanoclip.h, kanoclip_internal.h).
#include "model/kanoclip.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/kanoclip_internal.h"
#include "model/kanoclip_losses.h"
#include "model/ops_extra.h"

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
static void init_params(Kanoclip *m, float *params) {
    const KanoclipConfig *c = &m->cfg;
    uint64_t *s = m->rng;
    for (int i = 0; i < m->L.n; i++) {
        const KanoTensor *t = &m->L.t[i];
        float *x = params + t->offset;
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

// The floats of the KnPL tensors (contexts, deep prompts): the first ones of the block (kanoclip_params.c).
static size_t text_param_count(const KanoclipConfig *c) {
    if (!c->knpl) return 0;
    return (size_t)2 * c->n_ctx * c->text_width +
           (c->deep_prompts ? (size_t)(c->deep_depth - 1) * c->deep_tokens * c->text_width : 0);
}

Kanoclip *kanoclip_new_on(const Backend *be, const KanoclipConfig *cfg, int n_classes, const ClipText *text) {
    if (!be || kanoclip_config_check(cfg)) return NULL;
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
    m->be = be;
    m->n_classes = n_classes;
    m->text = cfg->knpl ? text : NULL;
    kanoclip_layout(&m->L, NULL, cfg, NULL);
    size_t tn = text_param_count(cfg);
    float *init = malloc(sizeof(float) * (m->L.total + 1));
    m->tparams = calloc(2 * tn + 1, sizeof(float));
    m->block = be->alloc(4 * m->L.total + tn + 1);
    if (!init || !m->tparams || !m->block) {
        if (!init || !m->tparams) err_set("kanoclip: out of memory for %zu parameters", m->L.total);
        free(init);
        kanoclip_free(m);
        return NULL;
    }
    m->tgrads = m->tparams + tn;
    m->params = m->block; m->grads = m->params + m->L.total;
    m->adam_m = m->grads + m->L.total; m->adam_v = m->adam_m + m->L.total;
    m->tgrads_dev = m->adam_v + m->L.total;
    kanoclip_views(&m->p, cfg, m->params);
    kanoclip_views(&m->g, cfg, m->grads);
    uint64_t x = cfg->seed;
    for (int i = 0; i < 4; i++) m->rng[i] = splitmix64(&x);
    init_params(m, init);
    be->upload(m->params, init, m->L.total);
    free(init);
    if (bicmci_acts_alloc(be, &m->acts, cfg)) { kanoclip_free(m); return NULL; }
    if (m->text && cfg->deep_prompts) {
        if (!(m->deep_run = deep_text_run_new(m->text))) { kanoclip_free(m); return NULL; }
    } else if (m->text && !(m->run = text_tower_new(m->text, 1, cfg->device, cfg->precision))) {
        kanoclip_free(m);
        return NULL;
    }
    return m;
}

Kanoclip *kanoclip_new(const KanoclipConfig *cfg, int n_classes, const ClipText *text) {
    return kanoclip_new_on(backend_for(cfg->device), cfg, n_classes, text);
}

void kanoclip_free(Kanoclip *m) {
    if (!m) return;
    bicmci_acts_free(&m->acts);
    if (m->run) text_tower_free(m->run);
    deep_text_run_free(m->deep_run);
    m->be->release(m->block);
    m->be->release(m->work);
    free(m->tparams); free(m->kb); free(m->fixed); free(m->ids); free(m->eot); free(m->tunit);
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

void kanoclip_download_params(const Kanoclip *m, float *host) { m->be->download(host, m->params, m->L.total); }
void kanoclip_download_grads(const Kanoclip *m, float *host) { m->be->download(host, m->grads, m->L.total); }
void kanoclip_upload_params(Kanoclip *m, const float *host) { m->be->upload(m->params, host, m->L.total); }
const Backend *kanoclip_backend(const Kanoclip *m) { return m->be; }
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

// Text features of the batch's classes, on the host: tfeat (2,U,P) unit rows (state-major), tnorm (2,U) the raw
// norms. With KnPL the contexts come down from the backend and the text tower runs once over the prompts,
// keeping its activations for text_backward.
int kano_text_forward(Kanoclip *m, const int *cls, int U, float *tfeat, float *tnorm, float *emb) {
    int P = m->cfg.width;
    if (!m->cfg.knpl) {
        for (int s = 0; s < 2; s++)
            for (int u = 0; u < U; u++)
                memcpy(tfeat + ((size_t)s * U + u) * P, m->fixed + ((size_t)cls[u] * 2 + s) * P, sizeof(float) * P);
        l2norm_rows_forward(tfeat, tnorm, tfeat, 2 * U, P);
        return 0;
    }
    int L = m->ctx_len, TW = m->cfg.text_width, nc = m->cfg.n_ctx, A = m->n_adj, n = 2 * U * A;
    m->be->download(m->tparams, m->params, text_param_count(&m->cfg));
    const float *ctx_n = m->tparams, *ctx_a = ctx_n + (size_t)nc * TW, *deep = ctx_a + (size_t)nc * TW;
    int *eot = malloc(sizeof(int) * n);
    for (int s = 0; s < 2; s++)
        for (int u = 0; u < U; u++)
            for (int a = 0; a < A; a++) {
                int j = (s * U + u) * A + a;
                const int *ids = m->ids + (((size_t)cls[u] * 2 + s) * A + a) * L;
                float *e = emb + (size_t)j * L * TW;
                if (clip_text_token_embeddings(m->text, ids, 1, L, e)) { free(eot); return -1; }
                memcpy(e + TW, s ? ctx_a : ctx_n, sizeof(float) * nc * TW);
                eot[j] = m->eot[(cls[u] * 2 + s) * A + a];
            }
    float *raw = malloc(sizeof(float) * n * P);
    free(m->tunit);
    m->tunit = malloc(sizeof(float) * n * (P + 1));
    m->tunorm = m->tunit + (size_t)n * P;
    int rc = m->deep_run ? deep_text_forward(m->deep_run, emb, eot, n, L, deep, m->cfg.deep_depth - 1,
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

// dtfeat (2,U,P) -> gradients of the contexts (and deep prompts) through both normalisations, the adjectives'
// mean and the frozen text tower, on the host; then added to the backend's gradient block.
static int text_backward(Kanoclip *m, int U, const float *tfeat, const float *tnorm, const float *dtfeat, float *emb) {
    int P = m->cfg.width, L = m->ctx_len, TW = m->cfg.text_width, nc = m->cfg.n_ctx, A = m->n_adj, n = 2 * U * A;
    size_t tn = text_param_count(&m->cfg);
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
    memset(m->tgrads, 0, sizeof(float) * tn);
    float *dctx_n = m->tgrads, *dctx_a = dctx_n + (size_t)nc * TW, *ddeep = dctx_a + (size_t)nc * TW;
    int rc = m->deep_run ? deep_text_backward(m->deep_run, emb, ddeep, draw) : text_tower_backward(m->run, emb, draw);
    free(draw); free(dmean); free(dunit);
    if (rc) return -1;
    for (int s = 0; s < 2; s++) {
        float *dctx = s ? dctx_a : dctx_n;
        for (int j = s * U * A; j < (s + 1) * U * A; j++) {
            const float *d = emb + ((size_t)j * L + 1) * TW;
            for (int i = 0; i < nc * TW; i++) dctx[i] += d[i];
        }
    }
    m->be->upload(m->tgrads_dev, m->tgrads, tn);
    m->be->axpy(m->grads, m->tgrads_dev, 1.0f, tn);
    return 0;
}

// KD against the knowledge-base mean of the batch's classes, on the host: dtfeat (2,U,P) +=.
static void kd_loss(Kanoclip *m, const int *cls, int U, const float *tfeat, float *dtfeat, KanoLosses *L) {
    const KanoclipConfig *c = &m->cfg;
    int P = c->width;
    float *kbar = calloc(P, sizeof(float));
    for (int u = 0; u < U; u++)
        for (int p = 0; p < P; p++) kbar[p] += m->kb[(size_t)cls[u] * P + p];
    l2norm_rows_forward(kbar, NULL, kbar, 1, P);
    L->kd = kd_forward_backward(dtfeat + (size_t)U * P, dtfeat, tfeat + (size_t)U * P, tfeat, kbar, U, P, c, c->w_kd,
                                &L->cos_ak, &L->cos_nk, &L->cos_an);
    free(kbar);
}

int kanoclip_forward_backward(Kanoclip *m, const KanoBatch *b, KanoLosses *out) {
    const KanoclipConfig *c = &m->cfg;
    if (check_batch(m, b, 1)) return -1;
    int B = b->B, P = c->width;
    m->be->zero(m->grads, m->L.total);
    KanoLosses L = {0};
    int *cls = malloc(sizeof(int) * 2 * (m->n_classes + B)), *uidx = cls + m->n_classes + B;
    int U = batch_classes(m, b, cls, uidx);
    size_t emb_n = c->knpl ? (size_t)2 * U * (m->n_adj > 0 ? m->n_adj : 1) * m->ctx_len * c->text_width : 1;
    float *emb = malloc(sizeof(float) * emb_n);
    float *tfeat = malloc(sizeof(float) * 2 * U * P), *tnorm = malloc(sizeof(float) * 2 * U);
    float *dtfeat = calloc((size_t)2 * U * P, sizeof(float));
    double t0 = omp_get_wtime();
    int rc = kano_text_forward(m, cls, U, tfeat, tnorm, emb);
    L.time_text = (float)(omp_get_wtime() - t0);
    if (rc) goto done;
    if (c->knpl && m->kb) kd_loss(m, cls, U, tfeat, dtfeat, &L);

    int joint = kano_paper_switches_on(c);  // the paper switches: global and local together (kanoclip_paper.c)
    KanoStep st;
    size_t n_slots = ((size_t)3 * c->n_stages + 4) * B;
    if ((rc = kano_step_begin(m, &st, b, tfeat, U, uidx, n_slots, joint ? kano_joint_extra(c) : kano_local_extra(c))))
        goto done;
    t0 = omp_get_wtime();
    if (joint) rc = kano_global_local_joint(m, &st, &L);
    else {
        L.global = kano_global_bce(m, &st, b->label);
        kano_local_losses(m, &st, &L);
    }
    if (!rc) rc = m->be->sync();
    L.time_local = (float)(omp_get_wtime() - t0);
    if (rc) goto done;
    kano_step_text_grads(m, &st, dtfeat);

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
    m->be->adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->L.total, m->step, m->cfg.lr, m->cfg.beta1,
                       m->cfg.beta2, m->cfg.adam_eps);
}

int kanoclip_train_step(Kanoclip *m, const KanoBatch *b, KanoLosses *out) {
    if (kanoclip_forward_backward(m, b, out)) return -1;
    kanoclip_adam_step(m);
    return m->be->sync();
}

int kano_batch_classes(const Kanoclip *m, const KanoBatch *b, int *cls, int *uidx) {
    if (check_batch(m, b, 0)) return -1;
    return batch_classes(m, b, cls, uidx);
}
