// Captions of synthetic images, from what was drawn: the class, normal or defective, and for a defect its kind and
// where, how large and what colour its mask's pixels are. Phrasings vary by a seed, and include the state words
// the zero-shot prompts use (WinCLIP's "flawless"/"with defect", CLIP's "normal"/"anomalous": model/baseline_prompts.c),
// as web captions hold the words a zero-shot prompt later asks about.
#include "datasets/synth.h"
#include "datasets/synth_rng.h"

#include <stdio.h>
#include <string.h>

static const char *const defect_nouns[DEFECT_N_KINDS] = {
    "scratch", "crack", "hole", "stain", "discoloration", "missing piece", "contamination",
};

// The nearest of a few colour names to an RGB mean in [0, 1].
static const char *colour_name(const float rgb[3]) {
    static const struct { const char *name; float c[3]; } named[] = {
        {"black", {0.05f, 0.05f, 0.05f}}, {"white", {0.95f, 0.95f, 0.93f}}, {"grey", {0.5f, 0.5f, 0.5f}},
        {"brown", {0.4f, 0.25f, 0.1f}},   {"red", {0.8f, 0.15f, 0.12f}},    {"orange", {0.95f, 0.55f, 0.1f}},
        {"yellow", {0.9f, 0.85f, 0.2f}},  {"green", {0.2f, 0.6f, 0.25f}},   {"blue", {0.2f, 0.3f, 0.8f}},
        {"purple", {0.5f, 0.2f, 0.6f}},
    };
    int best = 0;
    float bd = 1e9f;
    for (int i = 0; i < (int)(sizeof named / sizeof *named); i++) {
        float d = 0;
        for (int c = 0; c < 3; c++) d += (rgb[c] - named[i].c[c]) * (rgb[c] - named[i].c[c]);
        if (d < bd) bd = d, best = i;
    }
    return named[best].name;
}

int synth_caption_attrs(int size, const uint8_t *img, const uint8_t *clean, const uint8_t *mask, SynthCaptionAttrs *a) {
    double sx = 0, sy = 0, n = 0, rgb[3] = {0, 0, 0}, dl = 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            size_t i = (size_t)y * size + x;
            if (!mask[i]) continue;
            sx += x + 0.5, sy += y + 0.5, n++;
            for (int c = 0; c < 3; c++) {
                rgb[c] += img[3 * i + c] / 255.0;
                dl += (img[3 * i + c] - (double)clean[3 * i + c]) / (3 * 255.0);
            }
        }
    if (n == 0) return -1;
    float cx = (float)(sx / n / size), cy = (float)(sy / n / size), frac = (float)(n / ((double)size * size));
    const char *v = cy < 0.38f ? "top" : cy > 0.62f ? "bottom" : NULL;
    const char *h = cx < 0.38f ? "left" : cx > 0.62f ? "right" : NULL;
    if (v && h) snprintf(a->place, sizeof a->place, "%s %s", v, h);
    else snprintf(a->place, sizeof a->place, "%s", v ? v : h ? h : "centre");
    a->size = frac < 0.015f ? "small" : frac < 0.05f ? "medium" : "large";
    float mean[3] = {(float)(rgb[0] / n), (float)(rgb[1] / n), (float)(rgb[2] / n)};
    a->colour = colour_name(mean);
    dl /= n;
    a->shade = dl < -0.12 ? "dark" : dl > 0.12 ? "bright" : NULL;
    return 0;
}

int synth_caption(int cls, int defect, const SynthCaptionAttrs *a, uint64_t seed, char *out, size_t cap) {
    char name[64];
    snprintf(name, sizeof name, "%s", synth_class_name(cls));
    for (char *p = name; *p; p++)
        if (*p == '_') *p = ' ';
    Rng r;
    rng_seed(&r, seed);
    if (defect < 0 || !a) {
        static const char *const normal[] = {
            "a photo of a flawless %s.", "a photo of a normal %s.", "a photo of a %s without defect.",
            "a perfect %s.", "an unblemished %s.", "a %s without damage.", "a close-up photo of a good %s.",
            "a %s without flaw.", "flawless %s", "normal %s",
        };
        return snprintf(out, cap, normal[rng_int(&r, sizeof normal / sizeof *normal)], name) < (int)cap ? 0 : -1;
    }
    const char *noun = defect_nouns[defect];
    char look[64];  // "small dark" / "large red"
    snprintf(look, sizeof look, "%s %s", a->size, a->shade && rng_int(&r, 2) ? a->shade : a->colour);
    const char *art = strchr("aeiou", look[0]) ? "an" : "a";
    int n = 0;
    switch (rng_int(&r, 9)) {
    case 0: n = snprintf(out, cap, "a photo of a damaged %s.", name); break;
    case 1: n = snprintf(out, cap, "a photo of an anomalous %s.", name); break;
    case 2: n = snprintf(out, cap, "%s with %s %s %s near the %s.", name, art, look, noun, a->place); break;
    case 3: n = snprintf(out, cap, "a damaged %s with %s %s %s.", name, art, look, noun); break;
    case 4: n = snprintf(out, cap, "a photo of a %s with a defect: %s %s at the %s.", name, art, noun, a->place); break;
    case 5: n = snprintf(out, cap, "%s %s %s on the %s.", art, look, noun, name); break;
    case 6: n = snprintf(out, cap, "an anomalous %s with a %s at the %s.", name, noun, a->place); break;
    case 7: n = snprintf(out, cap, "a %s with damage, %s %s %s.", name, art, look, noun); break;
    default: n = snprintf(out, cap, "a %s with flaw: %s %s near the %s.", name, art, noun, a->place); break;
    }
    return n < (int)cap ? 0 : -1;
}
