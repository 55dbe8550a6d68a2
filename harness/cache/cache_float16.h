// IEEE binary16 conversion, round to nearest even (as numpy's astype(float16)). HDF5 1.10's own float16
// conversion truncates into the subnormal range, so the caches convert here and store the bits as they are.
#ifndef HARNESS_CACHE_FLOAT16_H
#define HARNESS_CACHE_FLOAT16_H

#include <stddef.h>
#include <stdint.h>

uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
void floats_to_halves(const float *in, uint16_t *out, size_t n);
void halves_to_floats(const uint16_t *in, float *out, size_t n);

#endif
