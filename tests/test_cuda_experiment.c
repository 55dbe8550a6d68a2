// The demo experiment with run.device=cuda against the same run on the CPU: KAnoCLIP's stage features come from
// the CUDA vision tower (submit/finish, the next batch decoded meanwhile) and the prompts' text tower runs on the
// GPU; the baselines' vision features too. So the whole path a GPU user takes is exercised. In fp32 the features agree to ~1e-5 and are stored as float16,
// so training and evaluation see (almost) the same numbers: metrics within 2e-3, the last epoch's loss within
// 1e-3 relative. Skips without a GPU.
#include "tests/cuda_test.h"

#ifndef KANOCLIP_CUDA
Test(cuda_experiment, skipped) { cr_skip_test("built without CUDA"); }
#else
#include <cjson/cJSON.h>

#include "harness/run/log.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static double metric(const char *dir, const char *level) {
    char *text = read_in(dir, "metrics.json", NULL);
    cJSON *m = cJSON_Parse(text);
    cr_assert_not_null(m, "%s/metrics.json does not parse", dir);
    double v = json_num(m, "datasets", "synthetic", level, "auroc");
    cJSON_Delete(m);
    free(text);
    return v;
}

// The last line's loss_total (third column) of train_log.csv.
static double last_loss(const char *dir) {
    char *text = read_in(dir, "train_log.csv", NULL);
    char *last = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) last = line;
    cr_assert_not_null(last);
    double step, epoch, loss;
    cr_assert_eq(sscanf(last, "%lf,%lf,%lf", &step, &epoch, &loss), 3, "train_log.csv: %s", last);
    free(text);
    return loss;
}

// Runs the demo as `method` on the CPU and on cuda (fp32) and compares; `trains`: also the last loss.
static void cpu_and_cuda_agree(const char *method, int trains) {
    need_gpu();
    char tmp[] = "/tmp/kanoclip-cudaexp-XXXXXX";
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
    char m[64];
    snprintf(m, sizeof m, "train.method=%s", method);
    const char *cpu[] = {"run.device=cpu", m};
    cr_assert_eq(experiment_run_demo(tmp, "cpu", 2, cpu), 0, "%s: %s", method, err_msg());
    // Its own cache folder: in fp32 the cache key is the CPU's, and a shared cache would skip the GPU extraction.
    char cache[128];
    snprintf(cache, sizeof cache, "cache.dir=%s/cache-cuda", tmp);
    const char *gpu[] = {"run.device=cuda", "run.precision=fp32", cache, m};
    cr_assert_eq(experiment_run_demo(tmp, "cuda", 4, gpu), 0, "%s: %s", method, err_msg());
    char *dc = run_folder_in(tmp, "cpu"), *dg = run_folder_in(tmp, "cuda");
    char *log = read_in(dg, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "vision tower on cuda"), "%s: the features were not computed on the GPU:\n%s",
                       method, log);
    for (int i = 0; i < 2; i++) {
        const char *level = i ? "pixel" : "image";
        double c = metric(dc, level), g = metric(dg, level);
        cr_assert(fabs(c - g) <= 2e-3, "%s: %s AUROC: cpu %.6f, cuda %.6f", method, level, c, g);
    }
    if (trains) {
        double lc = last_loss(dc), lg = last_loss(dg);
        cr_assert(fabs(lc - lg) <= 1e-3 * fabs(lc), "%s: last loss: cpu %.7f, cuda %.7f", method, lc, lg);
    }
    free(log);
    free(dc);
    free(dg);
    tmpdir_remove(tmp);
}

Test(cuda_experiment, demo_on_cuda_matches_the_cpu_run, .timeout = 300) { cpu_and_cuda_agree("kanoclip", 1); }

// The baselines' vision features on the GPU: CLIP's final-layer tokens, April-GAN's residual streams (it trains).
Test(cuda_experiment, clip_baseline_on_cuda_matches_the_cpu_run, .timeout = 300) { cpu_and_cuda_agree("clip", 0); }
Test(cuda_experiment, april_gan_on_cuda_matches_the_cpu_run, .timeout = 300) { cpu_and_cuda_agree("april-gan", 1); }
#endif
