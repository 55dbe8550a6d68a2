// The engine's side of `make bench` (tests/bench_engine.py drives it):
//   bench_engine serve DIR S     load DIR's vision tower at input size S (weights packed ahead of time for the
//                                GEMM kernel unless BENCH_NO_PREPACK is set), then answer lines on stdin:
//                                  "vision B N"  -> "vision B SECONDS_PER_FORWARD" (N timed forwards, batch B)
//                                  "sgemm B N"   -> "sgemm B GFLOPS" (OpenBLAS SGEMM over the tower's GEMM shapes
//                                                   at B*T rows, N rounds; FLOP-weighted)
//                                  "text B N"    -> "text B SECONDS" (text forward + backward to the inputs, B
//                                                   prompts of 77 tokens: one prompt-learning step)
//                                  "rss"         -> "rss PEAK_KB"
//   bench_engine memory DIR S    one image at S through the method's forward (image_embeds; V-V from layer 6;
//                                stages 6/12/18/24 after post-LN + projection) and print the peak RSS, the
//                                resident file-mapped part (the weights) and the anonymous part.
#include "model/clip_model.h"
#include "common/error.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(void) { return omp_get_wtime(); }

// A field of /proc/self/status in kB (VmHWM, RssFile, RssAnon), -1 if absent.
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

static void fill_random(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
}

// FLOP-weighted OpenBLAS SGEMM rate over the shapes one vision layer runs at N rows (NT layout, as the tower).
static double sgemm_rate(const ClipVision *v, int N, int rounds) {
    int W = v->shape.width, Wm = v->shape.mlp, K = v->channels * v->patch_size * v->patch_size;
    int shapes[5][2] = {{3 * W, W}, {W, W}, {Wm, W}, {W, Wm}, {W, K}};  // (OC, C): qkv, out, fc1, fc2, patch
    size_t maxc = Wm > K ? Wm : K, maxo = 3 * W > Wm ? 3 * W : Wm;
    float *a = malloc(sizeof(float) * N * maxc), *b = malloc(sizeof(float) * maxo * maxc),
          *c = malloc(sizeof(float) * N * maxo);
    fill_random(a, (size_t)N * maxc, 1);
    fill_random(b, maxo * maxc, 2);
    double flops = 0, secs = 0;
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < 5; s++) {
            int OC = shapes[s][0], C = shapes[s][1];
            double t = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, a, C, b, C, 0.0f, c, OC);
            secs += now() - t;
            flops += 2.0 * N * OC * C;
        }
    free(a);
    free(b);
    free(c);
    return flops / secs / 1e9;
}

static int serve(const char *dir, int S) {
    ClipModel *m = clip_model_load(dir, CLIP_VISION | CLIP_TEXT);
    if (!m) { fprintf(stderr, "bench_engine: %s\n", err_msg()); return 1; }
    if (!getenv("BENCH_NO_PREPACK") && clip_vision_prepack(&m->vision) < 0) {
        fprintf(stderr, "bench_engine: %s\n", err_msg());
        return 1;
    }
    ClipVisionRun *r = clip_vision_run_new(&m->vision, S, CLIP_POS_BILINEAR);
    ClipTextRun *tr = clip_text_run_new(&m->text, 1);
    int T = clip_vision_tokens(r), P = m->vision.proj_dim, Wt = m->text.shape.width;
    char line[256], what[32];
    int B, n;
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int ok = sscanf(line, "%31s %d %d", what, &B, &n) == 3 && B > 0 && B <= 64 && n > 0;
        if (!strncmp(line, "rss", 3)) {
            printf("rss %ld\n", status_kb("VmHWM"));
        } else if (ok && !strcmp(what, "sgemm")) {
            printf("sgemm %d %.2f\n", B, sgemm_rate(&m->vision, B * T, n));
        } else if (ok && !strcmp(what, "vision")) {
            float *px = malloc(sizeof(float) * B * 3 * S * S), *emb = malloc(sizeof(float) * B * P);
            fill_random(px, (size_t)B * 3 * S * S, 7);
            ClipVisionOut out = {.image_embeds = emb};
            double t = now();
            for (int i = 0; i < n; i++) clip_vision_forward(r, px, B, &out);
            printf("vision %d %.6f\n", B, (now() - t) / n);
            free(px);
            free(emb);
        } else if (ok && !strcmp(what, "text")) {
            // B prompts of 77 positions pooled at the last one; context vectors would sit at 1..12
            float *emb = malloc(sizeof(float) * B * 77 * Wt), *d = calloc((size_t)B * 77 * Wt, 4);
            float *out = malloc(sizeof(float) * B * P), *dout = malloc(sizeof(float) * B * P);
            int eot[64];
            fill_random(emb, (size_t)B * 77 * Wt, 3);
            fill_random(dout, (size_t)B * P, 4);
            for (int b = 0; b < B; b++) eot[b] = 76;
            double t = now();
            for (int i = 0; i < n; i++) {
                clip_text_forward(tr, emb, eot, B, 77, out);
                clip_text_backward(tr, d, dout);
            }
            printf("text %d %.6f\n", B, (now() - t) / n);
            free(emb), free(d), free(out), free(dout);
        } else {
            printf("error unknown request\n");
        }
        fflush(stdout);
    }
    clip_text_run_free(tr);
    clip_vision_run_free(r);
    clip_model_free(m);
    return 0;
}

static int memory(const char *dir, int S) {
    long base = status_kb("VmHWM");
    ClipModel *m = clip_model_load(dir, CLIP_VISION);
    if (!m) { fprintf(stderr, "bench_engine: %s\n", err_msg()); return 1; }
    const ClipVision *v = &m->vision;
    ClipVisionRun *r = clip_vision_run_new(v, S, CLIP_POS_BILINEAR);
    if (!r) { fprintf(stderr, "bench_engine: %s\n", err_msg()); return 1; }
    int T = clip_vision_tokens(r), P = v->proj_dim, L = v->shape.layers;
    int stages[4] = {L / 4, L / 2, 3 * L / 4, L};
    float *st[4], *px = malloc(sizeof(float) * 3 * S * S), emb[2048];
    for (int i = 0; i < 4; i++) st[i] = malloc(sizeof(float) * T * P);
    fill_random(px, (size_t)3 * S * S, 9);
    double t = now();
    if (clip_vision_stage_features(r, px, 1, L / 4, 4, stages, st, emb, 1) < 0) {
        fprintf(stderr, "bench_engine: %s\n", err_msg());
        return 1;
    }
    t = now() - t;
    // weights: every float the vision tower reads (the file-mapped part of the RSS, when F32)
    size_t W = v->shape.width, Wm = v->shape.mlp, K = (size_t)v->channels * v->patch_size * v->patch_size;
    size_t per_layer = 4 * W * W + 2 * W * Wm + 9 * W + Wm;
    size_t weights = L * per_layer + W * K + W * (v->grid * v->grid + 1) + 5 * W + (size_t)P * W;
    printf("memory S=%d tokens=%d layers=%d seconds=%.2f peak_rss_kb=%ld rss_file_kb=%ld rss_anon_kb=%ld "
           "vision_weights_kb=%zu start_rss_kb=%ld\n",
           S, T, L, t, status_kb("VmHWM"), status_kb("RssFile"), status_kb("RssAnon"), weights * 4 / 1024, base);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "serve")) return serve(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "memory")) return memory(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: bench_engine serve|memory MODEL_DIR IMAGE_SIZE\n");
    return 2;
}
