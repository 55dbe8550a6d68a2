// CPU reference of MSDA's sampling grid and weighted sum (see ops_heads.h; the layer is model/msda_attn.c).
#include <string.h>

#include "model/ops_heads.h"

void msda_grid_forward(float *grid, const float *off, int h, int M, int K, int Hg, int Wg) {
    int N = Hg * Wg, MK = M * K;
    for (int q = 0; q < N; q++) {
        float rx = ((q % Wg) + 0.5f) / Wg, ry = ((q / Wg) + 0.5f) / Hg;
        for (int k = 0; k < K; k++) {
            const float *o = off + (size_t)q * MK * 2 + (h * K + k) * 2;
            grid[(q * K + k) * 2] = 2.0f * (rx + o[0] / Wg) - 1.0f;
            grid[(q * K + k) * 2 + 1] = 2.0f * (ry + o[1] / Hg) - 1.0f;
        }
    }
}

void msda_grid_backward(float *doff, const float *dgrid, int h, int M, int K, int Hg, int Wg) {
    int N = Hg * Wg, MK = M * K;
    for (int q = 0; q < N; q++)
        for (int k = 0; k < K; k++) {
            float *o = doff + (size_t)q * MK * 2 + (h * K + k) * 2;
            o[0] = dgrid[(q * K + k) * 2] * 2.0f / Wg;
            o[1] = dgrid[(q * K + k) * 2 + 1] * 2.0f / Hg;
        }
}

void msda_combine_forward(float *ao, const float *att, const float *samp, int h, int N, int M, int K, int hd, int P) {
    int MK = M * K;
    #pragma omp parallel for
    for (int q = 0; q < N; q++) {
        float *o = ao + (size_t)q * P + h * hd;
        memset(o, 0, sizeof(float) * hd);
        for (int k = 0; k < K; k++) {
            float w = att[(size_t)q * MK + h * K + k];
            const float *sv = samp + ((size_t)q * K + k) * hd;
            for (int c = 0; c < hd; c++) o[c] += w * sv[c];
        }
    }
}

void msda_combine_backward(float *datt, float *dsamp, const float *dao, const float *att, const float *samp, int h,
                           int N, int M, int K, int hd, int P) {
    int MK = M * K;
    #pragma omp parallel for
    for (int q = 0; q < N; q++) {
        const float *d = dao + (size_t)q * P + h * hd;
        for (int k = 0; k < K; k++) {
            float w = att[(size_t)q * MK + h * K + k];
            const float *sv = samp + ((size_t)q * K + k) * hd;
            float *ds = dsamp + ((size_t)q * K + k) * hd;
            double dw = 0.0;
            for (int c = 0; c < hd; c++) { dw += (double)d[c] * sv[c]; ds[c] = w * d[c]; }
            datt[(size_t)q * MK + h * K + k] = (float)dw;
        }
    }
}
