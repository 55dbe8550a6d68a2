// The step's batch on the backend (kanoclip_internal.h): one scratch allocation, grown on demand and sliced; the
// batch and the text features go up, the text gradients come down.
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "model/kanoclip_internal.h"

typedef struct { float **ptr; size_t n; } Slice;

int kano_step_begin(Kanoclip *m, KanoStep *st, const KanoBatch *b, const float *tfeat_host, int U, const int *uidx,
                    size_t n_slots, size_t extra_n) {
    const KanoclipConfig *c = &m->cfg;
    const Backend *be = m->be;
    memset(st, 0, sizeof *st);
    int B = b->B, P = c->width, N = c->grid_h * c->grid_w, S = c->image_size, SS = S * S, NS = c->n_stages;
    int R = c->adapter ? P / c->adapter_ratio : 1;
    st->B = B; st->U = U; st->P = P; st->N = N; st->S = S; st->SS = SS; st->NS = NS; st->R = R;
    st->uidx = uidx;
    st->label = b->label;
    size_t BP = (size_t)B * P, nstage = (size_t)B * NS * (1 + N) * P, nmask = b->mask ? (size_t)B * SS : 0;
    Slice s[] = {
        {&st->stage, nstage}, {&st->global, BP}, {&st->gt, nmask}, {&st->ngt, nmask},
        {&st->tf, (size_t)2 * U * P}, {&st->dtf, (size_t)2 * U * P}, {&st->T, 2 * BP}, {&st->dT, 2 * BP},
        {&st->ad.ln, BP}, {&st->ad.mean, B}, {&st->ad.rstd, B}, {&st->ad.h, (size_t)B * R}, {&st->ad.dh, (size_t)B * R},
        {&st->ad.dpre, (size_t)B * R},
        {&st->ad.dln, BP}, {&st->ic, BP}, {&st->icn, BP}, {&st->icnorm, B}, {&st->logits, 2 * B},
        {&st->dlogits, 2 * B}, {&st->dicn, BP}, {&st->dic, BP}, {&st->probs_n, N}, {&st->probs_a, N},
        {&st->dprobs_n, N}, {&st->dprobs_a, N}, {&st->dprobs, 2 * N}, {&st->maps, (size_t)B * SS},
        {&st->slots, n_slots}, {&st->extra, extra_n},
    };
    size_t total = 0, n = sizeof s / sizeof s[0];
    for (size_t i = 0; i < n; i++) total += s[i].n;
    if (total > m->work_cap) {
        be->release(m->work);
        m->work_cap = 0;
        if (!(m->work = be->alloc(total))) return -1;
        m->work_cap = total;
    }
    float *at = m->work;
    for (size_t i = 0; i < n; i++) { *s[i].ptr = s[i].n ? at : NULL; at += s[i].n; }
    be->upload(st->stage, b->stage, nstage);
    be->upload(st->global, b->global, BP);
    if (b->mask) {
        be->upload(st->ngt, b->mask, nmask);  // the raw mask, binarised into gt and ngt
        be->mask_binarize(st->gt, st->ngt, st->ngt, (int)nmask);
    }
    be->upload(st->tf, tfeat_host, (size_t)2 * U * P);
    be->zero(st->dtf, (size_t)2 * U * P);
    be->zero(st->dT, 2 * BP);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < 2; k++)
            be->copy(st->T + ((size_t)i * 2 + k) * P, st->tf + ((size_t)k * U + uidx[i]) * P, P);
    return 0;
}

const float *kano_stage_features(const KanoStep *st, int i, int s) {
    return st->stage + (((size_t)i * st->NS + s) * (1 + st->N) + 1) * st->P;
}

void kano_step_text_grads(Kanoclip *m, KanoStep *st, float *dtfeat_host) {
    const Backend *be = m->be;
    int P = st->P, U = st->U;
    for (int i = 0; i < st->B; i++)
        for (int k = 0; k < 2; k++)
            be->axpy(st->dtf + ((size_t)k * U + st->uidx[i]) * P, st->dT + ((size_t)i * 2 + k) * P, 1.0f, P);
    size_t n = (size_t)2 * U * P;
    float *d = malloc(sizeof(float) * n);
    be->download(d, st->dtf, n);
    for (size_t j = 0; j < n; j++) dtfeat_host[j] += d[j];
    free(d);
}
