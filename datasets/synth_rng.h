// The synthetic generator's randomness: splitmix64 to derive seeds, xoshiro256** for streams, and hashed value
// noise. Never rand(): output must be the same on every libc and for every thread count.
#ifndef DATASETS_SYNTH_RNG_H
#define DATASETS_SYNTH_RNG_H

#include <math.h>
#include <stdint.h>

#include "common/rng.h" // Rng, rng_seed, rng_next (xoshiro256**), rng_splitmix64

// A seed for one item from a parent seed and up to three integers.
static inline uint64_t seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = seed;
    s ^= rng_splitmix64(&s) + a * 0xD1B54A32D192ED03ull;
    s ^= rng_splitmix64(&s) + b * 0xAEF17502108EF2D9ull;
    s ^= rng_splitmix64(&s) + c * 0xDB4F0B9175AE2165ull;
    return rng_splitmix64(&s);
}

// Uniform in [0, 1) with 24 bits, and in [lo, hi).
static inline float rng_unit(Rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }
static inline float rng_range(Rng *r, float lo, float hi) { return lo + (hi - lo) * rng_unit(r); }
static inline int rng_int(Rng *r, int n) { return (int)((rng_next(r) >> 33) % (uint64_t)n); }

// Integer lattice hash to [0, 1).
static inline float hash2(int x, int y, uint32_t seed) {
    uint32_t h = (uint32_t)x * 0x8DA6B343u ^ (uint32_t)y * 0xD8163841u ^ seed * 0xCB1AB31Fu;
    h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12; h *= 0x297A2D39u; h ^= h >> 15;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

// Value noise in [0, 1): smoothstep interpolation of lattice hashes.
static inline float value_noise(float x, float y, uint32_t seed) {
    float fx = floorf(x), fy = floorf(y);
    int ix = (int)fx, iy = (int)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    float a = hash2(ix, iy, seed), b = hash2(ix + 1, iy, seed);
    float c = hash2(ix, iy + 1, seed), d = hash2(ix + 1, iy + 1, seed);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

// Fractal sum of octaves, normalised to about [0, 1).
static inline float fbm(float x, float y, uint32_t seed, int octaves) {
    float sum = 0, amp = 0.5f, norm = 0;
    for (int o = 0; o < octaves; o++) {
        sum += amp * value_noise(x, y, seed + 977u * (uint32_t)o);
        norm += amp;
        x *= 2.03f; y *= 2.03f; amp *= 0.5f;
    }
    return sum / norm;
}

#endif
