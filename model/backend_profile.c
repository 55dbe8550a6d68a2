// The profile backend: the cpu backend with each op's wall time and call count summed per op name (and the
// copies and zeroing as ops of their own), so a step's time can be split by op (tests/bench_train.c prints it).
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "model/backend.h"

enum {
#define OP(name, params, args) PROF_##name,
#include "model/backend_ops.def"
#undef OP
    PROF_upload, PROF_download, PROF_copy, PROF_zero, PROF_N
};

static const char *const prof_names[PROF_N] = {
#define OP(name, params, args) #name,
#include "model/backend_ops.def"
#undef OP
    "upload", "download", "copy", "zero",
};

static double prof_time[PROF_N];
static long prof_calls[PROF_N];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define TIMED(id, call)                        \
    do {                                       \
        double t0_ = now_s();                  \
        call;                                  \
        prof_time[id] += now_s() - t0_;        \
        prof_calls[id]++;                      \
    } while (0)

#define OP(name, params, args) \
    static void prof_##name params { TIMED(PROF_##name, backend_cpu()->name args); }
#include "model/backend_ops.def"
#undef OP

// The GEMMs, also by shape (transposes, M, N, K, batch): the per-head products and the projections apart.
enum { GEMM_SHAPES = 64 };
static struct { int ta, tb, M, N, K, batch; double t; long calls; } shapes[GEMM_SHAPES];
static int nshapes;

static void prof_gemm_by_shape(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long sa,
                               const float *B, int ldb, long sb, float beta, float *C, int ldc, long sc, int batch) {
    double t0 = now_s();
    prof_gemm(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
    int k = 0;
    while (k < nshapes && !(shapes[k].ta == ta && shapes[k].tb == tb && shapes[k].M == M && shapes[k].N == N &&
                            shapes[k].K == K && shapes[k].batch == batch)) k++;
    if (k == GEMM_SHAPES) return;
    if (k == nshapes) shapes[nshapes++] = (typeof(shapes[0])){ta, tb, M, N, K, batch, 0.0, 0};
    shapes[k].t += now_s() - t0;
    shapes[k].calls++;
}

static void prof_upload(float *d, const float *s, size_t n) { TIMED(PROF_upload, backend_cpu()->upload(d, s, n)); }
static void prof_download(float *d, const float *s, size_t n) { TIMED(PROF_download, backend_cpu()->download(d, s, n)); }
static void prof_copy(float *d, const float *s, size_t n) { TIMED(PROF_copy, backend_cpu()->copy(d, s, n)); }
static void prof_zero(float *p, size_t n) { TIMED(PROF_zero, backend_cpu()->zero(p, n)); }
static float *prof_alloc(size_t n) { return backend_cpu()->alloc(n); }
static void prof_release(float *p) { backend_cpu()->release(p); }
static int prof_sync(void) { return 0; }
static void prof_set_precision(GemmPrecision p) { (void)p; }

static Backend PROFILE = {
    .name = "profile", .device = DEVICE_CPU,
    .alloc = prof_alloc, .release = prof_release, .upload = prof_upload, .download = prof_download,
    .copy = prof_copy, .zero = prof_zero, .sync = prof_sync, .set_precision = prof_set_precision,
#define OP(name, params, args) .name = prof_##name,
#include "model/backend_ops.def"
#undef OP
};

const Backend *backend_profile(void) {
    PROFILE.gemm = prof_gemm_by_shape;
    return &PROFILE;
}

void backend_profile_reset(void) {
    memset(prof_time, 0, sizeof prof_time);
    memset(prof_calls, 0, sizeof prof_calls);
    nshapes = 0;
}

double backend_profile_report(FILE *f, double min_share) {
    double total = 0.0;
    for (int i = 0; i < PROF_N; i++) total += prof_time[i];
    int order[PROF_N];
    for (int i = 0; i < PROF_N; i++) order[i] = i;
    for (int i = 1; i < PROF_N; i++)  // by time, largest first
        for (int j = i; j > 0 && prof_time[order[j]] > prof_time[order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    for (int k = 0; k < PROF_N; k++) {
        int i = order[k];
        if (prof_calls[i] == 0 || prof_time[i] < min_share * total) continue;
        fprintf(f, "  %-32s %8.3f s %5.1f%% %8ld calls\n", prof_names[i], prof_time[i], 100.0 * prof_time[i] / total,
                prof_calls[i]);
        for (int k = 0; i == PROF_gemm && k < nshapes; k++) {
            if (shapes[k].t < min_share * total) continue;
            double gf = 2.0 * shapes[k].M * shapes[k].N * (double)shapes[k].K * shapes[k].batch * shapes[k].calls;
            fprintf(f, "    %c%c %5d x %5d x %5d, batch %2d  %8.3f s %8ld calls %6.0f GFLOP/s\n", shapes[k].ta ? 'T' : 'N',
                    shapes[k].tb ? 'T' : 'N', shapes[k].M, shapes[k].N, shapes[k].K, shapes[k].batch, shapes[k].t,
                    shapes[k].calls, gf / shapes[k].t / 1e9);
        }
    }
    return total;
}
