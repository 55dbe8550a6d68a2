// Defects for the synthetic images. Each defect first marks its region (a weight in (0, 1] per pixel), then
// changes exactly those pixels; a pixel whose new colour would differ by less than 0.1 is pushed by 0.15, so the
// mask is exactly the set of changed pixels and every mask pixel is visibly different.
#include "datasets/synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

// A point to centre a defect on: on the object for object classes, away from the border for textures.
static void pick_centre(const Canvas *cv, Rng *r, float *x, float *y) {
    int n = cv->size;
    for (int tries = 0; tries < 200; tries++) {
        *x = rng_range(r, 0.12f, 0.88f) * n;
        *y = rng_range(r, 0.12f, 0.88f) * n;
        if (!cv->cover || cv->cover[(size_t)(int)*y * n + (int)*x] > 0.95f) return;
    }
    *x = *y = n * 0.5f;
}

// A point on the object's outline (for missing pieces).
static void pick_edge(const Canvas *cv, Rng *r, float *x, float *y) {
    int n = cv->size;
    for (int tries = 0; tries < 4000; tries++) {
        int px = rng_int(r, n), py = rng_int(r, n);
        float c = cv->cover[(size_t)py * n + px];
        if (c > 0.2f && c < 0.8f) { *x = px + 0.5f; *y = py + 0.5f; return; }
    }
    pick_centre(cv, r, x, y);
}

// Marks pixels within half_width of segment (ax,ay)-(bx,by).
static void mark_segment(float *w, int n, float ax, float ay, float bx, float by, float half_width) {
    int x0 = (int)floorf(fminf(ax, bx) - half_width - 1), x1 = (int)ceilf(fmaxf(ax, bx) + half_width + 1);
    int y0 = (int)floorf(fminf(ay, by) - half_width - 1), y1 = (int)ceilf(fmaxf(ay, by) + half_width + 1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > n - 1) x1 = n - 1;
    if (y1 > n - 1) y1 = n - 1;
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy + 1e-9f;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float px = x + 0.5f - ax, py = y + 0.5f - ay;
            float t = (px * dx + py * dy) / len2;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            if (ex * ex + ey * ey <= half_width * half_width) w[(size_t)y * n + x] = 1;
        }
}

// A random-walk polyline from (x, y): steps of step_len, heading changing by up to +-turn per step.
static void mark_walk(float *w, int n, Rng *r, float x, float y, float heading, int steps, float step_len,
                      float turn, float half_width) {
    for (int s = 0; s < steps; s++) {
        heading += rng_range(r, -turn, turn);
        float nx = x + cosf(heading) * step_len, ny = y + sinf(heading) * step_len;
        mark_segment(w, n, x, y, nx, ny, half_width);
        x = nx;
        y = ny;
    }
}

// An irregular blob: inside where distance / radius < 1 + wobble * (noise - 0.5). Weight from a second noise.
static void mark_blob(float *w, int n, Rng *r, float cx, float cy, float radius, float wobble) {
    uint32_t s = (uint32_t)rng_next(r);
    float freq = 4.0f / radius, ox = rng_range(r, 0, 100), oy = rng_range(r, 0, 100);
    int x0 = (int)(cx - 2 * radius), x1 = (int)(cx + 2 * radius), y0 = (int)(cy - 2 * radius), y1 = (int)(cy + 2 * radius);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < n; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < n; x++) {
            float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
            float d = sqrtf(dx * dx + dy * dy) / radius;
            float edge = 1 + wobble * (fbm(x * freq * 0.25f + ox, y * freq * 0.25f + oy, s, 3) - 0.5f) * 2;
            if (d < edge) {
                float inner = 0.6f + 0.4f * fbm(x * freq + oy, y * freq + ox, s + 1, 2);
                w[(size_t)y * n + x] = fmaxf(w[(size_t)y * n + x], inner);
            }
        }
}

static void mark_region(const Canvas *cv, SynthDefect d, Rng *r, float *w) {
    int n = cv->size;
    float cx, cy, sz = (float)n;
    float hw_min = fmaxf(0.75f, sz * 0.004f);
    switch (d) {
    case DEFECT_SCRATCH: {
        pick_centre(cv, r, &cx, &cy);
        int steps = 3 + rng_int(r, 3);
        float len = sz * rng_range(r, 0.15f, 0.35f) / steps;
        mark_walk(w, n, r, cx, cy, rng_range(r, 0, 6.2831853f), steps, len, 0.25f, hw_min * rng_range(r, 1.0f, 1.8f));
        break;
    }
    case DEFECT_CRACK: {
        pick_centre(cv, r, &cx, &cy);
        float heading = rng_range(r, 0, 6.2831853f);
        int steps = 12 + rng_int(r, 12);
        float step = sz * rng_range(r, 0.012f, 0.022f);
        mark_walk(w, n, r, cx, cy, heading, steps, step, 0.8f, hw_min * rng_range(r, 0.9f, 1.4f));
        mark_walk(w, n, r, cx, cy, heading + 3.14159f, steps / 2, step, 0.8f, hw_min);
        break;
    }
    case DEFECT_HOLE:
        pick_centre(cv, r, &cx, &cy);
        mark_blob(w, n, r, cx, cy, sz * rng_range(r, 0.03f, 0.065f), 0.25f);
        break;
    case DEFECT_STAIN:
        pick_centre(cv, r, &cx, &cy);
        mark_blob(w, n, r, cx, cy, sz * rng_range(r, 0.06f, 0.13f), 0.5f);
        break;
    case DEFECT_COLOR:
        pick_centre(cv, r, &cx, &cy);
        mark_blob(w, n, r, cx, cy, sz * rng_range(r, 0.08f, 0.15f), 0.35f);
        break;
    case DEFECT_MISSING:
        if (cv->cover) pick_edge(cv, r, &cx, &cy);
        else pick_centre(cv, r, &cx, &cy);
        mark_blob(w, n, r, cx, cy, sz * rng_range(r, 0.06f, 0.11f), 0.3f);
        break;
    case DEFECT_CONTAMINATION: {
        pick_centre(cv, r, &cx, &cy);
        int particles = 4 + rng_int(r, 7);
        float spread = sz * 0.06f;
        for (int p = 0; p < particles; p++) {
            float px = cx + rng_range(r, -spread, spread), py = cy + rng_range(r, -spread, spread);
            mark_blob(w, n, r, px, py, fmaxf(1.2f, sz * rng_range(r, 0.006f, 0.016f)), 0.3f);
        }
        if (rng_unit(r) < 0.5f) // a stray fibre
            mark_walk(w, n, r, cx, cy, rng_range(r, 0, 6.2831853f), 6, sz * 0.015f, 0.6f, hw_min * 0.9f);
        break;
    }
    default: break;
    }
    // On objects defects stay on the object, except contamination, which may fall beside it.
    if (cv->cover && d != DEFECT_CONTAMINATION)
        for (size_t i = 0; i < (size_t)n * n; i++)
            if (cv->cover[i] <= 0.5f) w[i] = 0;
}

int synth_draw_defect(Canvas *cv, SynthDefect d, Rng *r) {
    int n = cv->size;
    size_t npix = (size_t)n * n;
    float *w = malloc(npix * sizeof *w); // (n, n) region weight, 0 outside
    int min_pixels = (int)(npix / 4000) > 6 ? (int)(npix / 4000) : 6, count = 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        memset(w, 0, npix * sizeof *w);
        mark_region(cv, d, r, w);
        count = 0;
        for (size_t i = 0; i < npix; i++) count += w[i] > 0;
        if (count >= min_pixels) break;
    }
    // Defect colours, drawn once per defect.
    static const float stains[3][3] = {{0.32f, 0.22f, 0.08f}, {0.08f, 0.08f, 0.07f}, {0.95f, 0.93f, 0.80f}};
    static const float dirt[3][3] = {{0.05f, 0.05f, 0.05f}, {0.97f, 0.97f, 0.95f}, {0.58f, 0.26f, 0.08f}};
    const float *stain = stains[rng_int(r, 3)], *speck = dirt[rng_int(r, 3)];
    float alpha = rng_range(r, 0.45f, 0.7f);
    int perm = 1 + rng_int(r, 2); // colour shift: rotate channels by 1 or 2
    float tint[3] = {rng_range(r, -0.2f, 0.2f), rng_range(r, -0.2f, 0.2f), rng_range(r, -0.2f, 0.2f)};
    float scratch_light = rng_unit(r) < 0.7f ? 1 : 0;
    for (size_t i = 0; i < npix; i++) {
        if (w[i] <= 0) continue;
        float *p = &cv->rgb[3 * i], old[3] = {p[0], p[1], p[2]}, nw[3];
        for (int c = 0; c < 3; c++) {
            float v = old[c];
            switch (d) {
            case DEFECT_SCRATCH: v = scratch_light ? 0.55f * v + 0.45f * 0.95f : 0.45f * v; break;
            case DEFECT_CRACK: v = 0.2f * v + 0.02f; break;
            case DEFECT_HOLE: v = cv->bg ? 0.55f * cv->bg[3 * i + c] : 0.1f * v + 0.03f * w[i]; break;
            case DEFECT_STAIN: v = v + (stain[c] - v) * alpha * w[i]; break;
            case DEFECT_COLOR: v = 0.35f * v + 0.65f * old[(c + perm) % 3] + tint[c]; break;
            case DEFECT_MISSING: v = cv->bg ? cv->bg[3 * i + c] : 0.1f * v + 0.03f; break;
            case DEFECT_CONTAMINATION: v = speck[c] * (0.8f + 0.3f * w[i]); break;
            default: break;
            }
            nw[c] = clamp01(v);
        }
        float diff = fmaxf(fabsf(nw[0] - old[0]), fmaxf(fabsf(nw[1] - old[1]), fabsf(nw[2] - old[2])));
        if (diff < 0.1f) { // too close to the original to see (or to count as changed): push away from it
            float mean = (old[0] + old[1] + old[2]) / 3;
            for (int c = 0; c < 3; c++) nw[c] = clamp01(old[c] + (mean > 0.5f ? -0.15f : 0.15f));
        }
        for (int c = 0; c < 3; c++) p[c] = nw[c];
        cv->mask[i] = 1;
    }
    free(w);
    return count;
}
