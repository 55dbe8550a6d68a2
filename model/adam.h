// Adam (torch.optim.Adam, no weight decay, no amsgrad) over one flat parameter block.
#ifndef MODEL_ADAM_H
#define MODEL_ADAM_H

#include <stddef.h>

// step is the 1-based number of this update. m, v (n) are the moments, updated in place.
// p -= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps), as PyTorch computes it.
void adam_update(float *p, const float *g, float *m, float *v, size_t n, long step, float lr, float beta1,
                 float beta2, float eps);

#endif
