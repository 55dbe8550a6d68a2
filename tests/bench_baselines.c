// The trained baselines' heads at the demo's sizes (experiments/baselines/demo-april-gan.yaml, demo-anomalyclip.yaml:
// models/tiny-clip, 64 px, maps from layers 1-4, batch 8, one thread as run.threads): features extracted once from
// random pixels, then the time per training step (features -> loss, gradient, Adam) and per scoring batch, best
// of `rounds` rounds of `steps` steps, as the process's CPU time (one thread: what the step costs, less exposed
// to other load on the machine than the wall time). The heads run on the backend KANOCLIP_BACKEND names (cpu by
// default).
// Usage: bench_baselines [steps=20] [rounds=5]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "model/baselines.h"

#define MODEL "models/tiny-clip"
#define S 64
#define B 8

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static uint64_t rng_state = 12345;
static float frand(void) {  // uniform in [0, 1)
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static int bench(const char *method, ClipModel *model, Tokenizer *tok, int steps, int rounds) {
    BaselineConfig c;
    baseline_config_defaults(&c, baseline_method_from_name(method), model->vision.shape.layers);
    c.image_size = S;
    c.beta1 = 0.5f;
    c.beta2 = 0.999f;
    if (c.method == BL_APRILGAN) {  // demo-april-gan.yaml
        c.softmax_first = 0, c.align_corners = 1, c.logit_scale = 100.0f;
    } else {                        // demo-anomalyclip.yaml (model.vv_from 2 of demo.yaml)
        c.n_ctx = 4, c.deep_depth = 2, c.deep_len = 2, c.sigma = 1.0f, c.global_ln_post = 0, c.vv_from = 2;
    }
    Baseline *b = baseline_new(&c, model, tok);
    BaselineFeatures *f = b ? baseline_features_new(b, B) : NULL;
    float *pixels = malloc(sizeof(float) * B * 3 * S * S), *masks = malloc(sizeof(float) * B * S * S);
    float *maps = malloc(sizeof(float) * B * S * S), scores[B];
    int labels[B];
    const char *names[B];
    for (int i = 0; i < B * 3 * S * S; i++) pixels[i] = 2 * frand() - 1;
    for (int i = 0; i < B; i++) {
        labels[i] = i % 2;
        names[i] = i < B / 2 ? "granite_stone" : "metal_nut";
        for (int q = 0; q < S * S; q++)  // a square defect on the anomalous images
            masks[i * S * S + q] = labels[i] && q / S > 20 && q / S < 40 && q % S > 10 && q % S < 30;
    }
    if (!f || baseline_extract(b, pixels, f)) { fprintf(stderr, "bench_baselines: %s\n", err_msg()); return 1; }
    float loss = 0;
    double best_step = 1e30, best_score = 1e30;
    for (int r = 0; r <= rounds; r++) {  // round 0 warms up (text cache, allocations)
        double t0 = now();
        for (int s = 0; s < steps; s++)
            if (baseline_train_step_features(b, f, masks, labels, names, &loss)) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        double t1 = now();
        for (int s = 0; s < steps; s++)
            if (baseline_score_features(b, names[0], f, scores, maps)) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        double t2 = now();
        if (r && (t1 - t0) / steps < best_step) best_step = (t1 - t0) / steps;
        if (r && (t2 - t1) / steps < best_score) best_score = (t2 - t1) / steps;
    }
    printf("%-12s %zu parameters: train step %.3f ms, scoring batch %.3f ms CPU (batch %d, %d px; loss %.6g)\n", method,
           baseline_n_params(b), 1e3 * best_step, 1e3 * best_score, B, S, loss);
    baseline_features_free(f);
    baseline_free(b);
    free(pixels); free(masks); free(maps);
    return 0;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 20, rounds = argc > 2 ? atoi(argv[2]) : 5;
    omp_set_num_threads(1);
    ClipModel *model = clip_model_load(MODEL, CLIP_TEXT | CLIP_VISION);
    Tokenizer *tok = model ? tokenizer_load_dir(MODEL) : NULL;
    if (!tok) { fprintf(stderr, "bench_baselines: %s\n", err_msg()); return 1; }
    const char *be = getenv("KANOCLIP_BACKEND");
    printf("backend %s, %d steps x %d rounds (best round)\n", be && *be ? be : "cpu", steps, rounds);
    int rc = bench("april-gan", model, tok, steps, rounds) || bench("anomalyclip", model, tok, steps, rounds);
    tokenizer_free(tok);
    clip_model_free(model);
    return rc;
}
