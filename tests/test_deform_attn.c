// DAT deformable attention: the backward against central finite differences of the forward (our own code, on
// random inputs), for the paths that go through bilinear sampling: the offset network (depthwise conv, its
// LayerNorm, the 1x1 offset projection), the relative-position table and the input. The PyTorch comparison of
// every gradient is in test_kanoclip.c; this one checks the sampling derivatives independently of PyTorch.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/deform_attn.h"

static unsigned long long seed = 99;
static float frand(void) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((seed >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

enum { P = 12, H = 4, G = 2, HG = 4, WG = 5, N = HG * WG, KK = 3, CG = P / G, RS = H * (2 * HG - 1) * (2 * WG - 1) };

typedef struct { float *base; DattnParams p; } Block;

static void views(DattnParams *p, float *at) {
    float **f[] = {&p->q_w, &p->q_b, &p->k_w, &p->k_b, &p->v_w, &p->v_b, &p->o_w, &p->o_b, &p->off_dw_w, &p->off_dw_b,
                   &p->off_ln_w, &p->off_ln_b, &p->off_pw_w, &p->rpe};
    size_t n[] = {P * P, P, P * P, P, P * P, P, P * P, P, CG * KK * KK, CG, CG, CG, 2 * CG, RS};
    for (int i = 0; i < 14; i++) { *f[i] = at; at += n[i]; }
}

static double loss(DattnActs *a, const DattnParams *p, const float *x, const float *dy, const DattnShape *s) {
    float out[N * P];
    dattn_forward(backend_cpu(), out, a, p, x, s);
    double l = 0.0;
    for (int i = 0; i < N * P; i++) l += (double)out[i] * dy[i];
    return l;
}

Test(deform_attn, backward_matches_finite_differences) {
    DattnShape s = {P, H, G, HG, WG, KK, 2.0f, 1};
    size_t np = dattn_param_count(&s);
    float *prm = malloc(np * sizeof(float)), *grd = calloc(np, sizeof(float));
    for (size_t i = 0; i < np; i++) prm[i] = 0.5f * frand();
    DattnParams p, g;
    views(&p, prm);
    views(&g, grd);
    for (int i = 0; i < CG; i++) p.off_ln_w[i] = 1.0f + 0.2f * frand();
    for (int i = 0; i < 2 * CG; i++) p.off_pw_w[i] *= 3.0f;  // offsets of about a cell: sampling between pixels
    float x[N * P], dy[N * P], dx[N * P] = {0}, out[N * P];
    for (int i = 0; i < N * P; i++) { x[i] = frand(); dy[i] = frand(); }
    DattnActs a;
    cr_assert_eq(dattn_acts_alloc(backend_cpu(), &a, &s), 0);
    dattn_forward(backend_cpu(), out, &a, &p, x, &s);
    dattn_backward(backend_cpu(), dx, &g, dy, &a, &p, x, &s);
    struct { const char *what; float *val, *grad; int n; } checks[] = {
        {"off_pw_w", p.off_pw_w, g.off_pw_w, 2 * CG}, {"off_dw_w", p.off_dw_w, g.off_dw_w, 9},
        {"off_ln_w", p.off_ln_w, g.off_ln_w, CG}, {"rpe", p.rpe, g.rpe, 40}, {"q_w", p.q_w, g.q_w, 30},
        {"x", x, dx, 60},
    };
    const float eps = 2e-3f;
    for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
        double maxdiff = 0.0, maxref = 0.0;
        for (int i = 0; i < checks[c].n; i++) {
            float keep = checks[c].val[i];
            checks[c].val[i] = keep + eps;
            double lp = loss(&a, &p, x, dy, &s);
            checks[c].val[i] = keep - eps;
            double lm = loss(&a, &p, x, dy, &s);
            checks[c].val[i] = keep;
            double fd = (lp - lm) / (2 * eps);
            maxdiff = fmax(maxdiff, fabs(fd - checks[c].grad[i]));
            maxref = fmax(maxref, fabs(fd));
        }
        cr_assert(maxref > 0, "%s: finite differences all zero", checks[c].what);
        cr_assert(maxdiff / maxref < 2e-2, "%s: analytic vs finite differences %.3g", checks[c].what, maxdiff / maxref);
    }
    dattn_acts_free(&a);
    free(prm); free(grd);
}
