// KAnoCLIP evaluation on the backend: the global probability and the mean over stages of the upsampled anomaly
// maps (min-max normalised with map_minmax, then Gaussian-smoothed); the maps and logits come down.
#include <math.h>
#include <stdlib.h>

#include "model/kanoclip_internal.h"

int kanoclip_eval(Kanoclip *m, const KanoBatch *b, float *maps, float *p_global, float *score) {
    const KanoclipConfig *c = &m->cfg;
    const Backend *be = m->be;
    int B = b->B, P = c->width, N = c->grid_h * c->grid_w, S = c->image_size, SS = S * S;
    int *cls = malloc(sizeof(int) * 2 * (m->n_classes + B)), *uidx = cls + m->n_classes + B;
    int U = kano_batch_classes(m, b, cls, uidx);
    if (U < 0) { free(cls); return -1; }
    size_t emb_n = c->knpl ? (size_t)2 * U * (m->n_adj > 0 ? m->n_adj : 1) * m->ctx_len * c->text_width : 1;
    float *emb = malloc(sizeof(float) * emb_n);
    float *tfeat = malloc(sizeof(float) * 2 * U * P), *tnorm = malloc(sizeof(float) * 2 * U);
    float *logits = malloc(sizeof(float) * 2 * B), *host_maps = maps ? maps : malloc(sizeof(float) * B * SS);
    KanoStep st;
    int rc = kano_text_forward(m, cls, U, tfeat, tnorm, emb);
    if (!rc) rc = kano_step_begin(m, &st, b, tfeat, U, uidx, 0, SS);
    if (rc) goto done;
    kano_global_forward(m, &st, logits);
    float *up = st.extra;
    for (int i = 0; i < B; i++) {
        float *map = st.maps + (size_t)i * SS;
        be->zero(map, SS);
        for (int s = 0; s < c->n_stages; s++) {
            bicmci_forward(be, &m->acts, &m->p.stage[s], c, kano_stage_features(&st, i, s), st.T + (size_t)i * 2 * P);
            be->deinterleave2(st.probs_n, st.probs_a, m->acts.probs, N);
            be->upsample_bilinear_forward(up, st.probs_a, 1, c->grid_h, c->grid_w, S, S, c->upsample_align_corners);
            be->axpy(map, up, 1.0f / c->n_stages, SS);
        }
        if (c->map_minmax) be->minmax_forward(map, SS);  // Norm(.) of Eq. 10 as min-max (scale-free)
    }
    if (c->gauss_sigma > 0) be->gaussian_filter_forward(st.maps, st.maps, B, S, S, c->gauss_sigma, c->gauss_truncate);
    be->download(host_maps, st.maps, (size_t)B * SS);
    if ((rc = be->sync())) goto done;
    for (int i = 0; i < B; i++) {
        float pg = 1.0f / (1.0f + expf(logits[i * 2] - logits[i * 2 + 1])), mx = -INFINITY;
        const float *map = host_maps + (size_t)i * SS;
        for (int q = 0; q < SS; q++) mx = fmaxf(mx, map[q]);
        if (p_global) p_global[i] = pg;
        if (score) score[i] = pg + mx;
    }
done:
    if (host_maps != maps) free(host_maps);
    free(cls); free(emb); free(tfeat); free(tnorm); free(logits);
    return rc;
}
