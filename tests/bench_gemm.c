// SGEMM GFLOP/s at the shapes of the KAnoCLIP heads' training step (37 x 37 grid: N = 1369 tokens, width 768,
// 12 heads of 64; text tower 16 prompts x 77 tokens, 768 -> 3072): OpenBLAS against our kernels, interleaved in
// one process (round r runs every kernel once, best of the rounds kept) so that load from other processes hits
// all alike. Prints OpenBLAS's core, the kernel sgemm picks, and the FLOP-weighted rate of each kernel over the
// step's GEMM mix (the weights: how often each shape runs per image and stage, see deform_attn.c).
// Each product starts with its operands out of the caches (a 64 MB buffer is written first), as in the step,
// where the per-head score matrices (7.5 MB each) were last touched by another op.
// Usage: bench_gemm [rounds=5]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/gemm.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
    const char *what;
    CBLAS_TRANSPOSE ta, tb;
    int M, N, K;
    int per_step;  // calls per image and stage in the deformable attention (forward + backward)
} Shape;

// Writes a buffer larger than the last-level cache, so that the next product reads its operands from memory.
static void evict_caches(void) {
    static unsigned char *junk;
    static size_t n = 64u << 20;
    if (!junk && !(junk = malloc(n))) return;
    for (size_t i = 0; i < n; i += 64) junk[i] = (unsigned char)i;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1) rounds = 1;
    const Shape shapes[] = {
        {"projection fwd  x Wt (NT)", CblasNoTrans, CblasTrans, 1369, 768, 768, 4},
        {"projection dx  dy W (NN)", CblasNoTrans, CblasNoTrans, 1369, 768, 768, 4},
        {"projection dW  dyt x (TN)", CblasTrans, CblasNoTrans, 768, 768, 1369, 4},
        {"scores  q kt per head (NT)", CblasNoTrans, CblasTrans, 1369, 1369, 64, 24},
        {"att v per head (NN)", CblasNoTrans, CblasNoTrans, 1369, 64, 1369, 24},
        {"dv, dk  attt d per head (TN)", CblasTrans, CblasNoTrans, 1369, 64, 1369, 24},
        {"text MLP fc1 (NT)", CblasNoTrans, CblasTrans, 1232, 3072, 768, 0},
    };
    int ns = sizeof shapes / sizeof shapes[0];
    const GemmKernel kerns[] = {GEMM_OPENBLAS, GEMM_AVX2, GEMM_AVX512};
    int nk = gemm_kernel_for_cpu() + 1;  // the kernels this CPU can run
    printf("== bench_gemm: OpenBLAS core %s; sgemm uses the %s kernel; %s\n", gemm_openblas_core(),
           gemm_kernel_name(gemm_kernel()), gemm_describe());
    double best[16][3];
    float *mem[16][3];
    for (int s = 0; s < ns; s++) {
        const Shape *q = &shapes[s];
        size_t na = (size_t)q->M * q->K, nb = (size_t)q->K * q->N, nc = (size_t)q->M * q->N;
        mem[s][0] = malloc(sizeof(float) * (na + nb + nc));
        for (size_t i = 0; i < na + nb + nc; i++) mem[s][0][i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        for (int k = 0; k < 3; k++) best[s][k] = 1e30;
    }
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < ns; s++) {
            const Shape *q = &shapes[s];
            float *A = mem[s][0], *B = A + (size_t)q->M * q->K, *C = B + (size_t)q->K * q->N;
            int lda = q->ta == CblasTrans ? q->M : q->K, ldb = q->tb == CblasTrans ? q->K : q->N;
            for (int k = 0; k < nk; k++) {
                evict_caches();
                double t0 = now();
                sgemm_with(kerns[k], q->ta, q->tb, q->M, q->N, q->K, 1.0f, A, lda, B, ldb, 0.0f, C, q->N);
                double dt = now() - t0;
                if (dt < best[s][k]) best[s][k] = dt;
            }
        }
    printf("%-30s %5s %5s %5s  %9s %9s %9s\n", "shape", "M", "N", "K", "openblas", "avx2", "avx512");
    double wflop = 0, wt[3] = {0, 0, 0};
    for (int s = 0; s < ns; s++) {
        const Shape *q = &shapes[s];
        double f = 2.0 * q->M * q->N * q->K;
        printf("%-30s %5d %5d %5d ", q->what, q->M, q->N, q->K);
        for (int k = 0; k < 3; k++) {
            if (k < nk) printf(" %9.1f", f / best[s][k] / 1e9);
            else printf(" %9s", "-");
            wt[k] += q->per_step * best[s][k];
        }
        printf("  GFLOP/s\n");
        wflop += q->per_step * f;
        free(mem[s][0]);
    }
    printf("%-48s", "the step's GEMM mix (FLOP-weighted)");
    for (int k = 0; k < 3; k++) {
        if (k < nk) printf(" %9.1f", wflop / wt[k] / 1e9);
        else printf(" %9s", "-");
    }
    printf("  GFLOP/s\n");
    return 0;
}
