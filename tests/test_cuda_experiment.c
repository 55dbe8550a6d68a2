// The demo experiment with run.device=cuda against the same run on the CPU: the stage features come from the
// CUDA vision tower (submit/finish, the next batch decoded meanwhile) and the prompts' text tower runs on the GPU,
// so the whole path a GPU user takes is exercised. In fp32 the features agree to ~1e-5 and are stored as float16,
// so training and evaluation see (almost) the same numbers: metrics within 2e-3, the last epoch's loss within
// 1e-3 relative. Skips without a GPU.
#include "tests/cuda_test.h"

#ifndef KANOCLIP_CUDA
Test(cuda_experiment, skipped) { cr_skip_test("built without CUDA"); }
#else
#include <cjson/cJSON.h>

#include "harness/log.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static double metric(const char *dir, const char *level) {
    char *text = read_in(dir, "metrics.json", NULL);
    cJSON *m = cJSON_Parse(text);
    cr_assert_not_null(m, "%s/metrics.json does not parse", dir);
    cJSON *o = m;
    const char *path[] = {"datasets", "synthetic", level, "auroc"};
    for (int i = 0; i < 4; i++) {
        o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
        cr_assert_not_null(o, "%s/metrics.json: no %s", dir, path[i]);
    }
    double v = o->valuedouble;
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

Test(cuda_experiment, demo_on_cuda_matches_the_cpu_run, .timeout = 300) {
    need_gpu();
    char tmp[] = "/tmp/kanoclip-cudaexp-XXXXXX";
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
    const char *cpu[] = {"run.device=cpu"};
    cr_assert_eq(experiment_run_demo(tmp, "cpu", 1, cpu), 0, "%s", err_msg());
    // Its own cache folder: in fp32 the cache key is the CPU's, and a shared cache would skip the GPU extraction.
    char cache[128];
    snprintf(cache, sizeof cache, "cache.dir=%s/cache-cuda", tmp);
    const char *gpu[] = {"run.device=cuda", "run.precision=fp32", cache};
    cr_assert_eq(experiment_run_demo(tmp, "cuda", 3, gpu), 0, "%s", err_msg());
    char *dc = run_folder_in(tmp, "cpu"), *dg = run_folder_in(tmp, "cuda");
    char *log = read_in(dg, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "vision tower on cuda"), "the features were not computed on the GPU:\n%s", log);
    for (int i = 0; i < 2; i++) {
        const char *level = i ? "pixel" : "image";
        double c = metric(dc, level), g = metric(dg, level);
        cr_assert(fabs(c - g) <= 2e-3, "%s AUROC: cpu %.6f, cuda %.6f", level, c, g);
    }
    double lc = last_loss(dc), lg = last_loss(dg);
    cr_assert(fabs(lc - lg) <= 1e-3 * fabs(lc), "last loss: cpu %.7f, cuda %.7f", lc, lg);
    free(log);
    free(dc);
    free(dg);
    tmpdir_remove(tmp);
}
#endif
