// The class table and the normal images: textures (woven, grained, speckled, brushed, mesh, tiled, cellular) and
// objects on a background (disc, ring, rounded box, hex nut, capsule, button), each with per-image jitter of
// position, angle, frequency and colour.
#include "datasets/synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D(x) DEFECT_##x
// Classes alternate textures and objects, so any prefix of the table mixes both.
static const SynthClass classes[] = {
    {"woven_fabric", KIND_WOVEN, {0.12f, 0.18f, 0.38f}, {0.55f, 0.62f, 0.78f}, 18, {D(HOLE), D(STAIN), D(CONTAMINATION)}},
    {"brass_disc", KIND_DISC, {0.78f, 0.62f, 0.25f}, {0.16f, 0.16f, 0.18f}, 10, {D(SCRATCH), D(COLOR), D(MISSING)}},
    {"oak_wood", KIND_GRAINED, {0.36f, 0.21f, 0.10f}, {0.74f, 0.55f, 0.34f}, 7, {D(CRACK), D(HOLE), D(STAIN)}},
    {"rubber_ring", KIND_RING, {0.10f, 0.10f, 0.11f}, {0.78f, 0.78f, 0.74f}, 14, {D(CRACK), D(MISSING), D(CONTAMINATION)}},
    {"granite_stone", KIND_SPECKLED, {0.30f, 0.30f, 0.32f}, {0.66f, 0.64f, 0.62f}, 20, {D(CRACK), D(STAIN), D(COLOR)}},
    {"green_pill", KIND_CAPSULE, {0.30f, 0.62f, 0.30f}, {0.90f, 0.90f, 0.88f}, 8, {D(COLOR), D(CRACK), D(CONTAMINATION)}},
    {"brushed_steel", KIND_BRUSHED, {0.62f, 0.64f, 0.67f}, {0.80f, 0.82f, 0.85f}, 40, {D(SCRATCH), D(STAIN), D(HOLE)}},
    {"hex_nut", KIND_HEX_NUT, {0.45f, 0.47f, 0.50f}, {0.72f, 0.62f, 0.45f}, 12, {D(SCRATCH), D(MISSING), D(COLOR)}},
    {"wire_mesh", KIND_MESH, {0.22f, 0.22f, 0.24f}, {0.86f, 0.80f, 0.66f}, 12, {D(HOLE), D(CONTAMINATION), D(COLOR)}},
    {"ceramic_button", KIND_BUTTON, {0.92f, 0.88f, 0.78f}, {0.20f, 0.32f, 0.55f}, 6, {D(CRACK), D(MISSING), D(STAIN)}},
    {"terracotta_tile", KIND_TILED, {0.55f, 0.52f, 0.48f}, {0.72f, 0.36f, 0.20f}, 4, {D(CRACK), D(HOLE), D(STAIN)}},
    {"copper_washer", KIND_RING, {0.76f, 0.42f, 0.24f}, {0.12f, 0.16f, 0.30f}, 10, {D(SCRATCH), D(COLOR), D(CONTAMINATION)}},
    {"leather_hide", KIND_CELLULAR, {0.30f, 0.12f, 0.08f}, {0.52f, 0.26f, 0.16f}, 22, {D(SCRATCH), D(HOLE), D(COLOR)}},
    {"plastic_cap", KIND_ROUNDED_BOX, {0.80f, 0.16f, 0.14f}, {0.82f, 0.84f, 0.86f}, 9, {D(SCRATCH), D(MISSING), D(STAIN)}},
    {"cork_board", KIND_SPECKLED, {0.50f, 0.34f, 0.18f}, {0.80f, 0.64f, 0.42f}, 48, {D(HOLE), D(CONTAMINATION), D(STAIN)}},
    {"blue_tablet", KIND_CAPSULE, {0.30f, 0.44f, 0.82f}, {0.55f, 0.55f, 0.52f}, 7, {D(CRACK), D(COLOR), D(CONTAMINATION)}},
    // classes 16.. (the captioned pool of `kanoclip pretrain`): the same kinds in other colours and scales
    {"denim_fabric", KIND_WOVEN, {0.10f, 0.14f, 0.30f}, {0.36f, 0.44f, 0.62f}, 26, {D(HOLE), D(STAIN), D(COLOR)}},
    {"silver_coin", KIND_DISC, {0.80f, 0.80f, 0.82f}, {0.30f, 0.20f, 0.12f}, 14, {D(SCRATCH), D(STAIN), D(MISSING)}},
    {"pine_wood", KIND_GRAINED, {0.62f, 0.44f, 0.22f}, {0.90f, 0.78f, 0.55f}, 11, {D(CRACK), D(STAIN), D(CONTAMINATION)}},
    {"black_gasket", KIND_RING, {0.06f, 0.06f, 0.07f}, {0.60f, 0.70f, 0.62f}, 8, {D(CRACK), D(MISSING), D(COLOR)}},
    {"white_marble", KIND_SPECKLED, {0.70f, 0.70f, 0.72f}, {0.94f, 0.93f, 0.90f}, 9, {D(CRACK), D(STAIN), D(CONTAMINATION)}},
    {"red_capsule", KIND_CAPSULE, {0.80f, 0.18f, 0.16f}, {0.25f, 0.25f, 0.28f}, 10, {D(CRACK), D(HOLE), D(COLOR)}},
    {"brushed_aluminum", KIND_BRUSHED, {0.74f, 0.75f, 0.78f}, {0.58f, 0.60f, 0.64f}, 70, {D(SCRATCH), D(HOLE), D(CONTAMINATION)}},
    {"bolt_head", KIND_HEX_NUT, {0.30f, 0.32f, 0.36f}, {0.85f, 0.86f, 0.88f}, 16, {D(SCRATCH), D(COLOR), D(STAIN)}},
    {"chain_fence", KIND_MESH, {0.58f, 0.60f, 0.60f}, {0.20f, 0.42f, 0.18f}, 7, {D(HOLE), D(COLOR), D(STAIN)}},
    {"wooden_button", KIND_BUTTON, {0.55f, 0.36f, 0.18f}, {0.86f, 0.84f, 0.80f}, 12, {D(CRACK), D(SCRATCH), D(CONTAMINATION)}},
    {"slate_tile", KIND_TILED, {0.20f, 0.20f, 0.22f}, {0.38f, 0.40f, 0.44f}, 6, {D(CRACK), D(STAIN), D(MISSING)}},
    {"sugar_cube", KIND_ROUNDED_BOX, {0.96f, 0.95f, 0.92f}, {0.30f, 0.22f, 0.40f}, 20, {D(MISSING), D(STAIN), D(COLOR)}},
    {"yellow_sponge", KIND_CELLULAR, {0.70f, 0.58f, 0.10f}, {0.95f, 0.85f, 0.30f}, 14, {D(HOLE), D(STAIN), D(CONTAMINATION)}},
    {"glass_bead", KIND_DISC, {0.40f, 0.70f, 0.72f}, {0.92f, 0.92f, 0.94f}, 5, {D(CRACK), D(COLOR), D(CONTAMINATION)}},
    {"carbon_weave", KIND_WOVEN, {0.05f, 0.05f, 0.06f}, {0.30f, 0.30f, 0.33f}, 14, {D(SCRATCH), D(HOLE), D(COLOR)}},
    {"orange_lid", KIND_ROUNDED_BOX, {0.95f, 0.52f, 0.10f}, {0.16f, 0.30f, 0.30f}, 8, {D(SCRATCH), D(CRACK), D(CONTAMINATION)}},
};
#undef D
enum { n_classes = sizeof classes / sizeof classes[0] };

static const char *const defect_names[DEFECT_N_KINDS] = {
    "scratch", "crack", "hole", "stain", "color", "missing", "contamination",
};

int synth_n_classes(void) { return n_classes; }
const SynthClass *synth_class(int cls) { return &classes[cls]; }
const char *synth_class_name(int cls) { return classes[cls].name; }
int synth_class_n_defects(int cls) { return 3; }
SynthDefect synth_class_defect(int cls, int k) { return classes[cls].defects[k]; }
const char *synth_defect_name(SynthDefect d) { return defect_names[d]; }

static float clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static float mixf(float a, float b, float t) { return a + (b - a) * t; }
static float smooth01(float e0, float e1, float x) {
    float t = clamp01((x - e0) / (e1 - e0));
    return t * t * (3 - 2 * t);
}

// Per-image variation of a class.
typedef struct {
    float ox, oy;     // noise offsets
    float angle;      // pattern / object rotation
    float ca, sa;     // its cosine and sine
    float freq;       // jittered frequency
    float c0[3], c1[3];
    float cx, cy;     // object centre (fraction of the side)
    float scale;      // object size factor
    uint32_t nseed;   // noise seed
} Look;

static void make_look(const SynthClass *k, Rng *r, Look *L) {
    L->ox = rng_range(r, 0, 200);
    L->oy = rng_range(r, 0, 200);
    L->angle = KIND_IS_OBJECT(k->kind) ? rng_range(r, 0, 6.2831853f) : rng_range(r, -0.12f, 0.12f);
    L->ca = cosf(L->angle);
    L->sa = sinf(L->angle);
    L->freq = k->freq * rng_range(r, 0.92f, 1.08f);
    float bright = rng_range(r, 0.94f, 1.06f);
    for (int c = 0; c < 3; c++) {
        L->c0[c] = clamp01(k->c0[c] * bright + rng_range(r, -0.025f, 0.025f));
        L->c1[c] = clamp01(k->c1[c] * bright + rng_range(r, -0.025f, 0.025f));
    }
    L->cx = 0.5f + rng_range(r, -0.05f, 0.05f);
    L->cy = 0.5f + rng_range(r, -0.05f, 0.05f);
    L->scale = rng_range(r, 0.92f, 1.06f);
    L->nseed = (uint32_t)rng_next(r);
}

// One texture pixel at (u, v) in [0, 1)^2; writes out[3].
static void texture_pixel(const SynthClass *k, const Look *L, float u, float v, float *out) {
    float ru = L->ca * u - L->sa * v, rv = L->sa * u + L->ca * v; // rotated coordinates
    float f = L->freq, t = 0, fine = value_noise(u * 64 + L->ox, v * 64 + L->oy, L->nseed + 7) - 0.5f;
    switch (k->kind) {
    case KIND_WOVEN: {
        float pu = ru * f + L->ox, pv = rv * f + L->oy;
        int iu = (int)floorf(pu), iv = (int)floorf(pv);
        float fu = pu - iu, fv = pv - iv;
        int over = (iu + iv) & 1; // warp over weft on a checkerboard
        float across = over ? fv : fu;
        float profile = sinf(3.14159265f * across);
        t = (over ? 0.35f : 0.65f) + 0.25f * (profile - 0.5f) + 0.25f * fine;
        float shade = 0.45f + 0.55f * profile;
        for (int c = 0; c < 3; c++) out[c] = mixf(L->c0[c], L->c1[c], clamp01(t)) * shade;
        return;
    }
    case KIND_GRAINED: {
        float warp = fbm(u * 3 + L->ox, v * 10 + L->oy, L->nseed, 4);
        float ring = 0.5f + 0.5f * sinf(6.2831853f * (f * rv + 2.2f * warp));
        t = ring * ring * sqrtf(ring) * 0.85f + 0.3f * fine; // ring^2.5: sharp dark latewood lines
        break;
    }
    case KIND_SPECKLED: {
        float base = fbm(u * f * 0.25f + L->ox, v * f * 0.25f + L->oy, L->nseed, 4);
        t = 0.3f + 0.6f * base;
        float s = hash2((int)floorf(u * f * 4 + L->ox * 7), (int)floorf(v * f * 4 + L->oy * 7), L->nseed + 1);
        if (s > 0.90f) t = 0.05f;       // dark grain
        else if (s < 0.06f) t = 0.98f;  // light grain
        t += 0.2f * fine;
        break;
    }
    case KIND_BRUSHED: {
        float streak = fbm(ru * 1.5f + L->ox, rv * f * 6 + L->oy, L->nseed, 5);
        t = 0.2f + 0.8f * streak + 0.25f * (ru - 0.5f) * (ru - 0.5f);
        break;
    }
    case KIND_MESH: {
        float pu = ru * f + L->ox, pv = rv * f + L->oy;
        float du = fabsf(pu - floorf(pu) - 0.5f), dv = fabsf(pv - floorf(pv) - 0.5f);
        float wire = fmaxf(smooth01(0.36f, 0.42f, du), smooth01(0.36f, 0.42f, dv));
        t = 1 - wire + 0.15f * fine;
        float shadow = 1 - 0.25f * fmaxf(smooth01(0.28f, 0.36f, du), smooth01(0.28f, 0.36f, dv)) * (1 - wire);
        for (int c = 0; c < 3; c++) out[c] = mixf(L->c0[c], L->c1[c], clamp01(t)) * shadow;
        return;
    }
    case KIND_TILED: {
        float pu = ru * f + L->ox, pv = rv * f + L->oy;
        int iu = (int)floorf(pu), iv = (int)floorf(pv);
        float du = fabsf(pu - iu - 0.5f), dv = fabsf(pv - iv - 0.5f);
        float grout = fmaxf(smooth01(0.44f, 0.47f, du), smooth01(0.44f, 0.47f, dv));
        float tile_shade = 0.82f + 0.3f * hash2(iu, iv, L->nseed);
        float mottle = fbm(u * 12 + L->ox, v * 12 + L->oy, L->nseed + 3, 3);
        for (int c = 0; c < 3; c++)
            out[c] = mixf(L->c1[c] * tile_shade * (0.85f + 0.3f * mottle), L->c0[c], grout) + 0.06f * fine;
        return;
    }
    case KIND_CELLULAR: {
        float pu = u * f + L->ox, pv = v * f + L->oy;
        int iu = (int)floorf(pu), iv = (int)floorf(pv);
        float d1 = 9, d2 = 9; // nearest and second nearest feature points (Worley)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                float fx = iu + dx + hash2(iu + dx, iv + dy, L->nseed);
                float fy = iv + dy + hash2(iu + dx, iv + dy, L->nseed + 11);
                float d = (fx - pu) * (fx - pu) + (fy - pv) * (fy - pv);
                if (d < d1) { d2 = d1; d1 = d; } else if (d < d2) d2 = d;
            }
        float crease = smooth01(0.0f, 0.25f, sqrtf(d2) - sqrtf(d1));
        t = 0.15f + 0.75f * crease + 0.2f * fine;
        break;
    }
    default: break;
    }
    t = clamp01(t);
    for (int c = 0; c < 3; c++) out[c] = mixf(L->c0[c], L->c1[c], t);
}

// Signed distance (in units of the image side) from (x, y), relative to the object's centre and rotated into
// its frame, to the object's outline; negative inside.
static float object_sdf(SynthKind kind, float s, float x, float y) {
    float r = sqrtf(x * x + y * y);
    switch (kind) {
    case KIND_DISC: return r - 0.32f * s;
    case KIND_RING: return fabsf(r - 0.27f * s) - 0.085f * s;
    case KIND_ROUNDED_BOX: {
        float bx = 0.30f * s, by = 0.21f * s, rc = 0.07f * s;
        float qx = fabsf(x) - bx + rc, qy = fabsf(y) - by + rc;
        float ox = fmaxf(qx, 0), oy = fmaxf(qy, 0);
        return sqrtf(ox * ox + oy * oy) + fminf(fmaxf(qx, qy), 0) - rc;
    }
    case KIND_HEX_NUT: {
        float R = 0.30f * s, ax = fabsf(x), ay = fabsf(y);
        float hex = fmaxf(ax * 0.8660254f + ay * 0.5f, ay) - R * 0.8660254f; // flat-topped hexagon
        return fmaxf(hex, -(r - 0.13f * s));
    }
    case KIND_CAPSULE: {
        float half = 0.19f * s, rad = 0.12f * s;
        float px = fabsf(x) - half;
        px = px < 0 ? 0 : px;
        return sqrtf(px * px + y * y) - rad;
    }
    case KIND_BUTTON: {
        float d = r - 0.30f * s;
        float hole = 9;
        for (int i = 0; i < 4; i++) {
            float hx = (i & 1 ? 0.07f : -0.07f) * s, hy = (i & 2 ? 0.07f : -0.07f) * s;
            hole = fminf(hole, sqrtf((x - hx) * (x - hx) + (y - hy) * (y - hy)) - 0.03f * s);
        }
        return fmaxf(d, -hole);
    }
    default: return 1;
    }
}

// Object image: background (gradient, mottling, the object's soft shadow), then the shaded object over it.
static void render_object(const SynthClass *k, const Look *L, int n, float *rgb, float *bg, float *cover) {
    float ca = L->ca, sa = L->sa;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float u = (x + 0.5f) / n, v = (y + 0.5f) / n;
            float dx = u - L->cx, dy = v - L->cy;
            float lx = ca * dx + sa * dy, ly = -sa * dx + ca * dy;
            float d = object_sdf(k->kind, L->scale, lx, ly);
            float shadow = 1;
            if (d < 0.07f) { // the shadow is offset by 0.032 and blurred over 0.04: farther out it is nil
                float sdx = dx - 0.02f, sdy = dy - 0.025f; // shadow offset down-right
                float ds = object_sdf(k->kind, L->scale, ca * sdx + sa * sdy, -sa * sdx + ca * sdy);
                shadow = 1 - 0.35f * (1 - smooth01(-0.01f, 0.03f, ds));
            }
            float mottle = fbm(u * 6 + L->ox, v * 6 + L->oy, L->nseed + 5, 2);
            float grad = 1.04f - 0.1f * v;
            float a = clamp01(0.5f - d * n); // coverage, anti-aliased over about one pixel
            size_t i = (size_t)y * n + x;
            cover[i] = a;
            float light = 0, spec = 0, fine = 0;
            if (a > 0) {
                fine = fbm(u * L->freq * 8 + L->ox, v * L->freq * 8 + L->oy, L->nseed + 9, 2) - 0.5f;
                // dome shading lit from the top left, plus a highlight
                float R = 0.32f * L->scale;
                float rr = fminf(sqrtf(dx * dx + dy * dy) / R, 1);
                light = 0.8f + 0.35f * (-(dx + dy) / (R * 1.4142f)) * (1 - 0.5f * rr);
                float hx = dx + 0.35f * R, hy = dy + 0.35f * R;
                spec = 0.25f * expf(-(hx * hx + hy * hy) / (0.02f * R * R + 1e-6f));
            }
            for (int c = 0; c < 3; c++) {
                float b = clamp01(L->c1[c] * grad * (0.9f + 0.2f * mottle) * shadow);
                bg[3 * i + c] = b;
                rgb[3 * i + c] = a > 0 ? mixf(b, clamp01(L->c0[c] * light * (1 + 0.12f * fine) + spec), a) : b;
            }
        }
}

static void render_texture(const SynthClass *k, const Look *L, int n, float *rgb) {
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float out[3];
            texture_pixel(k, L, (x + 0.5f) / n, (y + 0.5f) / n, out);
            for (int c = 0; c < 3; c++) rgb[3 * ((size_t)y * n + x) + c] = clamp01(out[c]);
        }
}

static void to_bytes(const float *rgb, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)lrintf(clamp01(rgb[i]) * 255.0f);
}

void synth_render(int cls, uint64_t seed, int size, int defect, uint8_t *img, uint8_t *clean, uint8_t *mask) {
    const SynthClass *k = &classes[cls];
    size_t npix = (size_t)size * size;
    float *rgb = malloc(npix * 3 * sizeof *rgb);
    float *bg = NULL, *cover = NULL;
    Rng r;
    rng_seed(&r, seed);
    Look L;
    make_look(k, &r, &L);
    if (KIND_IS_OBJECT(k->kind)) {
        bg = malloc(npix * 3 * sizeof *bg);
        cover = malloc(npix * sizeof *cover);
        render_object(k, &L, size, rgb, bg, cover);
    } else {
        render_texture(k, &L, size, rgb);
    }
    // Quantise first, so that the defect's "changed by >= 0.1" holds on the bytes written, not just in floats.
    to_bytes(rgb, npix * 3, img);
    for (size_t i = 0; i < npix * 3; i++) rgb[i] = img[i] / 255.0f;
    if (clean) memcpy(clean, img, npix * 3);
    memset(mask, 0, npix);
    if (defect >= 0) {
        Canvas cv = {size, rgb, bg, cover, mask, k};
        synth_draw_defect(&cv, (SynthDefect)defect, &r);
        for (size_t i = 0; i < npix; i++) {
            if (!mask[i]) continue; // outside the mask the bytes stay exactly as rendered
            for (int c = 0; c < 3; c++) img[3 * i + c] = (uint8_t)lrintf(clamp01(rgb[3 * i + c]) * 255.0f);
            mask[i] = 255;
        }
    }
    free(rgb);
    free(bg);
    free(cover);
}
