// `kanoclip experiment` end to end on the demo config at a tiny size (synthetic data and a random checkpoint
// generated into a temporary folder): result files, a finished run not run again, the feature cache shared by
// runs with one backbone, a killed run resumed to the same parameters and metrics, the Table 3 switches, and a
// paper config stopping before any compute when weights and data are missing.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/run/experiment.h"
#include "harness/run/log.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static char tmp[64];

static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-exp-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
}
static void teardown(void) { tmpdir_remove(tmp); }

static int run_demo(const char *name, int n_extra, const char *const *extra) {
    return experiment_run_demo(tmp, name, n_extra, extra);
}

// The run folder of run.name NAME (exactly one), malloc'd.
static char *run_folder(const char *name) { return run_folder_in(tmp, name); }

static int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

TestSuite(experiment, .init = setup, .fini = teardown, .timeout = 300);

Test(experiment, demo_end_to_end_writes_every_result_file) {
    cr_assert_eq(run_demo("e2e", 0, NULL), 0, "%s", err_msg());
    char *dir = run_folder("e2e");
    // metrics.json as harness/run/experiment.h specifies it.
    char *text = read_in(dir, "metrics.json", NULL);
    cJSON *m = cJSON_Parse(text);
    cr_assert_not_null(m, "metrics.json does not parse");
    cr_assert_str_eq(cJSON_GetObjectItem(m, "method")->valuestring, "kanoclip");
    cr_assert_str_eq(cJSON_GetObjectItem(m, "train_dataset")->valuestring, "synthetic-train");
    double ia = json_num(m, "datasets", "synthetic", "image", "auroc");
    double pa = json_num(m, "datasets", "synthetic", "pixel", "auroc");
    cr_assert(ia >= 0 && ia <= 1 && pa >= 0 && pa <= 1, "image %g pixel %g", ia, pa);
    cJSON *classes = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "datasets"), "synthetic"), "classes");
    // Zero-shot: the 2 evaluated classes are the generated classes 3 and 4, never the 3 trained on.
    cr_assert_eq(cJSON_GetArraySize(classes), 2);
    cr_assert_not_null(cJSON_GetObjectItem(classes, "rubber_ring"));
    cr_assert_not_null(cJSON_GetObjectItem(classes, "granite_stone"));
    cr_assert_null(cJSON_GetObjectItem(classes, "woven_fabric"));
    cJSON_Delete(m);
    free(text);
    // per_class.csv: header and one row per class, sorted.
    text = read_in(dir, "per_class.csv", NULL);
    cr_assert(!strncmp(text, "dataset,class,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,pixel_f1_max\n"
                             "synthetic,granite_stone,", 118), "per_class.csv:\n%s", text);
    cr_assert_eq(count_lines(text), 3, "per_class.csv:\n%s", text);
    free(text);
    // roc_synthetic.csv: from (0,0) to (1,1), fpr never decreasing.
    text = read_in(dir, "roc_synthetic.csv", NULL);
    cr_assert(!strncmp(text, "fpr,tpr\n0,0\n", 12), "%s", text);
    double last_f = 0, f = 0, t = 0;
    for (char *l = strchr(text, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        cr_assert_eq(sscanf(l, "%lf,%lf", &f, &t), 2);
        cr_assert(f >= last_f, "fpr decreases at %s", l);
        last_f = f;
    }
    cr_assert(f == 1 && t == 1, "ROC ends at (%g, %g)", f, t);
    free(text);
    // train_log.csv: 2 epochs x 2 steps (9 images of 3 classes... 18 images, batch 8: 3 steps), log_every 1.
    text = read_in(dir, "train_log.csv", NULL);
    cr_assert(!strncmp(text, "step,epoch,loss_total,loss_focal,loss_dice,loss_bce,loss_kd\n", 59), "%s", text);
    cr_assert_eq(count_lines(text), 1 + 2 * 3, "train_log.csv:\n%s", text);
    free(text);
    char *p = fs_join(dir, "DONE");
    cr_assert(fs_exists(p), "no DONE");
    free(p);
    p = fs_join(dir, "state.bin");
    cr_assert(fs_exists(p), "no state.bin");
    free(p);
    // The epoch lines carry the three cosine monitors.
    text = read_in(dir, "log.txt", NULL);
    cr_assert_not_null(strstr(text, "epoch 2/2: loss"), "%s", text);
    cr_assert_not_null(strstr(text, "cos(LAP,KB)"), "%s", text);
    // where each training class's knowledge came from (no fetched answers here: shipped or generic text)
    cr_assert_not_null(strstr(text, "kb: class woven_fabric: "), "%s", text);
    free(text);
    text = read_in(dir, "provenance.json", NULL);
    m = cJSON_Parse(text);
    cr_assert_not_null(m, "provenance.json does not parse");
    cJSON *src = cJSON_GetObjectItem(m, "kb_source.woven_fabric");
    cr_assert(cJSON_IsString(src) && strstr(src->valuestring, "for the LLM answers (0 of 5 fetched)") &&
              strstr(src->valuestring, "VQA answers 0 of "), "kb_source.woven_fabric: %s", text);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(m, "kb_llm_model")), "%s", text);
    cJSON_Delete(m);
    free(text);
    free(dir);
}

// kb.require: fetched (the paper configs' setting) with no fetched answers: the run stops before any compute,
// in one line naming the key, the first class short of answers and `kanoclip kb build`.
Test(experiment, kb_require_fetched_without_answers_stops_before_compute) {
    const char *ov[] = {"kb.require=fetched"};
    int rc = run_demo("kbreq", 1, ov);
    cr_assert_neq(rc, 0);
    const char *msg = err_msg();
    cr_assert_not_null(strstr(msg, "kb.require: fetched, but 3 of 3 classes lack fetched answers"), "%s", msg);
    cr_assert_not_null(strstr(msg, "`kanoclip kb build`"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'), "not one line: %s", msg);
    char *feat = fs_join(tmp, "cache/features");
    cr_assert(!fs_exists(feat), "features were extracted before the check");
    free(feat);
}

Test(experiment, finished_run_is_not_run_again) {
    cr_assert_eq(run_demo("again", 0, NULL), 0, "%s", err_msg());
    char *dir = run_folder("again");
    size_t n1, n2;
    char *m1 = read_in(dir, "metrics.json", NULL), *l1 = read_in(dir, "log.txt", &n1);
    cr_assert_eq(run_demo("again", 0, NULL), 0, "%s", err_msg());
    char *m2 = read_in(dir, "metrics.json", NULL), *l2 = read_in(dir, "log.txt", &n2);
    cr_assert_str_eq(m1, m2);
    cr_assert_eq(n1, n2, "the finished run wrote to its log again");
    free(m1); free(m2); free(l1); free(l2); free(dir);
}

Test(experiment, runs_with_one_backbone_share_the_feature_cache) {
    cr_assert_eq(run_demo("first", 0, NULL), 0, "%s", err_msg());
    const char *lr[] = {"train.lr=0.002"};
    cr_assert_eq(run_demo("second", 1, lr), 0, "%s", err_msg());
    char *d1 = run_folder("first"), *d2 = run_folder("second");
    char *l1 = read_in(d1, "log.txt", NULL), *l2 = read_in(d2, "log.txt", NULL);
    cr_assert_not_null(strstr(l1, "images to extract"), "%s", l1);
    cr_assert_null(strstr(l2, "images to extract"), "the second run extracted features again:\n%s", l2);
    cr_assert_not_null(strstr(l2, ": reused ("), "%s", l2);
    // CLIP-VV off reads other features: a cache of its own.
    const char *novv[] = {"model.vv_from=0"};
    cr_assert_eq(run_demo("novv", 1, novv), 0, "%s", err_msg());
    char *d3 = run_folder("novv"), *l3 = read_in(d3, "log.txt", NULL);
    cr_assert_not_null(strstr(l3, "images to extract"), "CLIP-VV off reused the V-V features:\n%s", l3);
    cr_assert_not_null(strstr(l3, "vv_from 0"), "%s", l3);
    free(l1); free(l2); free(l3); free(d1); free(d2); free(d3);
}

// Training embeds the KB descriptions into the one embedding cache that `kanoclip kb embed` fills,
// kb.cache_dir/embeddings/, not a second copy under cache.dir.
Test(experiment, kb_embeddings_go_to_the_kb_cache) {
    char kb[128], ov[160];
    snprintf(kb, sizeof kb, "%s/kb", tmp);
    snprintf(ov, sizeof ov, "kb.cache_dir=%s", kb);
    const char *extra[] = {ov, "train.epochs=1"};
    cr_assert_eq(run_demo("kbcache", 2, extra), 0, "%s", err_msg());
    char pat[256];
    snprintf(pat, sizeof pat, "%s/embeddings/text-*.h5", kb);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no text embeddings under %s/embeddings", kb);
    cr_assert_eq(g.gl_pathc, 1);
    globfree(&g);
    snprintf(pat, sizeof pat, "%s/cache/embeddings", tmp);
    cr_assert(!fs_exists(pat), "training wrote a second embedding cache %s", pat);
}

Test(experiment, killed_run_resumes_to_the_uninterrupted_result) {
    const char *ep[] = {"train.epochs=3"};
    cr_assert_eq(run_demo("whole", 1, ep), 0, "%s", err_msg());
    setenv("KANOCLIP_STOP_AFTER_EPOCHS", "1", 1);
    cr_assert_neq(run_demo("parts", 1, ep), 0, "the stop hook did not stop the run");
    cr_assert_neq(run_demo("parts", 1, ep), 0, "the stop hook did not stop the second attempt");
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    char *dp = run_folder("parts");
    char *done = fs_join(dp, "DONE");
    cr_assert(!fs_exists(done), "a stopped run is marked finished");
    free(done);
    cr_assert_eq(run_demo("parts", 1, ep), 0, "%s", err_msg());
    char *dw = run_folder("whole");
    size_t nw, np;
    char *sw = read_in(dw, "state.bin", &nw), *sp = read_in(dp, "state.bin", &np);
    cr_assert_eq(nw, np);
    cr_assert(memcmp(sw, sp, nw) == 0, "parameters, Adam moments or step differ after resuming");
    char *cw = read_in(dw, "per_class.csv", NULL), *cp = read_in(dp, "per_class.csv", NULL);
    cr_assert_str_eq(cw, cp);
    char *tw = read_in(dw, "train_log.csv", NULL), *tp = read_in(dp, "train_log.csv", NULL);
    cr_assert_str_eq(tw, tp, "train_log.csv differs:\n%s\nvs\n%s", tw, tp);
    // metrics.json too: its first epoch's loss is the first epoch's, whichever attempt trained it.
    char *mw = read_in(dw, "metrics.json", NULL), *mp = read_in(dp, "metrics.json", NULL);
    cr_assert_str_eq(mw, mp, "metrics.json differs:\n%s\nvs\n%s", mw, mp);
    free(mw);
    free(mp);
    char *log = read_in(dp, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "resuming from"), "%s", log);
    free(sw); free(sp); free(cw); free(cp); free(tw); free(tp); free(log); free(dw); free(dp);
}

Test(experiment, table3_switches_run_and_change_the_result) {
    cr_assert_eq(run_demo("full", 0, NULL), 0, "%s", err_msg());
    char *df = run_folder("full"), *mf = read_in(df, "per_class.csv", NULL);
    const char *sw[][1] = {{"method.knpl=false"}, {"method.bicmci=false"}, {"method.adapter=false"}};
    const char *names[] = {"noknpl", "nobicmci", "noadapter"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run_demo(names[i], 1, sw[i]), 0, "%s: %s", sw[i][0], err_msg());
        char *d = run_folder(names[i]), *m = read_in(d, "per_class.csv", NULL);
        cr_assert_str_neq(m, mf, "%s gives the full model's numbers", sw[i][0]);
        free(d);
        free(m);
    }
    free(df);
    free(mf);
}

// A run that meets an unreadable image while extracting features stops with one line naming it, and keeps the
// batches it finished before (the loader reads the next batch while the current one is computed: the finished
// one is still stored): a second attempt resumes from them and stops at the same image.
Test(experiment, unreadable_image_mid_extraction_keeps_the_batches_before_it) {
    cr_assert_eq(run_demo("first", 0, NULL), 0, "%s", err_msg());  // makes the data
    char pat[256];
    snprintf(pat, sizeof pat, "%s/data/*/test/*/*.png", tmp);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0);
    char *victim = strdup(g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    cr_assert_eq(fs_write_atomic(victim, "not a png", 9), 0);
    char cache[300];
    snprintf(cache, sizeof cache, "cache.dir=%s/cache2", tmp);
    const char *ov[] = {cache, "eval.batch_size=2"};
    for (int attempt = 1; attempt <= 2; attempt++) {
        cr_assert_neq(run_demo("broken", 2, ov), 0, "attempt %d: an unreadable image went unnoticed", attempt);
        cr_assert_not_null(strstr(err_msg(), victim), "attempt %d: the error does not name %s: %s", attempt, victim,
                           err_msg());
    }
    char *d = run_folder("broken"), *log = read_in(d, "log.txt", NULL);
    const char *second = strstr(log, "(attempt 2)");
    cr_assert_not_null(second, "%s", log);
    const char *resuming = strstr(second, "resuming, ");
    int done = 0, total = 0;
    cr_assert(resuming && sscanf(resuming, "resuming, %d of %d images already done", &done, &total) == 2,
              "the second attempt did not resume:\n%s", second);
    // The image is the last one in name order, which is the reader's order too: only its own batch of 2 is missing.
    // (Had the loop dropped the batch it was computing when the next one failed to load, 4 would be.)
    cr_assert_eq(done, total - 2, "%d of %d images kept:\n%s", done, total, second);
    free(victim); free(d); free(log);
}

Test(experiment, deep_text_prompts_switch_runs_and_is_checked) {
    cr_assert_eq(run_demo("plain", 0, NULL), 0, "%s", err_msg());
    const char *deep[] = {"method.deep_prompts=true", "method.deep_depth=2", "method.deep_tokens=2"};
    cr_assert_eq(run_demo("deep", 3, deep), 0, "%s", err_msg());
    char *dp = run_folder("plain"), *dd = run_folder("deep");
    size_t np, nd;
    char *sp = read_in(dp, "state.bin", &np), *sd = read_in(dd, "state.bin", &nd);
    // one (depth-1) x tokens x text-width tensor more: 1 x 2 x the tiny checkpoint's text width, plus its Adam moments
    cr_assert_gt(nd, np, "the deep prompts are not in the trained state");
    char *cp = read_in(dp, "per_class.csv", NULL), *cd = read_in(dd, "per_class.csv", NULL);
    cr_assert_str_neq(cp, cd, "deep prompts give the plain model's numbers");
    // deeper than the text tower: one line naming the key
    const char *too_deep[] = {"method.deep_prompts=true", "method.deep_depth=99"};
    cr_assert_neq(run_demo("toodeep", 2, too_deep), 0);
    cr_assert_not_null(strstr(err_msg(), "method.deep_depth: 99, but the checkpoint's text tower has 2 layers"), "%s",
                       err_msg());
    char pat[128];
    snprintf(pat, sizeof pat, "%s/results/toodeep-*", tmp);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), GLOB_NOMATCH, "the refused run left a folder");
    free(dp); free(dd); free(sp); free(sd); free(cp); free(cd);
}

Test(experiment, paper_config_without_weights_stops_before_compute) {
    char ov1[300], ov2[300];
    snprintf(ov1, sizeof ov1, "run.out_dir=%s/results", tmp);
    snprintf(ov2, sizeof ov2, "cache.dir=%s/cache", tmp);
    char *argv[] = {"experiment", "experiments/kanoclip-mvtec-to-all.yaml", ov1, ov2, "--quiet", NULL};
    int rc = experiment_run_quiet(5, argv);
    cr_assert_neq(rc, 0);
    const char *msg = err_msg();
    cr_assert_not_null(strstr(msg, "model.checkpoint: folder models/clip-vit-large-patch14-336 not found"), "%s", msg);
    cr_assert_not_null(strstr(msg, "download openai/clip-vit-large-patch14-336"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'), "not one line: %s", msg);
    char *cache = fs_join(tmp, "cache");
    cr_assert(!fs_exists(cache), "something was computed into %s", cache);
    free(cache);
}

Test(experiment, missing_dataset_is_named_with_its_key) {
    char nowhere[300];
    snprintf(nowhere, sizeof nowhere, "eval.datasets=[{name: v, type: visa, root: %s/nowhere}]", tmp);
    const char *ov[] = {nowhere};
    int rc = run_demo("missing", 1, ov);
    cr_assert_neq(rc, 0);
    cr_assert_not_null(strstr(err_msg(), "eval.datasets: dataset v: folder"), "%s", err_msg());
    cr_assert_not_null(strstr(err_msg(), "nowhere not found"), "%s", err_msg());
    char *feat = fs_join(tmp, "cache/features");
    cr_assert(!fs_exists(feat), "features were extracted before the check");
    free(feat);
}

Test(experiment, check_dataset_reads_the_tree) {
    cr_assert_eq(run_demo("chk", 1, (const char *[]){"train.epochs=0"}), 0, "%s", err_msg());
    char *root = fs_join(tmp, "data");
    cr_assert_eq(experiment_check_dataset("mvtec", root), 0, "%s", err_msg());
    char *empty = fs_join(tmp, "empty");
    cr_assert_eq(fs_mkdirs(empty), 0);
    cr_assert_neq(experiment_check_dataset("mvtec", empty), 0, "an empty folder read as MVTec-AD");
    free(empty);
    cr_assert_neq(experiment_check_dataset("mvtec", "/nonexistent/kanoclip"), 0);
    cr_assert_not_null(strstr(err_msg(), "/nonexistent/kanoclip not found"), "%s", err_msg());
    cr_assert_neq(experiment_check_dataset("nosuch", root), 0);
    free(root);
}

// The whole demo run with KAnoCLIP's heads on the guard backend (KANOCLIP_BACKEND=guard: every buffer of the
// heads in pages the host cannot touch outside an op; model/backend.h): the same metrics and training log, to the
// byte, as on the CPU backend.
Test(experiment, guard_backend_run_equals_the_cpu_run) {
    cr_assert_eq(run_demo("on_cpu", 0, NULL), 0, "%s", err_msg());
    setenv("KANOCLIP_BACKEND", "guard", 1);
    int rc = run_demo("on_guard", 0, NULL);
    unsetenv("KANOCLIP_BACKEND");
    cr_assert_eq(rc, 0, "%s", err_msg());
    char *d1 = run_folder("on_cpu"), *d2 = run_folder("on_guard");
    char *m1 = read_in(d1, "metrics.json", NULL), *m2 = read_in(d2, "metrics.json", NULL);
    char *t1 = read_in(d1, "train_log.csv", NULL), *t2 = read_in(d2, "train_log.csv", NULL);
    cr_assert_str_eq(m1, m2, "metrics differ between the cpu and guard backends");
    cr_assert_str_eq(t1, t2, "training logs differ between the cpu and guard backends");
    free(m1); free(m2); free(t1); free(t2); free(d1); free(d2);
}
