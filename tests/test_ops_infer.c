// exp_fast (the vectorisable exp behind softmax and QuickGELU) against the C library's exp in double.
#include <criterion/criterion.h>
#include <math.h>

#include "model/ops_infer.h"

Test(ops_infer, exp_fast_relative_error) {
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double want = exp((double)x), got = exp_fast(x);
        double e = fabs(got - want) / want;
        if (e > worst) worst = e;
    }
    cr_assert(worst < 4e-7, "exp_fast relative error %.3g", worst);  // 2 ulp of float is 2.4e-7
    cr_assert(exp_fast(-1000.0f) < 2e-38f && exp_fast(-1000.0f) >= 0.0f);
    cr_assert(isfinite(exp_fast(1000.0f)));
}
