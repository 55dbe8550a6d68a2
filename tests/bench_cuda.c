// GPU benchmark (run by scripts/gpu_check.sh): the card's measured matrix rate, then the ViT-L/14-336-shaped
// vision tower at 518 px (37x37 patches + class = 1370 tokens; random weights) in each GEMM precision and with
// each attention path (cuDNN's fused attention with bf16 and fp16 I/O in bf16): images/s, TFLOP/s and the
// fraction of the measured matrix rate of the same mode; then the submit/finish overlap with CPU preprocessing;
// then a prompt-learning step through the L/14 text tower (16 prompts: forward, backward to the embeddings)
// against the CPU.
// Usage: bench_cuda [batch=16] [timed iterations=3]. Prints "| ... |" table rows (gpu_check.sh collects them).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef KANOCLIP_CUDA
int main(void) {
    puts("bench_cuda: built without CUDA; nothing to measure");
    return 0;
}
#else
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/error.h"
#include "model/clip_model.h"
#include "model/cuda/clip_cuda.h"
#include "model/cuda/ops_cuda.h"
#include "model/device.h"

static uint64_t rng_state = 12345;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static const float *random_tensor(void *src, const char *name, const int64_t *shape, int ndim) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *x = malloc(n * sizeof(float));
    if (!x) return NULL;
    int ln = strstr(name, "norm") && strstr(name, "weight");
    for (size_t i = 0; i < n; i++) x[i] = ln ? 1.0f + 0.05f * frand() : 0.03f * frand();
    return x;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "bench_cuda: %s: %s\n", what, err_msg());
    exit(1);
}

// ms per call of the queued work in fn, by CUDA events on the op stream (median of `reps`).
typedef void (*Work)(void *);
static double time_ms(Work fn, void *arg, int warm, int reps) {
    cudaStream_t s = (cudaStream_t)cuda_ops_stream();
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (int i = 0; i < warm; i++) fn(arg);
    double t[64];
    reps = reps > 64 ? 64 : reps;
    for (int i = 0; i < reps; i++) {
        cudaEventRecord(a, s);
        fn(arg);
        cudaEventRecord(b, s);
        if (cuda_ops_sync()) die("timed work");
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        t[i] = ms;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    for (int i = 1; i < reps; i++)  // insertion sort for the median
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) { double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x; }
    return t[reps / 2];
}

// ---- matrix rate ----------------------------------------------------------------------------------------------

enum { GN = 8192 };
typedef struct { float *a, *b, *c; void *a16, *b16; cublasHandle_t h; } GemmArgs;

static void gemm_mode(void *p) {  // our path: fp32 buffers, compute type from the precision mode
    GemmArgs *g = p;
    gemm_cuda(0, 1, GN, GN, GN, 1.0f, g->a, GN, 0, g->b, GN, 0, 0.0f, g->c, GN, 0, 1);
}

static void gemm_bf16_storage(void *p) {  // the card's bf16 rate: bf16 operands, fp32 output and accumulation
    GemmArgs *g = p;
    float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = cublasGemmEx(g->h, CUBLAS_OP_T, CUBLAS_OP_N, GN, GN, GN, &one, g->b16, CUDA_R_16BF, GN, g->a16,
                                    CUDA_R_16BF, GN, &zero, g->c, CUDA_R_32F, GN, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) { err_set("cublasGemmEx bf16: %s", cublasGetStatusString(s)); die("matrix rate"); }
}

// ---- vision tower ---------------------------------------------------------------------------------------------

// Median GPU ms of one forward (events inside the run: upload, layers, downloads; not the pinned copy).
static double vision_ms(ClipVisionCuda *r, const float *pixels, int B, const ClipVisionOut *out, int reps) {
    double t[64];
    reps = reps > 64 ? 64 : reps;
    if (clip_vision_cuda_forward(r, pixels, B, out)) die("vision forward");  // warm-up
    for (int i = 0; i < reps; i++) {
        if (clip_vision_cuda_forward(r, pixels, B, out)) die("vision forward");
        t[i] = clip_vision_cuda_last_gpu_ms(r);
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) { double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x; }
    return t[reps / 2];
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 16, reps = argc > 2 ? atoi(argv[2]) : 3;
    if (B < 1 || reps < 1) { fprintf(stderr, "usage: bench_cuda [batch] [iterations]\n"); return 2; }
    DeviceKind kind;
    if (device_select("cuda", &kind)) {
        printf("bench_cuda: %s\n", err_msg());
        return 0;  // not a failure: the machine has no GPU
    }
    if (cuda_ops_init()) die("init");
    printf("device: %s\n", device_describe(DEVICE_CUDA));

    // 1. matrix rate, 8192^3, random data (never zeros)
    GemmArgs g = {0};
    size_t gn = (size_t)GN * GN;
    if (!(g.a = cuda_alloc_floats(gn)) || !(g.b = cuda_alloc_floats(gn)) || !(g.c = cuda_alloc_floats(gn)) ||
        !(g.a16 = cuda_alloc_bytes(gn * 2)) || !(g.b16 = cuda_alloc_bytes(gn * 2)))
        die("matrix buffers");
    fill_uniform_cuda(g.a, gn, 1, 1.0f);
    fill_uniform_cuda(g.b, gn, 2, 1.0f);
    float_to_bf16_cuda(g.a16, g.a, gn);
    float_to_bf16_cuda(g.b16, g.b, gn);
    cublasCreate(&g.h);
    cublasSetStream(g.h, (cudaStream_t)cuda_ops_stream());
    double flop = 2.0 * GN * GN * GN, rate[3];
    printf("\n| matrix rate (8192^3, random data) | TFLOP/s |\n|---|---|\n");
    for (int p = 0; p < 3; p++) {
        cuda_ops_set_precision((GemmPrecision)p);
        rate[p] = flop / time_ms(gemm_mode, &g, 3, 10) / 1e9;
        printf("| our GEMM, fp32 buffers, %s | %.1f |\n", gemm_precision_name((GemmPrecision)p), rate[p]);
    }
    double card_bf16 = flop / time_ms(gemm_bf16_storage, &g, 3, 10) / 1e9;
    printf("| cuBLAS bf16 operands (the card's bf16 rate) | %.1f |\n", card_bf16);
    cublasDestroy(g.h);
    cuda_free(g.a); cuda_free(g.b); cuda_free(g.c); cuda_free(g.a16); cuda_free(g.b16);

    // 2. ViT-L/14-336 at 518 px
    ClipConfig cc = {0};
    cc.vision = (TowerShape){1024, 24, 16, 4096, 1e-5f, ACT_QUICK_GELU};
    cc.text = (TowerShape){768, 12, 12, 3072, 1e-5f, ACT_QUICK_GELU};
    cc.vocab_size = 49408; cc.context_length = 77; cc.eos_token_id = 49407;
    cc.image_size = 336; cc.patch_size = 14; cc.channels = 3; cc.projection_dim = 768;
    ClipVision vis;
    if (clip_vision_bind(&vis, &cc, random_tensor, NULL)) die("vision weights");
    int S = 518;
    ClipVisionCuda *vr = clip_vision_cuda_new(&vis, S, CLIP_POS_BILINEAR);
    if (!vr) die("vision tower");
    size_t npx = (size_t)B * 3 * S * S;
    float *pixels = malloc(sizeof(float) * npx), *emb = malloc(sizeof(float) * B * 768);
    for (size_t i = 0; i < npx; i++) pixels[i] = 2.0f * frand();
    double fpi = clip_vision_flops_per_image(&vis, S);
    ClipVisionOut vout = {.image_embeds = emb};
    printf("\n| ViT-L/14-336 @518 (1370 tokens), batch %d | attention | images/s | TFLOP/s | of matrix rate |\n"
           "|---|---|---|---|---|\n", B);
    // every attention path in each precision; cuDNN's (bf16 or fp16 I/O whatever the GEMMs) in bf16 only, the
    // precision it is the default of. The label is the path that ran (a cuDNN row that fell back says so).
    const CudaAttentionMode paths[4] = {CUDA_ATTN_UNFUSED, CUDA_ATTN_FUSED_FP32, CUDA_ATTN_CUDNN,
                                        CUDA_ATTN_CUDNN_FP16};
    for (int p = 0; p < 3; p++)
        for (int a = 0; a < (p == GEMM_BF16 ? 4 : 2); a++) {
            cuda_ops_set_precision((GemmPrecision)p);
            cuda_attention_set_mode(paths[a]);
            double ms = vision_ms(vr, pixels, B, &vout, reps);
            double ips = B / (ms / 1e3), tf = ips * fpi / 1e12;
            CudaAttentionMode ran = cuda_attention_last_path();
            printf("| %s | %s%s | %.1f | %.1f | %.0f%% |\n", gemm_precision_name((GemmPrecision)p),
                   cuda_attention_mode_name(ran), ran == paths[a] ? "" : " (cuDNN could not run it)", ips, tf,
                   100.0 * tf / rate[p]);
        }

    // the method's workload: V-V path from layer 6, stage features after 6/12/18/24 (every token, post-LN +
    // projection, downloaded) and the global feature, bf16
    {
        int stage_layers[4] = {6, 12, 18, 24}, T = clip_vision_cuda_tokens(vr);
        float *stages[4];
        for (int i = 0; i < 4; i++)
            if (!(stages[i] = malloc(sizeof(float) * (size_t)B * T * 768))) { err_set("out of memory"); die("stages"); }
        ClipVisionOut kout = {.image_embeds = emb, .vv_from = 6, .n_stages = 4, .stage_layers = stage_layers,
                              .stages = stages};
        cuda_ops_set_precision(GEMM_BF16);
        cuda_attention_set_mode(CUDA_ATTN_AUTO);  // what a bf16 run uses
        double ms = vision_ms(vr, pixels, B, &kout, reps);
        printf("| bf16, KAnoCLIP features (V-V from 6, 4 stages of %d x 768 downloaded) | %s | %.1f | | |\n", T,
               cuda_attention_mode_name(cuda_attention_last_path()), B / (ms / 1e3));
        for (int i = 0; i < 4; i++) free(stages[i]);
    }

    // 3. overlap: CPU preparing the next batch (here: filling pixels) while the GPU runs the current one
    cuda_ops_set_precision(GEMM_BF16);
    cuda_attention_set_mode(CUDA_ATTN_AUTO);
    int batches = 4;
    double t0 = now();
    for (int i = 0; i < batches; i++) {
        if (clip_vision_cuda_forward(vr, pixels, B, &vout)) die("vision forward");
        for (size_t j = 0; j < npx; j++) pixels[j] = 2.0f * frand();
    }
    double serial = now() - t0;
    t0 = now();
    if (clip_vision_cuda_submit(vr, pixels, B, &vout)) die("vision submit");
    for (int i = 0; i < batches; i++) {
        for (size_t j = 0; j < npx; j++) pixels[j] = 2.0f * frand();  // the next batch, while the GPU works
        if (clip_vision_cuda_finish(vr)) die("vision finish");
        if (i + 1 < batches && clip_vision_cuda_submit(vr, pixels, B, &vout)) die("vision submit");
    }
    double overlapped = now() - t0;
    printf("\n| bf16, %d batches of %d with CPU preparation | images/s |\n|---|---|\n", batches, B);
    printf("| one after the other | %.1f |\n| overlapped (submit, prepare next, finish) | %.1f |\n",
           batches * B / serial, batches * B / overlapped);
    clip_vision_cuda_free(vr);

    // 4. prompt-learning step through the L/14 text tower: 16 prompts, [EOT] at 19
    ClipText txt;
    if (clip_text_bind(&txt, &cc, random_tensor, NULL)) die("text weights");
    int Bt = 16, T = 77, W = 768;
    int *eot = malloc(sizeof(int) * Bt);
    float *embeds = malloc(sizeof(float) * Bt * T * W), *dembeds = calloc((size_t)Bt * T * W, sizeof(float));
    float *te = malloc(sizeof(float) * Bt * 768), *dte = malloc(sizeof(float) * Bt * 768);
    for (int b = 0; b < Bt; b++) eot[b] = 19;
    for (size_t i = 0; i < (size_t)Bt * T * W; i++) embeds[i] = 0.02f * frand();
    for (int i = 0; i < Bt * 768; i++) dte[i] = frand();
    ClipTextCuda *tg = clip_text_cuda_new(&txt, 1);
    ClipTextRun *tc = clip_text_run_new(&txt, 1);
    if (!tg || !tc) die("text tower");
    printf("\n| prompt step, L/14 text tower, 16 prompts x 20 tokens (fwd + bwd to embeddings) | ms |\n|---|---|\n");
    for (int p = 0; p < 3; p++) {
        cuda_ops_set_precision((GemmPrecision)p);
        double best = 1e9;
        for (int i = 0; i < reps + 1; i++) {
            double t = now();
            if (clip_text_cuda_forward(tg, embeds, eot, Bt, T, te) || clip_text_cuda_backward(tg, dembeds, dte))
                die("text step");
            t = now() - t;
            if (i > 0 && t < best) best = t;  // the first is warm-up
        }
        printf("| GPU %s | %.2f |\n", gemm_precision_name((GemmPrecision)p), best * 1e3);
    }
    double t = now();
    if (clip_text_forward(tc, embeds, eot, Bt, T, te) || clip_text_backward(tc, dembeds, dte)) die("text step (cpu)");
    printf("| CPU (OpenBLAS, %s threads) | %.2f |\n", getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "all",
           (now() - t) * 1e3);
    clip_text_cuda_free(tg);
    clip_text_run_free(tc);
    if (cuda_ops_sync()) die("end");
    printf("\nbench_cuda: done\n");
    return 0;
}
#endif
