// The image-caption stream that `kanoclip pretrain` trains a CLIP on: synthetic images drawn on demand from a seed
// (nothing is written to disk), each with a caption of what was drawn (datasets/synth_caption.c).
#include "datasets/synth.h"
#include "datasets/synth_rng.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void synth_pair(uint64_t seed, uint64_t i, int n_classes, float p_anomalous, int twins, int size, uint8_t *img,
                char *caption, size_t cap, int *cls, int *defect) {
    Rng r, twin;
    // "pairs": a stream apart from the datasets' seeds. Twins: pairs 2k and 2k+1 draw class and state from one
    // shared stream, the second taking the other state (a normal image beside a defective one of its class).
    rng_seed(&r, seed_mix(seed, i, 0x7061697273ull, 0));
    rng_seed(&twin, seed_mix(seed, i / 2, 0x7061697273ull, 1));
    Rng *shared = twins ? &twin : &r;
    int c = rng_int(shared, n_classes);
    int anomalous = rng_unit(shared) < p_anomalous;
    if (twins && i % 2) anomalous = !anomalous;
    int kind = anomalous ? (int)synth_class_defect(c, rng_int(&r, synth_class_n_defects(c))) : -1;
    uint64_t render_seed = rng_next(&r), caption_seed = rng_next(&r);
    size_t npix = (size_t)size * size;
    uint8_t *clean = malloc(npix * 3), *mask = malloc(npix);
    synth_render(c, render_seed, size, kind, img, clean, mask);
    SynthCaptionAttrs a;
    int has = kind >= 0 && synth_caption_attrs(size, img, clean, mask, &a) == 0;
    synth_caption(c, has ? kind : -1, has ? &a : NULL, caption_seed, caption, cap);
    free(clean);
    free(mask);
    *cls = c;
    *defect = has ? kind : -1;
}

static int has_word(char **words, int n, const char *w) {
    for (int i = 0; i < n; i++)
        if (!strcmp(words[i], w)) return 1;
    return 0;
}

char **synth_caption_words(int n_classes, int *n_words) {
    // Enough captions that every phrasing, colour, place and size occurs (phrasings are drawn uniformly).
    int cap = 1024, n = 0;
    char **words = malloc(sizeof(char *) * cap);
    uint8_t *img = malloc(32 * 32 * 3);
    char caption[256];
    for (uint64_t i = 0; i < 4000; i++) {
        int cls, defect;
        synth_pair(12345, i, n_classes, 0.5f, 0, 32, img, caption, sizeof caption, &cls, &defect);
        for (char *p = caption; *p;) {
            while (*p && !isalpha((unsigned char)*p)) p++;
            char *start = p;
            while (isalpha((unsigned char)*p)) { *p = (char)tolower((unsigned char)*p); p++; }
            if (p == start) continue;
            char save = *p;
            *p = 0;
            if (!has_word(words, n, start)) {
                if (n == cap) words = realloc(words, sizeof(char *) * (cap *= 2));
                words[n++] = strdup(start);
            }
            *p = save;
        }
    }
    free(img);
    *n_words = n;
    return words;
}
