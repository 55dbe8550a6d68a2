// DAT deformable attention: the backward against central finite differences of the forward (our own code, on
// random inputs), for the paths that go through bilinear sampling: the offset network (depthwise conv, its
// LayerNorm, the 1x1 offset projection), the relative-position table and the input. The PyTorch comparison of
// every gradient is in test_kanoclip.c; this one checks the sampling derivatives independently of PyTorch.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/deform_attn.h"
#include "model/ops_heads.h"

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

// The bias backward (model/ops_dat.c, four heads to a vector, rows in fixed blocks) against a plain per-pair loop
// in double, with a head count that leaves lanes empty (5 = 4 + 1), and the same bits on 1, 2 and 3 threads.
static void rpe_backward_reference(double *drpe, double *dpos, const float *datt, const float *rpe, const float *pos,
                                   int heads, int Hg, int Wg) {
    int n = Hg * Wg, RH = 2 * Hg - 1, RW = 2 * Wg - 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double rx = (i % Wg + 0.5) / Wg * 2 - 1, ry = (i / Wg + 0.5) / Hg * 2 - 1;
            // table coordinates of (ref_i − pos_j)/2 with align_corners
            double x = ((rx - pos[2 * j]) * 0.5 + 1) * 0.5 * (RW - 1), y = ((ry - pos[2 * j + 1]) * 0.5 + 1) * 0.5 * (RH - 1);
            int x0 = (int)floor(x), y0 = (int)floor(y);
            double fx = x - x0, fy = y - y0;
            for (int h = 0; h < heads; h++) {
                double d = datt[((size_t)h * n + i) * n + j], v[2][2] = {{0, 0}, {0, 0}};
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int yy = y0 + a, xx = x0 + b;
                        if (yy < 0 || yy >= RH || xx < 0 || xx >= RW) continue;
                        v[a][b] = rpe[((size_t)h * RH + yy) * RW + xx];
                        drpe[((size_t)h * RH + yy) * RW + xx] += d * (a ? fy : 1 - fy) * (b ? fx : 1 - fx);
                    }
                // d bias / d pos = −½ (R − 1)/2 · d bias / d table coordinate
                dpos[2 * j] -= 0.25 * (RW - 1) * d * ((1 - fy) * (v[0][1] - v[0][0]) + fy * (v[1][1] - v[1][0]));
                dpos[2 * j + 1] -= 0.25 * (RH - 1) * d * ((1 - fx) * (v[1][0] - v[0][0]) + fx * (v[1][1] - v[0][1]));
            }
        }
}

Test(deform_attn, rpe_backward_matches_a_plain_loop_on_any_thread_count) {
    enum { HEADS = 5, RH = 2 * HG - 1, RW = 2 * WG - 1, T = HEADS * RH * RW };
    static float datt[HEADS * N * N], rpe[T], pos[2 * N], drpe[3][T], dpos[3][2 * N];
    double rd[T] = {0}, rp[2 * N] = {0};
    for (int i = 0; i < HEADS * N * N; i++) datt[i] = frand();
    for (int i = 0; i < T; i++) rpe[i] = frand();
    for (int i = 0; i < 2 * N; i++) pos[i] = 1.3f * frand();  // some keys outside the grid: corners off the table
    int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(t + 1);
        memset(drpe[t], 0, sizeof drpe[t]);
        memset(dpos[t], 0, sizeof dpos[t]);
        dat_rpe_backward(drpe[t], dpos[t], datt, rpe, pos, HEADS, HG, WG);
    }
    omp_set_num_threads(saved);
    cr_assert(!memcmp(drpe[0], drpe[1], sizeof drpe[0]) && !memcmp(drpe[0], drpe[2], sizeof drpe[0]),
              "drpe differs between 1, 2 and 3 threads");
    cr_assert(!memcmp(dpos[0], dpos[1], sizeof dpos[0]) && !memcmp(dpos[0], dpos[2], sizeof dpos[0]),
              "dpos differs between 1, 2 and 3 threads");
    rpe_backward_reference(rd, rp, datt, rpe, pos, HEADS, HG, WG);
    double worst = 0, scale = 0;
    for (int i = 0; i < T; i++) worst = fmax(worst, fabs(drpe[0][i] - rd[i])), scale = fmax(scale, fabs(rd[i]));
    cr_assert(scale > 0 && worst / scale < 1e-5, "drpe: %.3g of %.3g", worst, scale);
    worst = scale = 0;
    for (int i = 0; i < 2 * N; i++) worst = fmax(worst, fabs(dpos[0][i] - rp[i])), scale = fmax(scale, fabs(rp[i]));
    cr_assert(scale > 0 && worst / scale < 1e-5, "dpos: %.3g of %.3g", worst, scale);
}
