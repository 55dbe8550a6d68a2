// Adam update, PyTorch's single-tensor formula.
#include "model/adam.h"

#include <math.h>

void adam_update(float *p, const float *g, float *m, float *v, size_t n, long step, float lr, float beta1,
                 float beta2, float eps) {
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    float step_size = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
    }
}
