// The real-size KAnoCLIP training inputs the step benchmarks share (tests/bench_train.c on the CPU,
// tests/bench_train_cuda.c on the device): ViT-L/14-336 widths (P = 768, text tower width 768, 12 layers, context
// 77), a 37x37 grid, 4 stages, 518 px maps, batch B of U classes, random weights and features.
#ifndef TESTS_BENCH_TRAIN_SETUP_H
#define TESTS_BENCH_TRAIN_SETUP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "model/kanoclip.h"

static uint64_t rng_state = 12345;
static float frand(void) {  // uniform in [-1, 1)
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

// Random frozen text-tower weights of any requested shape (LayerNorm weights near 1).
static const float *random_tensor(void *src, const char *name, const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = malloc(n * sizeof(float));
    int is_ln = strstr(name, "norm") != NULL && strstr(name, "weight") != NULL;
    for (size_t i = 0; i < n; i++) x[i] = is_ln ? 1.0f + 0.05f * frand() : 0.03f * frand();
    return x;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int bind_text(ClipText *text) {
    ClipConfig cc = {0};
    cc.text = (TowerShape){768, 12, 12, 3072, 1e-5f, ACT_QUICK_GELU};
    cc.vocab_size = 49408; cc.context_length = 77; cc.eos_token_id = 49407; cc.projection_dim = 768;
    return clip_text_bind(text, &cc, random_tensor, NULL);
}

// Prompts (one per state) and a random knowledge base for U classes.
static int set_inputs(Kanoclip *m, int U) {
    const KanoclipConfig *cfg = kanoclip_config(m);
    int *ids = malloc(sizeof(int) * U * 2 * 77), *eot = malloc(sizeof(int) * U * 2);
    for (int c = 0; c < U; c++)
        for (int s = 0; s < 2; s++) {
            int words[4] = {s ? 600 : 500, 1000 + c, 2000 + c, 269};
            kanoclip_prompt_ids(ids + (c * 2 + s) * 77, eot + c * 2 + s, 77, cfg->n_ctx, words, 4);
        }
    KanoPrompts pr = {U, 77, ids, eot, 1};  // one prompt per state
    uint64_t keep = rng_state;
    rng_state = 777;  // the same knowledge base for every model
    float *kb = malloc(sizeof(float) * U * 768);
    for (int i = 0; i < U * 768; i++) kb[i] = frand();
    rng_state = keep;
    int rc = kanoclip_set_prompts(m, &pr) || kanoclip_set_kb(m, kb) ? -1 : 0;
    free(ids); free(eot); free(kb);
    return rc;
}

// A batch of B images of U classes: random stage and global features, a rectangle of defect in every other mask.
static KanoBatch make_batch(int B, int U) {
    int N = 37 * 37, S = 518;
    size_t nst = (size_t)B * 4 * (N + 1) * 768;
    float *stage = malloc(sizeof(float) * nst), *glob = malloc(sizeof(float) * B * 768);
    float *mask = calloc((size_t)B * S * S, sizeof(float));
    for (size_t i = 0; i < nst; i++) stage[i] = frand();
    for (int i = 0; i < B * 768; i++) glob[i] = frand();
    int *label = malloc(sizeof(int) * B), *cls = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) {
        label[b] = b % 2;
        cls[b] = b % U;
        if (label[b])
            for (int y = 100; y < 220; y++)
                for (int x = 150 + 20 * b; x < 260 + 20 * b; x++) mask[(size_t)b * S * S + y * S + x] = 1.0f;
    }
    KanoBatch batch = {B, stage, glob, mask, label, cls};
    return batch;
}

#endif
