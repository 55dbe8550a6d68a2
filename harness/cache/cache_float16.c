#include "harness/cache/cache_float16.h"

#include <string.h>

uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));  // inf, nan (quiet)
    int e = (int)exp - 127 + 15;  // the half exponent
    if (e >= 31) return (uint16_t)(sign | 0x7c00);  // overflow: inf
    if (e <= 0) {  // subnormal half (or zero): units of 2^-24
        if (e < -10) return (uint16_t)sign;  // below 2^-25: rounds to zero
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;  // a carry into the exponent is still correct (up to inf)
    return (uint16_t)h;
}

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    float f;
    if (exp == 0) {
        f = (float)man * 5.9604644775390625e-08f;  // man * 2^-24, exact
        memcpy(&x, &f, 4);
        x |= sign;
    } else if (exp == 31) {
        x = sign | 0x7f800000 | (man << 13);
    } else {
        x = sign | ((exp + 112) << 23) | (man << 13);
    }
    memcpy(&f, &x, 4);
    return f;
}

void floats_to_halves(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_to_half(in[i]);
}

void halves_to_floats(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = half_to_float(in[i]);
}
