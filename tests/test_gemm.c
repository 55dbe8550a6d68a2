// sgemm (model/gemm.c) on every kernel this CPU can run, against a float64 triple loop: all four transposes,
// row strides wider than the rows, beta 0 / 1 / other, sizes that leave partial tiles and k blocks, and products
// large enough to be split over threads; and the kernel choice against the CPU flags that /proc/cpuinfo lists.
// Tolerance: |C - ref| <= 1e-5 · Σ_k |a_ik b_kj| + 1e-6 (float32 accumulation over k, any order).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gemm.h"

static unsigned rng = 7;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f - 0.5f;
}

// One product on kernel k, checked element by element; the columns of C past N (the stride's slack) must be left
// as they were.
static void check(GemmKernel k, int ta, int tb, int M, int N, int K, float alpha, float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * nc), *C0 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < nc; i++) C[i] = C0[i] = beta == 0.0f ? NAN : frand();  // beta 0 must not read C
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) C[(size_t)i * ldc + j] = C0[(size_t)i * ldc + j] = 12345.0f;
    sgemm_with(k, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
               beta, C, ldc);
    int bad = 0;
    for (int i = 0; i < M && bad < 5; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b, mag += fabs(a * b);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double want = alpha * s + (beta == 0.0f ? 0.0 : beta * c0);
            double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta * (beta == 0.0f ? 0.0 : c0))) + 1e-6;
            float got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol)) {
                cr_log_error("%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.7g, want %.7g (tol %.2g)",
                             gemm_kernel_name(k), ta, tb, M, N, K, alpha, beta, i, j, got, want, tol);
                bad++;
            }
        }
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != 12345.0f) {
                cr_log_error("%s: C[%d][%d] past N was written", gemm_kernel_name(k), i, j);
                bad++;
            }
    }
    free(A), free(B), free(C), free(C0);
    cr_assert_eq(bad, 0, "%s ta=%d tb=%d M=%d N=%d K=%d: %d wrong elements (first ones logged)", gemm_kernel_name(k),
                 ta, tb, M, N, K, bad);
}

static void check_kernel(GemmKernel k) {
    // tiny (thin products go to OpenBLAS), partial tiles, several k blocks (KC = 256), multi-tile (threads)
    const int shapes[][3] = {{1, 1, 1}, {3, 40, 9}, {7, 17, 5}, {6, 64, 16}, {13, 70, 300},
                             {37, 129, 513}, {130, 65, 64}, {301, 200, 97}, {97, 64, 290}};
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.5f, 0.25f}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            check(k, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], ab[(s + t) % 3][0], ab[(s + t) % 3][1]);
}

Test(gemm, openblas) { check_kernel(GEMM_OPENBLAS); }

Test(gemm, avx2) {
    if (gemm_kernel_for_cpu() < GEMM_AVX2) cr_skip_test("this CPU has no AVX2 + FMA");
    check_kernel(GEMM_AVX2);
}

Test(gemm, avx512) {
    if (gemm_kernel_for_cpu() < GEMM_AVX512) cr_skip_test("this CPU has no AVX-512F");
    check_kernel(GEMM_AVX512);
}

// The flags line of /proc/cpuinfo contains ` flag` (as a whole word).
static int cpuinfo_has(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = strstr(flags, flag); p; p = strstr(p + 1, flag))
        if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

Test(gemm, kernel_follows_cpu_flags) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) cr_skip_test("no /proc/cpuinfo to compare with");
    char line[8192];
    int found = 0;
    GemmKernel want = GEMM_OPENBLAS;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            found = 1;
            if (cpuinfo_has(line, "avx512f")) want = GEMM_AVX512;
            else if (cpuinfo_has(line, "avx2") && cpuinfo_has(line, "fma")) want = GEMM_AVX2;
            break;
        }
    fclose(f);
    if (!found) cr_skip_test("/proc/cpuinfo lists no flags");
    cr_assert_eq(gemm_kernel_for_cpu(), want, "kernel for this CPU: %s, its flags say %s",
                 gemm_kernel_name(gemm_kernel_for_cpu()), gemm_kernel_name(want));
    unsetenv("KANOCLIP_GEMM");
    cr_assert_eq(gemm_kernel(), want, "sgemm uses %s, want %s", gemm_kernel_name(gemm_kernel()),
                 gemm_kernel_name(want));
    cr_assert(strstr(gemm_describe(), gemm_kernel_name(want)), "log line: %s", gemm_describe());
    cr_assert(strstr(gemm_describe(), gemm_openblas_core()), "log line names OpenBLAS's core: %s", gemm_describe());
}

// Each Criterion test runs in its own process, so the choice below is made afresh from the environment.
Test(gemm, env_forces_openblas) {
    setenv("KANOCLIP_GEMM", "openblas", 1);
    cr_assert_eq(gemm_kernel(), GEMM_OPENBLAS, "KANOCLIP_GEMM=openblas gives %s", gemm_kernel_name(gemm_kernel()));
    cr_assert(strstr(gemm_describe(), "openblas kernel"), "log line: %s", gemm_describe());
}

Test(gemm, env_kernel_the_cpu_lacks_falls_back) {
    setenv("KANOCLIP_GEMM", "avx512", 1);
    GemmKernel want = gemm_kernel_for_cpu();  // avx512 where the CPU has it, else the best it has
    cr_assert_eq(gemm_kernel(), want, "KANOCLIP_GEMM=avx512 gives %s on a CPU whose best is %s",
                 gemm_kernel_name(gemm_kernel()), gemm_kernel_name(want));
}

Test(gemm, counts_flops) {
    float a[6 * 20] = {0}, b[20 * 16] = {0}, c[6 * 16];
    double f0 = gemm_flops();
    sgemm(CblasNoTrans, CblasNoTrans, 6, 16, 20, 1.0f, a, 20, b, 16, 0.0f, c, 16);
    cr_assert_eq(gemm_flops() - f0, 2.0 * 6 * 16 * 20);
}
