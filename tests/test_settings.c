// Typed settings (harness/config/settings.h): every value a run would otherwise stop on after hours of compute is
// refused by `kanoclip experiment` and by its --dry-run alike, before anything is created: one line naming the key
// (and the file and line where it came from a file), a non-zero exit, no run folder, no cache, no generated data.
// And the C defaults the tests rely on (kanoclip_config_default, kb_settings_defaults) equal
// experiments/defaults.yaml, where the defaults live.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/config/settings.h"
#include "harness/run/method.h"
#include "model/checkpoint_write.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static char root[64];

static void setup(void) {
    strcpy(root, "/tmp/kanoclip-settings-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    cr_redirect_stderr();
}
static void teardown(void) { tmpdir_remove(root); }
TestSuite(settings, .init = setup, .fini = teardown);

static int exists_under(const char *name) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, name);
    return fs_exists(p);
}

// The shrunk demo with one bad override, as a run and as a dry run: both refuse it naming `want`, and neither
// leaves anything behind.
static void refused(const char *override, const char *want) {
    for (int dry = 0; dry < 2; dry++) {
        const char *extra[2] = {override, "--dry-run"};
        err_clear();
        int rc = experiment_run_demo(root, "bad", dry ? 2 : 1, extra);
        cr_assert_eq(rc, 1, "%s%s: exit %d", override, dry ? " --dry-run" : "", rc);
        cr_assert(strstr(err_msg(), want), "%s%s: the error names %s: %s", override, dry ? " --dry-run" : "", want,
                  err_msg());
        cr_assert(strstr(err_msg(), "override "), "the origin of the value is named: %s", err_msg());
        cr_assert(!exists_under("results") && !exists_under("cache") && !exists_under("data"),
                  "%s: nothing is created", override);
    }
}

Test(settings, the_shrunk_demo_is_valid) {
    const char *extra[1] = {"--dry-run"};
    cr_assert_eq(experiment_run_demo(root, "ok", 1, extra), 0, "%s", err_msg());
    cr_assert(!exists_under("results") && !exists_under("data"), "a dry run creates nothing");
}

Test(settings, bad_values_stop_before_anything_is_created) {
    refused("eval.aupro=bogus", "eval.aupro: 'bogus' (valid: mvtec anomalyclip anomalyclip-f32)");
    refused("train.batch_size=0", "train.batch_size: 0: must be >= 1");
    refused("train.epochs=-3", "train.epochs: -3: must be >= 0");
    refused("train.lr=-1", "train.lr: -1: must be > 0");
    refused("train.lr=.nan", "train.lr: nan: must be a finite number");
    refused("run.threads=-3", "run.threads: -3: must be >= 0");
    refused("train.method=kanoclipp", "train.method: 'kanoclipp' (valid: kanoclip clip clip-ac winclip april-gan");
    refused("train.log_every=0", "train.log_every: 0: must be >= 1");
    refused("train.checkpoint_every=0", "train.checkpoint_every: 0: must be >= 1");
    refused("method.tau=0", "method.tau: 0: must be > 0");
    refused("method.local_loss=fuse", "method.local_loss: 'fuse' (valid: stages fused)");
    refused("method.map_norm=max", "method.map_norm: 'max' (valid: mean minmax)");
    refused("method.kd_form=hinge", "method.kd_form: 'hinge'");
    refused("eval.batch_size=0", "eval.batch_size: 0: must be >= 1");
    refused("eval.bootstrap=-1", "eval.bootstrap: -1: must be >= 0");
    refused("eval.bootstrap=2000000", "eval.bootstrap: 2000000: must be <= 1000000");
    refused("eval.bootstrap_seed=-5", "eval.bootstrap_seed: -5: must be >= 0");
    refused("eval.image_size=64", "eval.image_size: 64, but maps are made at model.image_size (32)");
}

Test(settings, sizes_that_do_not_fit_the_checkpoint) {
    // The demo's tower (model.random: 4 layers, patch 8) is checked before it is generated.
    refused("model.layers=[1, 2, 3, 9]", "model.layers: layer 9, but the checkpoint's vision tower has 4 layers");
    refused("model.vv_from=5", "model.vv_from: 5, but the checkpoint's vision tower has 4 layers");
    const char *extra[3] = {"model.image_size=30", "eval.image_size=30", "--dry-run"};
    for (int dry = 0; dry < 2; dry++) {
        cr_assert_eq(experiment_run_demo(root, "bad", 2 + dry, extra), 1);
        cr_assert(strstr(err_msg(), "model.image_size: 30 is not a multiple of the checkpoint's patch size 8"), "%s",
                  err_msg());
        cr_assert(!exists_under("results") && !exists_under("ckpt"));
    }
}

Test(settings, an_unwritable_out_dir) {
    // A path through a regular file cannot be made, whoever runs the test (root included).
    char file[PATH_MAX], ov[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/a-file", root);
    cr_assert_eq(fs_write_atomic(file, "x", 1), 0);
    snprintf(ov, sizeof ov, "run.out_dir=%s/results", file);
    const char *extra[2] = {ov, "--dry-run"};
    for (int dry = 0; dry < 2; dry++) {
        cr_assert_eq(experiment_run_demo(root, "bad", 1 + dry, extra), 1);
        cr_assert(strstr(err_msg(), "run.out_dir: ") && strstr(err_msg(), "is not a folder"), "%s", err_msg());
        cr_assert(!exists_under("data") && !exists_under("cache"));
    }
}

Test(settings, a_truncated_weights_file) {
    // The demo's checkpoint written for real, then cut short: the run and the dry run name it.
    char ck[PATH_MAX], st[PATH_MAX];
    snprintf(ck, sizeof ck, "%s/ckpt", root);
    ClipConfig c = {.vision = {.width = 64, .layers = 4, .heads = 4, .mlp = 256, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .text = {.width = 64, .layers = 2, .heads = 4, .mlp = 256, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU},
                    .vocab_size = 49408, .context_length = 77, .eos_token_id = 49407, .image_size = 32,
                    .patch_size = 8, .channels = 3, .projection_dim = 48, .logit_scale_init = 2.6592f};
    cr_assert_eq(fs_mkdirs(ck), 0);
    cr_assert_eq(clip_write_random(ck, &c, 7), 0, "%s", err_msg());
    const char *extra[1] = {"--dry-run"};
    cr_assert_eq(experiment_run_demo(root, "ok", 1, extra), 0, "the intact checkpoint passes: %s", err_msg());
    snprintf(st, sizeof st, "%s/model.safetensors", ck);
    size_t len = 0;
    char *bytes = fs_read_file(st, &len);
    cr_assert_not_null(bytes);
    cr_assert_eq(fs_write_atomic(st, bytes, len - 1000), 0);
    free(bytes);
    for (int dry = 0; dry < 2; dry++) {
        cr_assert_eq(experiment_run_demo(root, "bad", dry, extra), 1);
        cr_assert(strstr(err_msg(), "model.checkpoint: ") && strstr(err_msg(), "model.safetensors"), "%s", err_msg());
        cr_assert(!exists_under("results") && !exists_under("data"));
    }
}

Test(settings, a_value_from_a_file_names_file_and_line) {
    char path[PATH_MAX], text[PATH_MAX + 64], cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(path, sizeof path, "%s/nan.yaml", root);
    snprintf(text, sizeof text, "base: [%s/experiments/demo.yaml]\ntrain:\n  lr: .nan\n", cwd);
    cr_assert_eq(fs_write_atomic(path, text, strlen(text)), 0);
    for (int dry = 0; dry < 2; dry++) {
        char *argv[5] = {"experiment", path, "--quiet", dry ? "--dry-run" : "--quiet", NULL};
        cr_assert_eq(experiment_run_quiet(4, argv), 1);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s:3:7: train.lr: nan: must be a finite number", path);
        cr_assert(strstr(err_msg(), want), "%s", err_msg());
    }
}

// method.global_source: vv reads S_L[0] as row 0 of the last stage: refused, naming the key, when ln_post is off
// or the last stage is not the last layer.
Test(settings, global_from_the_vv_class_token_needs_the_last_layer) {
    const char *cases[2][3] = {{"method.global_source=vv", "method.global_ln_post=false", "through ln_post"},
                               {"method.global_source=vv", "model.layers=[1,2,3]", "model.layers ends at 3"}};
    for (int i = 0; i < 2; i++) {
        const char *extra[3] = {cases[i][0], cases[i][1], "--dry-run"};
        err_clear();
        cr_assert_eq(experiment_run_demo(root, "bad", 3, extra), 1, "%s %s", cases[i][0], cases[i][1]);
        cr_assert(strstr(err_msg(), "method.global_source") && strstr(err_msg(), cases[i][2]), "%s", err_msg());
    }
}

// The ten Table 3 configs: row r switches the paper's modules on cumulatively (docs/table3.md), each evaluated on
// its dataset and trained on the other's test split, in report table "table3" at order r.
Test(settings, table3_configs_switch_the_modules_cumulatively) {
    const char *rows[5] = {"1-none", "2-knpl", "3-clip-vv", "4-bicmci", "5-adapter"};
    const char *ds[2][2] = {{"mvtec", "visa"}, {"visa", "mvtec"}};  // evaluated on, trained on
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < 5; r++) {
            char path[128];
            snprintf(path, sizeof path, "experiments/table3/%s-%s.yaml", ds[d][0], rows[r]);
            char *ov[1] = {"model.checkpoint=models/any"};
            Config *cfg = config_load(path, NULL, 1, ov);
            cr_assert_not_null(cfg, "%s: %s", path, err_msg());
            Settings *s = settings_load(cfg);
            cr_assert_not_null(s, "%s: %s", path, err_msg());
            cr_assert_str_eq(s->report.table, "table3", "%s", path);
            cr_assert_eq(s->report.order, r + 1, "%s", path);
            cr_assert_eq(s->kanoclip.knpl, r >= 1, "%s knpl", path);
            cr_assert_eq(s->model.vv_from > 0, r >= 2, "%s vv_from %d", path, s->model.vv_from);
            cr_assert_eq(s->kanoclip.bicmci, r >= 3, "%s bicmci", path);
            cr_assert_eq(s->kanoclip.adapter, r >= 4, "%s adapter", path);
            cr_assert_eq(s->eval.n_datasets, 1);
            cr_assert_str_eq(s->eval.datasets[0].type, ds[d][0], "%s", path);
            cr_assert_str_eq(s->data.train.type, ds[d][1], "%s", path);
            cr_assert_eq(s->kb.require_fetched, 1, "%s: the paper configs require fetched KB answers", path);
            if (r == 0) cr_assert(strstr(s->prompts.fixed[1], "abnormal"), "%s: %s", path, s->prompts.fixed[1]);
            settings_free(s);
            config_free(cfg);
        }
}

// The defaults the C code also knows (for tests and library users) agree with experiments/defaults.yaml.
Test(settings, c_defaults_equal_defaults_yaml) {
    char *ov[1] = {"model.checkpoint=models/any"};  // the one key without a usable default
    Config *cfg = config_load(NULL, "experiments/defaults.yaml", 1, ov);
    cr_assert_not_null(cfg, "%s", err_msg());
    Settings *s = settings_load(cfg);
    cr_assert_not_null(s, "%s", err_msg());
    KanoclipConfig d = kanoclip_config_default(), *y = &s->kanoclip;
#define SAME(f) cr_assert_eq(y->f, d.f, "method default %s: defaults.yaml %g, C %g", #f, (double)y->f, (double)d.f)
    SAME(image_size); SAME(n_stages); SAME(clip_vv); SAME(global_ln_post); SAME(knpl); SAME(n_ctx);
    SAME(ctx_init_std); SAME(deep_prompts); SAME(deep_depth); SAME(deep_tokens); SAME(kd_form); SAME(kd_margin);
    SAME(kd_tau); SAME(heads); SAME(bicmci); SAME(bicmci_full); SAME(zero_init_out); SAME(deform); SAME(dat_groups);
    SAME(dat_kernel); SAME(dat_offset_range); SAME(dat_rpe); SAME(msda_points); SAME(init_std);
    SAME(maps_updated_text); SAME(adapter); SAME(adapter_ratio); SAME(adapter_residual); SAME(tau);
    SAME(upsample_align_corners); SAME(gauss_sigma); SAME(gauss_truncate); SAME(w_kd); SAME(w_global); SAME(w_local);
    SAME(lr); SAME(beta1); SAME(beta2); SAME(adam_eps); SAME(seed);
    SAME(global_vv); SAME(local_fused); SAME(map_minmax); SAME(global_max_map);
#undef SAME
    KbSettings k;
    kb_settings_defaults(&k);
#define SAME_STR(f) cr_assert_str_eq(s->kb.f, k.f, "kb default %s", #f)
#define SAME_NUM(f) cr_assert_eq(s->kb.f, k.f, "kb default %s", #f)
    SAME_STR(base_url); SAME_STR(model); SAME_STR(vqa_model); SAME_STR(api_key_env); SAME_STR(system_prompt);
    SAME_STR(llm_prompt); SAME_STR(vqa_prompt); SAME_STR(cache_dir); SAME_STR(shipped_dir);
    SAME_NUM(temperature); SAME_NUM(top_p); SAME_NUM(seed); SAME_NUM(max_tokens); SAME_NUM(llm_n); SAME_NUM(vqa);
    SAME_NUM(vqa_m); SAME_NUM(vqa_max_images_per_class); SAME_NUM(concurrency); SAME_NUM(connect_timeout_s);
    SAME_NUM(low_speed_limit_bps); SAME_NUM(low_speed_time_s); SAME_NUM(timeout_s); SAME_NUM(max_retries);
    SAME_NUM(backoff_initial_s); SAME_NUM(backoff_max_s); SAME_NUM(offline); SAME_NUM(embed_batch);
#undef SAME_STR
#undef SAME_NUM
    kb_settings_free(&k);
    cr_assert_eq(s->train.method, method_find("kanoclip"));
    settings_free(s);
    config_free(cfg);
}
