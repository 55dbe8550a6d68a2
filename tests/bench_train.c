// One KAnoCLIP training step at the real sizes on the CPU (ViT-L/14-336 widths: P = 768, text tower width 768,
// 12 layers, context 77; 37x37 grid, 4 stages, 518 px maps, lean Bi-CMCI with DAT attention, batch 8), with
// random weights and features. Prints the time per step (and its parts: one eval pass) and the peak memory.
// Each round runs one step on the kernel sgemm picks for this CPU and one on OpenBLAS (KANOCLIP_GEMM=openblas),
// interleaved so that load from other processes hits both alike. The GEMM-bound time is the step's GEMM FLOPs
// (counted by sgemm) over the SGEMM rate of the same kernel measured in this process, at the heads' largest
// shape (the 768 x 768 projections of 1369 tokens). One untimed step comes first; each step starts from the
// parameters the previous one left (so the losses differ from step to step).
// Usage: bench_train [batch=8] [distinct classes in the batch=8] [rounds=1]
#include <sys/resource.h>

#include "tests/bench_train_setup.h"
#include "model/backend.h"
#include "model/gemm.h"

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 8, U = argc > 2 ? atoi(argv[2]) : 8, steps = argc > 3 ? atoi(argv[3]) : 1;
    if (B < 1 || U < 1 || U > B || steps < 1) { fprintf(stderr, "usage: bench_train [batch] [classes<=batch] [steps]\n"); return 2; }
    // the heads on the profile backend: the cpu ops themselves, each timed (a clock read per op), for the split below
    setenv("KANOCLIP_BACKEND", "profile", 1);
    KanoclipConfig cfg = kanoclip_config_default();
    ClipText text;
    if (bind_text(&text)) { fprintf(stderr, "bench_train: %s\n", err_msg()); return 1; }
    Kanoclip *m = kanoclip_new(&cfg, U, &text);
    if (!m || set_inputs(m, U)) { fprintf(stderr, "bench_train: %s\n", err_msg()); return 1; }
    int N = 37 * 37, S = 518;
    size_t nst = (size_t)B * 4 * (N + 1) * 768;
    KanoBatch batch = make_batch(B, U);
    const KanoLayout *L = kanoclip_layout_of(m);
    printf("bench_train: trainable parameters %.2f M (%d tensors); batch %d, %d distinct classes -> %d prompts\n",
           L->total / 1e6, L->n, B, U, 2 * U);
    printf("%s%s%s\n", gemm_describe(), getenv("OPENBLAS_CORETYPE") ? "; OPENBLAS_CORETYPE in the environment: " : "",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "");
    GemmKernel kerns[2] = {gemm_kernel_for_cpu(), GEMM_OPENBLAS};
    int nk = kerns[0] == GEMM_OPENBLAS ? 1 : 2;
    double best[2] = {1e30, 1e30}, flops = 0, rate = 0, prof_step = 0;
    // the reference SGEMM: (1369, 768) x (768, 768)ᵀ, best of 3, on the default kernel
    int RN = 1369, RK = 768;
    float *ra = malloc(sizeof(float) * RN * RK), *rb = malloc(sizeof(float) * RK * RK), *rc = malloc(sizeof(float) * RN * RK);
    for (int i = 0; i < RN * RK; i++) ra[i] = frand();
    for (int i = 0; i < RK * RK; i++) rb[i] = frand();
    // one step untimed first: it touches the activations, gradients, Adam's moments and the GEMM buffers for
    // the first time (page faults), which the timed steps of both kernels then find in place
    {
        KanoLosses l;
        double t0 = now();
        if (kanoclip_train_step(m, &batch, &l)) { fprintf(stderr, "bench_train: %s\n", err_msg()); return 1; }
        printf("warm-up step (%s): %.2f s\n", gemm_kernel_name(gemm_kernel()), now() - t0);
    }
    for (int s = 0; s < steps; s++)
        for (int k = 0; k < nk; k++) {
            gemm_set_kernel(kerns[k]);
            KanoLosses l;
            if (k == 0) backend_profile_reset();
            double f0 = gemm_flops(), t0 = now();
            if (kanoclip_train_step(m, &batch, &l)) { fprintf(stderr, "bench_train: %s\n", err_msg()); return 1; }
            double dt = now() - t0;
            flops = gemm_flops() - f0;
            if (dt < best[k]) best[k] = dt;
            if (k == 0) prof_step = dt;
            printf("round %d, %s: %.2f s: text tower (fwd+bwd, %d prompts) %.2f s, Bi-CMCI + local losses (4 stages x %d "
                   "images) %.2f s; loss %.4f = kd %.4f + global %.4f + local %.4f\n", s + 1, gemm_kernel_name(kerns[k]),
                   dt, 2 * U, l.time_text, B, l.time_local, l.total, l.kd, l.global, l.local);
            fflush(stdout);
            if (k == 0) {
                char *split = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&split, &len);
                double in_ops = backend_profile_report(f, 0.005);
                fclose(f);
                printf("round %d, %s, by op (%.2f s of the %.2f s step inside ops; ops under 0.5%% left out):\n%s",
                       s + 1, gemm_kernel_name(kerns[k]), in_ops, prof_step, split);
                free(split);
            }
            if (k == 0)
                for (int r = 0; r < 3; r++) {
                    double g0 = now();
                    sgemm(CblasNoTrans, CblasTrans, RN, RK, RK, 1.0f, ra, RK, rb, RK, 0.0f, rc, RK);
                    double g = 2.0 * RN * RK * RK / (now() - g0);
                    if (g > rate) rate = g;
                }
        }
    gemm_set_kernel(kerns[0]);
    free(ra), free(rb), free(rc);
    float *maps = malloc(sizeof(float) * (size_t)B * S * S), *score = malloc(sizeof(float) * B);
    double t0 = now();
    kanoclip_eval(m, &batch, maps, NULL, score);
    double te = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("train step (%s kernel): %.2f s (best of %d), %.3f s per image; eval of the batch: %.2f s\n",
           gemm_kernel_name(kerns[0]), best[0], steps, best[0] / B, te);
    if (nk > 1) printf("train step (openblas): %.2f s (best of %d): %.2fx the time of the %s kernel\n", best[1], steps,
                       best[1] / best[0], gemm_kernel_name(kerns[0]));
    printf("GEMM: %.0f GFLOP per step; SGEMM rate (%s, 1369x768x768) %.1f GFLOP/s -> GEMM-bound time %.2f s; "
           "the step takes %.2fx that\n", flops / 1e9, gemm_kernel_name(kerns[0]), rate / 1e9, flops / rate,
           best[0] / (flops / rate));
    printf("peak memory (max RSS): %.0f MB (inputs: stage features %.0f MB, text token table %.0f MB)\n",
           ru.ru_maxrss / 1024.0, nst * 4.0 / (1 << 20), 49408.0 * 768 * 4 / (1 << 20));
    kanoclip_free(m);
    return 0;
}
