// Focal, dice and KD losses with their gradients (see kanoclip_losses.h).
#include "model/kanoclip_losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops_extra.h"

#define FOCAL_SMOOTH 1e-5f

static inline float focal_pt(float pn, float pa, float g) {
    float ya = g > 0.5f ? 1.0f - FOCAL_SMOOTH : FOCAL_SMOOTH, yn = g > 0.5f ? FOCAL_SMOOTH : 1.0f - FOCAL_SMOOTH;
    return yn * pn + ya * pa + FOCAL_SMOOTH;
}

double focal_sum_forward(const float *pn, const float *pa, const float *g, int n) {
    double s = 0.0;
    #pragma omp parallel for reduction(+ : s)
    for (int i = 0; i < n; i++) {
        double pt = focal_pt(pn[i], pa[i], g[i]);
        s += -(1.0 - pt) * (1.0 - pt) * log(pt);
    }
    return s;
}

void focal_sum_backward(float *dpn, float *dpa, const float *pn, const float *pa, const float *g, int n, float scale) {
    #pragma omp parallel for
    for (int i = 0; i < n; i++) {
        double pt = focal_pt(pn[i], pa[i], g[i]);
        // dℓ/dpt = 2(1−pt) log pt − (1−pt)²/pt
        double d = 2.0 * (1.0 - pt) * log(pt) - (1.0 - pt) * (1.0 - pt) / pt;
        float ya = g[i] > 0.5f ? 1.0f - FOCAL_SMOOTH : FOCAL_SMOOTH;
        dpa[i] += scale * (float)d * ya;
        dpn[i] += scale * (float)d * (1.0f - ya);
    }
}

double dice_forward(const float *p, const float *g, int n) {
    double inter = 0.0, sp = 0.0, sg = 0.0;
    #pragma omp parallel for reduction(+ : inter, sp, sg)
    for (int i = 0; i < n; i++) { inter += (double)p[i] * g[i]; sp += p[i]; sg += g[i]; }
    return (2.0 * inter + 1.0) / (sp + sg + 1.0);
}

void dice_backward(float *dp, const float *p, const float *g, int n, float scale) {
    double inter = 0.0, sp = 0.0, sg = 0.0;
    #pragma omp parallel for reduction(+ : inter, sp, sg)
    for (int i = 0; i < n; i++) { inter += (double)p[i] * g[i]; sp += p[i]; sg += g[i]; }
    double S = sp + sg + 1.0, num = 2.0 * inter + 1.0;
    // ∂D/∂p_i = (2 g_i S − num) / S²
    #pragma omp parallel for
    for (int i = 0; i < n; i++) dp[i] += scale * (float)((2.0 * g[i] * S - num) / (S * S));
}

// v = norm(mean of U rows); returns the norm of the mean (for the backward).
static double mean_unit(float *v, const float *rows, int U, int P) {
    double s2 = 0.0;
    for (int p = 0; p < P; p++) {
        double s = 0.0;
        for (int u = 0; u < U; u++) s += rows[(size_t)u * P + p];
        v[p] = (float)(s / U);
        s2 += (double)v[p] * v[p];
    }
    double nrm = sqrt(s2);
    for (int p = 0; p < P; p++) v[p] = (float)(v[p] / nrm);
    return nrm;
}

// rows (U,P) += scale · ∂/∂rows of a loss with gradient dv at v = norm(mean rows)
static void mean_unit_backward(float *drows, const float *v, double nrm, const float *dv, int U, int P, float scale) {
    double dot = 0.0;
    for (int p = 0; p < P; p++) dot += (double)v[p] * dv[p];
    for (int p = 0; p < P; p++) {
        float g = (float)((dv[p] - v[p] * dot) / nrm / U) * scale;
        for (int u = 0; u < U; u++) drows[(size_t)u * P + p] += g;
    }
}

static double dotf(const float *a, const float *b, int P) {
    double s = 0.0;
    for (int p = 0; p < P; p++) s += (double)a[p] * b[p];
    return s;
}

float kd_forward_backward(float *dta, float *dtn, const float *ta, const float *tn, const float *k, int U, int P,
                          const KanoclipConfig *cfg, float scale, float *cos_ak, float *cos_nk, float *cos_an) {
    float *a = malloc(sizeof(float) * P * 4), *n = a + P, *da = n + P, *dn = da + P;
    double na = mean_unit(a, ta, U, P), nn = mean_unit(n, tn, U, P);
    double ca = dotf(a, k, P), cn = dotf(n, k, P);
    *cos_ak = (float)ca; *cos_nk = (float)cn; *cos_an = (float)dotf(a, n, P);
    double loss, ga, gn;  // dL/dca, dL/dcn
    if (cfg->kd_form == KD_BOUNDED) {
        loss = 2.0 * (cn - ca); ga = -2.0; gn = 2.0;
    } else if (cfg->kd_form == KD_TRIPLET) {
        double d_a = 2.0 - 2.0 * ca, d_n = 2.0 - 2.0 * cn, h = d_a - d_n + cfg->kd_margin;
        loss = d_a + (h > 0 ? h : 0.0);
        ga = -2.0 * (h > 0 ? 2.0 : 1.0);
        gn = h > 0 ? 2.0 : 0.0;
    } else {  // two-way InfoNCE: softplus((cn − ca)/tau)
        double z = (cn - ca) / cfg->kd_tau;
        loss = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
        double sg = 1.0 / (1.0 + exp(-z));
        ga = -sg / cfg->kd_tau; gn = sg / cfg->kd_tau;
    }
    if (dta && dtn) {
        for (int p = 0; p < P; p++) { da[p] = (float)(ga * k[p]); dn[p] = (float)(gn * k[p]); }
        mean_unit_backward(dta, a, na, da, U, P, scale);
        mean_unit_backward(dtn, n, nn, dn, U, P, scale);
    }
    free(a);
    return (float)loss;
}
