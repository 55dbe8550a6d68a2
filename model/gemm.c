// sgemm: the kernel choice (gemm.h) and a blocked driver around the micro-kernels of gemm_kernels.c, in the
// loop order of BLIS (Van Zee and van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 41(3), 2015): per tile of C, for each k block of KC, op(B) is packed once into
// NR-column panels; then MC rows of op(A) at a time are packed into MR-row panels (kept in L2) and the
// micro-kernel runs over the panels of B. The transposes are absorbed by the packing, so NN, NT, TN and TT run
// the same inner loop.
#include "model/gemm.h"
#include "model/gemm_kernels.h"
#include "model/task_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *openblas_get_corename(void);  // OpenBLAS extension (cblas.h declares it from 0.3.x; declared here for older)

static _Atomic unsigned long long flop_count;

double gemm_flops(void) { return (double)flop_count; }

enum { KC = 256, MC = 120, NC = 4096, BPACK = 1 << 24, INPLACE_N = 128 };
// The tile grid is made for this many threads whatever the machine has (about 3 tiles each).
enum { GEMM_TILE_THREADS = 8 };

// Products this small in M or N are matrix-vector work bound by memory: left to OpenBLAS (a tile of 6 x 64
// would compute mostly padding).
static int too_thin(int M, int N, int K) { return M < 6 || N < 16 || K < 4; }

static GemmKernel cpu_kernel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return GEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return GEMM_AVX2;
    return GEMM_OPENBLAS;
}

GemmKernel gemm_kernel_for_cpu(void) {
    static int k = -1;
    if (k < 0) k = cpu_kernel();
    return (GemmKernel)k;
}

// A requested kernel the CPU cannot run falls back to the best one it can.
static GemmKernel supported(GemmKernel want) {
    GemmKernel best = gemm_kernel_for_cpu();
    return want > best ? best : want;
}

static int chosen = -1;

void gemm_set_kernel(GemmKernel k) { chosen = supported(k); }

GemmKernel gemm_kernel(void) {
    int k = chosen;
    if (k < 0) {
        const char *e = getenv("KANOCLIP_GEMM");
        GemmKernel want = gemm_kernel_for_cpu();
        if (e && !strcmp(e, "openblas")) want = GEMM_OPENBLAS;
        else if (e && !strcmp(e, "avx2")) want = GEMM_AVX2;
        else if (e && !strcmp(e, "avx512")) want = GEMM_AVX512;
        chosen = k = supported(want);
    }
    return (GemmKernel)k;
}

const char *gemm_kernel_name(GemmKernel k) {
    return k == GEMM_AVX512 ? "avx512" : k == GEMM_AVX2 ? "avx2" : "openblas";
}

const char *gemm_openblas_core(void) { return openblas_get_corename(); }

const char *gemm_describe(void) {
    static char line[160];
    GemmKernel c = gemm_kernel_for_cpu();
    snprintf(line, sizeof line, "GEMM: %s kernel (CPU: %s; OpenBLAS core: %s)", gemm_kernel_name(gemm_kernel()),
             c == GEMM_AVX512 ? "avx512f avx2 fma" : c == GEMM_AVX2 ? "avx2 fma" : "no avx2",
             gemm_openblas_core());
    return line;
}

// Per-thread packing memory, 64-byte aligned, kept between calls (never freed, like task_scratch).
static float *grow(float **buf, size_t *cap, size_t floats) {
    if (floats > *cap) {
        free(*buf);
        *buf = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (!*buf) abort();
        *cap = floats;
    }
    return *buf;
}

// Rows [i0, i0+mc) and k [p0, p0+kc) of op(A) into panels of mr rows: Ap[panel][k][mr], zero past mc.
static void pack_a(float *Ap, const float *A, int lda, int ta, int i0, int mc, int p0, int kc, int mr) {
    for (int ir = 0; ir < mc; ir += mr) {
        int m = mc - ir < mr ? mc - ir : mr;
        float *d = Ap + (size_t)ir * kc;
        if (ta) {  // op(A)[i][k] = A[k][i]: mr consecutive floats per k
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)(p0 + k) * lda + i0 + ir;
                for (int i = 0; i < mr; i++) d[(size_t)k * mr + i] = i < m ? s[i] : 0.0f;
            }
        } else {
            for (int i = 0; i < mr; i++) {
                if (i >= m) {
                    for (int k = 0; k < kc; k++) d[(size_t)k * mr + i] = 0.0f;
                    continue;
                }
                const float *s = A + (size_t)(i0 + ir + i) * lda + p0;
                for (int k = 0; k < kc; k++) d[(size_t)k * mr + i] = s[k];
            }
        }
    }
}

// Columns [j0, j0+n) (n <= nr) and k [p0, p0+kc) of op(B) into one panel Bp[k][nr], zero past n.
static void pack_b_panel(float *Bp, const float *B, int ldb, int tb, int p0, int kc, int j0, int n, int nr) {
    if (!tb) {
        for (int k = 0; k < kc; k++) {
            const float *s = B + (size_t)(p0 + k) * ldb + j0;
            float *d = Bp + (size_t)k * nr;
            memcpy(d, s, sizeof(float) * n);
            if (n < nr) memset(d + n, 0, sizeof(float) * (nr - n));
        }
    } else {  // op(B)[k][j] = B[j][k]: a transpose in blocks of 16 k so that reads stay on few cache lines
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int kn = kc - k0 < 16 ? kc - k0 : 16;
            for (int j = 0; j < nr; j++) {
                if (j >= n) {
                    for (int kk = 0; kk < kn; kk++) Bp[(size_t)(k0 + kk) * nr + j] = 0.0f;
                    continue;
                }
                const float *s = B + (size_t)(j0 + j) * ldb + p0 + k0;
                for (int kk = 0; kk < kn; kk++) Bp[(size_t)(k0 + kk) * nr + j] = s[kk];
            }
        }
    }
}

// C (m,n) = beta · C (beta = 0: set to 0 without reading).
static void scale_c(float *C, int ldc, int M, int N, float beta) {
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *r = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(r, 0, sizeof(float) * N);
        else
            for (int j = 0; j < N; j++) r[j] *= beta;
    }
}

typedef struct {
    const GemmMicro *u;
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int rows, cols, ncg;  // a task: `rows` rows times `cols` columns (ncg column groups)
    float *bp;            // all of op(B) packed ahead (k block p0: panels at bp + p0·npan·nr), or NULL
    int npan;             // panels of nr columns in all of N
} GemmJob;

// C[r0:r1, c0:c1] of the product, the whole k range: B's columns packed once per k block, then the rows in
// blocks of MC (A packed per block, kept in L2) times the panels of B.
static void gemm_tile(const GemmJob *j, int r0, int r1, int c0, int c1) {
    const GemmMicro *u = j->u;
    const int mr = u->mr, nr = u->nr;
    static __thread float *abuf, *bbuf;
    static __thread size_t acap, bcap;
    float *Ap = grow(&abuf, &acap, (size_t)MC * KC);
    float tile[6 * 64] __attribute__((aligned(64)));
    for (int j0 = c0; j0 < c1; j0 += NC) {
        int nc = c1 - j0 < NC ? c1 - j0 : NC, npan = (nc + nr - 1) / nr;
        float *Bp = j->bp ? NULL : grow(&bbuf, &bcap, (size_t)KC * npan * nr);
        for (int p0 = 0; p0 < j->K; p0 += KC) {
            int kc = j->K - p0 < KC ? j->K - p0 : KC;
            float b = p0 == 0 ? j->beta : 1.0f;
            if (j->bp) {  // packed ahead: this tile's panels within the k block
                Bp = j->bp + (size_t)p0 * j->npan * nr + (size_t)(j0 / nr) * nr * kc;
            } else {
                for (int jp = 0; jp < npan; jp++) {
                    int n = nc - jp * nr < nr ? nc - jp * nr : nr;
                    pack_b_panel(Bp + (size_t)jp * nr * kc, j->B, j->ldb, j->tb, p0, kc, j0 + jp * nr, n, nr);
                }
            }
            for (int i0 = r0; i0 < r1; i0 += MC) {
                int mc = r1 - i0 < MC ? r1 - i0 : MC;
                // Few panels of B (N <= INPLACE_N): each row of op(A) meets few columns, so packing A would cost
                // about as much as the arithmetic; the micro-kernel reads whole groups of mr rows in place.
                int inplace = j->N <= INPLACE_N, mfull = inplace ? mc / mr * mr : 0;
                if (mfull < mc) pack_a(Ap, j->A, j->lda, j->ta, i0 + mfull, mc - mfull, p0, kc, mr);
                for (int jp = 0; jp < npan; jp++) {
                    int n = nc - jp * nr < nr ? nc - jp * nr : nr;
                    const float *bp = Bp + (size_t)jp * nr * kc;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int m = mc - ir < mr ? mc - ir : mr;
                        float *c = j->C + (size_t)(i0 + ir) * j->ldc + j0 + jp * nr;
                        const float *ap = Ap + (size_t)(ir - mfull) * kc;
                        size_t rs = 1, cs = mr;
                        if (ir < mfull) {
                            ap = j->ta ? j->A + (size_t)p0 * j->lda + i0 + ir : j->A + (size_t)(i0 + ir) * j->lda + p0;
                            rs = j->ta ? 1 : (size_t)j->lda, cs = j->ta ? (size_t)j->lda : 1;
                            // Aᵀ in place: the kernel takes a fragment of kc rows of A, a row apart each, which
                            // no hardware prefetcher follows; ask for the lines of the panels to come, the next
                            // cache line over, while this panel computes
                            if (j->ta && jp == 0 && i0 + ir + 3 * mr < r1)
                                for (int k = 0; k < kc; k++) __builtin_prefetch(ap + (size_t)k * cs + 3 * mr);
                        }
                        if (m == mr && n == nr) {
                            u->run(kc, ap, rs, cs, bp, c, j->ldc, j->alpha, b);
                            continue;
                        }
                        u->run(kc, ap, rs, cs, bp, tile, nr, j->alpha, 0.0f);
                        for (int i = 0; i < m; i++)
                            for (int jj = 0; jj < n; jj++) {
                                float *cij = c + (size_t)i * j->ldc + jj;
                                *cij = tile[i * nr + jj] + (b == 0.0f ? 0.0f : b * *cij);
                            }
                    }
                }
            }
        }
    }
}

// Task t packs panel t % npan of k block t / npan into the shared buffer.
static void pack_b_task(void *ctx, int t) {
    const GemmJob *j = ctx;
    int nr = j->u->nr, jp = t % j->npan, p0 = (t / j->npan) * KC;
    int kc = j->K - p0 < KC ? j->K - p0 : KC, n = j->N - jp * nr < nr ? j->N - jp * nr : nr;
    pack_b_panel(j->bp + (size_t)p0 * j->npan * nr + (size_t)jp * nr * kc, j->B, j->ldb, j->tb, p0, kc, jp * nr, n, nr);
}

static void gemm_task(void *ctx, int t) {
    const GemmJob *j = ctx;
    int r0 = (t / j->ncg) * j->rows, c0 = (t % j->ncg) * j->cols;
    int r1 = r0 + j->rows < j->M ? r0 + j->rows : j->M, c1 = c0 + j->cols < j->N ? c0 + j->cols : j->N;
    gemm_tile(j, r0, r1, c0, c1);
}

// The product split into independent tiles (about 3 per thread; rows first, then columns in whole panels)
// run on the task pool: a thread descheduled by other processes on the machine holds up only the tile it has
// claimed (task_pool.h), where an OpenMP loop would wait for it at its barrier. All of op(B) is packed first, once,
// by the pool (one run), unless it is larger than BPACK floats: then each tile packs its own slice of it.
static void gemm_blocked(const GemmMicro *u, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(C, ldc, M, N, beta);
        return;
    }
    GemmJob j = {u, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, M, N, 1, NULL, (N + u->nr - 1) / u->nr};
    // The tiles depend on the product's shape alone, never on the thread count: an element's sum is the same
    // whichever tile and thread computes it, so results do not change with run.threads (a grid's Slurm tasks and
    // grid --run give the same bytes). Small products are one tile.
    int small = 2.0 * M * N * K < 4e6, threads = small ? 1 : task_pool_threads();
    int want = small ? 1 : 3 * GEMM_TILE_THREADS, mr = u->mr, nr = u->nr;
    int nrg = (M + 47) / 48 < want ? (M + 47) / 48 : want;  // row groups of at least 48 rows
    if (nrg < 1) nrg = 1;
    j.rows = ((M + nrg - 1) / nrg + mr - 1) / mr * mr;
    nrg = (M + j.rows - 1) / j.rows;
    int npan = (N + nr - 1) / nr, ncg = (want + nrg - 1) / nrg;
    if (ncg > npan) ncg = npan;
    j.cols = (npan + ncg - 1) / ncg * nr;
    j.ncg = (N + j.cols - 1) / j.cols;
    if (threads > 1) {
        size_t bfloats = (size_t)K * npan * nr;
        if (bfloats <= BPACK && N <= NC) {
            static __thread float *shared;
            static __thread size_t scap;
            j.bp = grow(&shared, &scap, bfloats);
            task_pool_run(((K + KC - 1) / KC) * npan, pack_b_task, &j);
        }
        task_pool_run(nrg * j.ncg, gemm_task, &j);
    } else {
        for (int t = 0; t < nrg * j.ncg; t++) gemm_task(&j, t);
    }
}

void sgemm_with(GemmKernel kern, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    kern = supported(kern);
    flop_count += 2ull * (unsigned)M * (unsigned)N * (unsigned)K;
    if (kern == GEMM_OPENBLAS || too_thin(M, N, K)) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_blocked(kern == GEMM_AVX512 ? &gemm_micro_avx512 : &gemm_micro_avx2, ta != CblasNoTrans,
                 tb != CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_with(gemm_kernel(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
