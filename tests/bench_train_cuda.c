// KAnoCLIP's heads on the GPU at the real sizes (tests/bench_train_setup.h), through the cuda backend, against the
// CPU backend on the same inputs and initial parameters: one training step's loss terms in TF32 (within 1e-3
// relative) and gradients in bf16 (within 1e-2 of the largest gradient), one evaluation batch's maps and scores;
// then the training step's time on the device (bf16, best and median of the timed steps) and the projected time of
// the paper's run: the features of the 1,725 MVTec-AD test images (at BENCH_TOWER_IMGS_PER_S, the vision tower's
// rate measured by bench_cuda) plus 15 epochs of ceil(1725 / batch) steps. Exit 1 when a check fails.
// Usage: bench_train_cuda [batch=8] [classes=8] [timed steps=5]
#include "tests/bench_train_setup.h"

#include <math.h>

#include "model/backend.h"

static double rel(const float *got, const float *want, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= d)) d = e;
        if (fabs(want[i]) > r) r = fabs(want[i]);
    }
    return d / (r + 1e-30);
}

static Kanoclip *model_on(const Backend *be, DeviceKind dev, GemmPrecision p, const ClipText *text, int U) {
    KanoclipConfig cfg = kanoclip_config_default();
    cfg.device = dev;
    cfg.precision = p;
    Kanoclip *m = kanoclip_new_on(be, &cfg, U, text);
    if (!m || set_inputs(m, U)) { fprintf(stderr, "bench_train_cuda: %s\n", err_msg()); exit(1); }
    return m;
}

static int cmp_sorted(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 8, U = argc > 2 ? atoi(argv[2]) : 8, steps = argc > 3 ? atoi(argv[3]) : 5;
    if (B < 1 || B > 64 || U < 1 || U > B || steps < 1 || steps > 100) {
        fprintf(stderr, "usage: bench_train_cuda [batch] [classes<=batch] [steps]\n");
        return 2;
    }
    const Backend *gpu = backend_cuda();
    if (!gpu) { fprintf(stderr, "bench_train_cuda: %s\n", err_msg()); return 1; }
    printf("device: %s\n", device_describe(DEVICE_CUDA));
    ClipText text;
    if (bind_text(&text)) { fprintf(stderr, "bench_train_cuda: %s\n", err_msg()); return 1; }
    KanoBatch batch = make_batch(B, U);
    int S = 518, fail = 0;
    size_t SS = (size_t)S * S;
    // the CPU reference: one forward/backward and one evaluation
    Kanoclip *cpu = model_on(backend_cpu(), DEVICE_CPU, GEMM_FP32, &text, U);
    size_t n = kanoclip_layout_of(cpu)->total;
    KanoLosses lc, lt, lb;
    float *gc = malloc(sizeof(float) * n), *gd = malloc(sizeof(float) * n);
    float *mc = malloc(sizeof(float) * B * SS), *md = malloc(sizeof(float) * B * SS), sc[64], sd[64];
    double t0 = now();
    if (kanoclip_forward_backward(cpu, &batch, &lc) || kanoclip_eval(cpu, &batch, mc, NULL, sc)) goto err;
    printf("cpu: forward+backward+eval %.2f s; loss %.6f\n", now() - t0, lc.total);
    kanoclip_download_grads(cpu, gc);
    kanoclip_free(cpu);
    // TF32: loss terms, maps, scores
    Kanoclip *tf = model_on(gpu, DEVICE_CUDA, GEMM_TF32, &text, U);
    if (kanoclip_forward_backward(tf, &batch, &lt) || kanoclip_eval(tf, &batch, md, NULL, sd)) goto err;
    float got[5] = {lt.total, lt.kd, lt.global, lt.focal, lt.dice}, want[5] = {lc.total, lc.kd, lc.global, lc.focal, lc.dice};
    static const char *names[5] = {"total", "kd", "global", "focal", "dice"};
    for (int i = 0; i < 5; i++) {
        double e = fabs((double)got[i] - want[i]) / fmax(fabs(want[i]), 1e-6);
        printf("tf32 loss %-6s %.6f (cpu %.6f): relative error %.2g %s\n", names[i], got[i], want[i], e, e <= 1e-3 ? "ok" : "FAIL");
        fail |= !(e <= 1e-3);
    }
    double em = rel(md, mc, B * SS), es = rel(sd, sc, B);
    printf("tf32 eval maps: relative error %.2g; scores %.2g %s\n", em, es, em <= 1e-3 && es <= 1e-3 ? "ok" : "FAIL");
    fail |= !(em <= 1e-3 && es <= 1e-3);
    kanoclip_free(tf);
    // bf16: gradients, then the timed steps
    Kanoclip *bf = model_on(gpu, DEVICE_CUDA, GEMM_BF16, &text, U);
    if (kanoclip_forward_backward(bf, &batch, &lb)) goto err;
    kanoclip_download_grads(bf, gd);
    double eg = rel(gd, gc, n);
    printf("bf16 gradients (%zu): relative error %.2g %s\n", n, eg, eg <= 1e-2 ? "ok" : "FAIL");
    fail |= !(eg <= 1e-2);
    double t[100];
    for (int s = 0; s < steps; s++) {
        KanoLosses l;
        double t1 = now();
        if (kanoclip_train_step(bf, &batch, &l)) goto err;
        t[s] = now() - t1;
    }
    qsort(t, steps, sizeof t[0], cmp_sorted);
    double step = t[steps / 2];
    printf("| heads step (bf16, batch %d) | best %.3f s | median %.3f s | target <= 0.1 s |\n", B, t[0], step);
    const char *rate_s = getenv("BENCH_TOWER_IMGS_PER_S");
    double rate = rate_s ? atof(rate_s) : 0, steps_paper = 15.0 * ceil(1725.0 / B);
    if (rate > 0)
        printf("| projected paper run | features %.0f s (1725 images at %.0f img/s) + 15 epochs x %.0f steps x %.3f s = %.1f min |\n",
               1725.0 / rate, rate, steps_paper / 15, step, (1725.0 / rate + steps_paper * step) / 60.0);
    else
        printf("| projected paper run | 15 epochs x %.0f steps x %.3f s = %.1f min of head training (features: set "
               "BENCH_TOWER_IMGS_PER_S) |\n", steps_paper / 15, step, steps_paper * step / 60.0);
    kanoclip_free(bf);
    printf("bench_train_cuda: %s\n", fail ? "FAILED" : "all checks passed");
    return fail;
err:
    fprintf(stderr, "bench_train_cuda: %s\n", err_msg());
    return 1;
}
