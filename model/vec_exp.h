// A vectorisable exp for the softmax rows of the towers and the heads, in a header of its own so that every op file
// can use it without depending on another op file.
#ifndef MODEL_VEC_EXP_H
#define MODEL_VEC_EXP_H

#include <stdint.h>

// exp(x) for float, within 2 ulp (Cephes polynomial on [-ln2/2, ln2/2]); branch-free so
// loops over it vectorise. Inputs are clamped to [-87.33, 88.3] (the normal float range).
static inline float exp_fast(float x) {
    x = x < -87.33f ? -87.33f : x;
    x = x > 88.30f ? 88.30f : x;
    // n = round(x / ln2) through the 1.5 * 2^23 trick; r = x - n ln2 in two parts (Cody-Waite)
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int32_t i; } u = {t}, s;
    s.i = (u.i - 0x4B400000 + 127) << 23;  // 2^n from the integer hidden in t's mantissa
    return p * s.f;
}

#endif
