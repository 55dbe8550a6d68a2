// The six baselines through `kanoclip experiment` and `kanoclip grid` on the demo config at a tiny size
// (synthetic data and a random checkpoint generated into a temporary folder): each method writes the result
// files with its name, its scores in the run are the head's own scores of the images, a grid of KAnoCLIP and the
// six writes one table with a row per method, a trained baseline killed after an epoch resumes to the state of
// an uninterrupted run, MVFA-AD trains its detection adapters alone on image-level data, and the trained baselines
// run on the guard backend as on the cpu one.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <glob.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "datasets/dataset.h"
#include "datasets/image.h"
#include "harness/cli/commands.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/experiment.h"
#include "harness/config/baseline_setup.h"
#include "harness/run/log.h"
#include "model/backend.h"
#include "model/baselines.h"
#include "experiment_test_util.h"
#include "tmpdir.h"

static char tmp[64];

static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-bexp-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    log_set_echo(0);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
}
static void teardown(void) { tmpdir_remove(tmp); }

// The shrunk demo (experiment_test_util.h) as the method `method`, everything under tmp, plus extra overrides.
static int run_method(const char *method, const char *name, int n_extra, const char *const *extra) {
    static char m[64];
    snprintf(m, sizeof m, "train.method=%s", method);
    const char *ov[48];
    int n = 0;
    ov[n++] = m;
    ov[n++] = "eval.overlays=0";
    // the demo's label is KAnoCLIP's; an empty one gives the method's display name
    ov[n++] = "report.label=";
    // AnomalyCLIP's deep prompts within the 2-layer text tower of the tiny checkpoint
    if (!strcmp(method, "anomalyclip")) {
        ov[n++] = "train.baseline.n_ctx=4";
        ov[n++] = "train.baseline.deep_depth=2";
        ov[n++] = "train.baseline.deep_len=2";
    }
    for (int i = 0; i < n_extra && n < 48; i++) ov[n++] = extra[i];
    return experiment_run_demo(tmp, name, n, ov);
}

static char *run_folder(const char *name) { return run_folder_in(tmp, name); }

static int has_file(const char *dir, const char *name) {
    char *p = fs_join(dir, name);
    int e = fs_exists(p);
    free(p);
    return e;
}

TestSuite(experiment_baselines, .init = setup, .fini = teardown, .timeout = 120);

static const char *METHODS[] = {"clip", "clip-ac", "winclip", "april-gan", "anomalyclip", "mvfa-ad"};
static const char *LABELS[] = {"CLIP", "CLIP-AC", "WinCLIP", "April-GAN", "AnomalyCLIP", "MVFA-AD"};

Test(experiment_baselines, every_method_writes_the_result_files_under_its_name) {
    for (int m = 0; m < 6; m++) {
        cr_assert_eq(run_method(METHODS[m], METHODS[m], 0, NULL), 0, "%s: %s", METHODS[m], err_msg());
        char *dir = run_folder(METHODS[m]);
        if (m == 1) {  // CLIP-AC reads CLIP's feature cache: the same vision features, other prompts
            char *log = read_in(dir, "log.txt", NULL);
            cr_assert_null(strstr(log, "images to extract"), "CLIP-AC extracted CLIP's features again:\n%s", log);
            cr_assert_not_null(strstr(log, ": reused ("), "%s", log);
            free(log);
        }
        char *text = read_in(dir, "metrics.json", NULL);
        cJSON *o = cJSON_Parse(text);
        cr_assert_not_null(o, "%s: metrics.json does not parse", METHODS[m]);
        cr_assert_str_eq(cJSON_GetObjectItem(o, "method")->valuestring, METHODS[m]);
        cr_assert_str_eq(cJSON_GetObjectItem(o, "label")->valuestring, LABELS[m]);
        cJSON *syn = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "datasets"), "synthetic");
        cr_assert_not_null(syn, "%s: no synthetic entry", METHODS[m]);
        double ia = cJSON_GetObjectItem(cJSON_GetObjectItem(syn, "image"), "auroc")->valuedouble;
        double pa = cJSON_GetObjectItem(cJSON_GetObjectItem(syn, "pixel"), "auroc")->valuedouble;
        cr_assert(ia >= 0 && ia <= 1 && pa >= 0 && pa <= 1, "%s: image %g pixel %g", METHODS[m], ia, pa);
        // zero-shot: the 2 evaluated classes are the generated classes 3 and 4
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(syn, "classes")), 2, "%s", METHODS[m]);
        int trained = m >= 3;
        double epochs_run = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "train"), "epochs")->valuedouble;
        cr_assert_eq(epochs_run, 2);
        cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "train"), "last_epoch_loss") != NULL, trained,
                     "%s: a training loss only for the trained methods", METHODS[m]);
        cJSON_Delete(o);
        free(text);
        text = read_in(dir, "per_class.csv", NULL);
        cr_assert(!strncmp(text, "dataset,class,image_auroc,image_ap,image_f1_max,pixel_auroc,pixel_aupro,pixel_ap,"
                                 "pixel_f1_max\nsynthetic,granite_stone,", 118), "%s: per_class.csv:\n%s", METHODS[m], text);
        free(text);
        text = read_in(dir, "roc_synthetic.csv", NULL);
        cr_assert(!strncmp(text, "fpr,tpr\n0,0\n", 12), "%s", text);
        free(text);
        cr_assert(has_file(dir, "DONE"), "%s: not finished", METHODS[m]);
        cr_assert_eq(has_file(dir, "state.bin"), trained, "%s: state.bin only for the trained methods", METHODS[m]);
        if (trained) {
            text = read_in(dir, "train_log.csv", NULL);
            int lines = 0;
            for (const char *p = text; *p; p++) lines += *p == '\n';
            // 18 training images, batch 8: 3 steps per epoch, 2 epochs, a row per step
            cr_assert(!strncmp(text, "step,epoch,loss_total\n", 22) && lines == 1 + 6, "%s: train_log.csv:\n%s",
                      METHODS[m], text);
            free(text);
        }
        free(dir);
    }
    // The feature cache holds a file per feature path (not WinCLIP's): training set and eval set for the trained
    // methods, the eval set for CLIP, whose file CLIP-AC shares.
    char pat[256];
    snprintf(pat, sizeof pat, "%s/cache/features/*.h5", tmp);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0);
    cr_assert_eq(g.gl_pathc, 7, "%zu feature caches", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) cr_assert_null(strstr(g.gl_pathv[i], "winclip"), "%s", g.gl_pathv[i]);
    globfree(&g);
}

// The scores and maps in a run's saved maps file equal the head's own, computed here image by image from the
// pixels with baseline_score_batch (no cache, no batching): WinCLIP scores from pixels in the run too (measured:
// scores equal, maps within 9e-8 from batching); CLIP goes through the float16 feature cache (measured: scores
// within 6.3e-5, maps within 6.7e-4).
static void check_scores_against_head(const char *method, float tol) {
    const char *extra[] = {"eval.save_maps=true", "eval.batch_size=4"};
    cr_assert_eq(run_method(method, method, 2, extra), 0, "%s", err_msg());
    char *dir = run_folder(method), *h5 = fs_join(dir, "maps_synthetic.h5"), *cfg_path = fs_join(dir, "config.yaml");
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "%s", h5);
    float *run_scores = malloc(sizeof(float) * 12), *run_maps = malloc(sizeof(float) * 12 * 32 * 32);
    hid_t ds = H5Dopen2(f, "scores", H5P_DEFAULT), dm = H5Dopen2(f, "maps", H5P_DEFAULT);
    hsize_t n = 0;
    hid_t sp = H5Dget_space(ds);
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    cr_assert_eq(n, 12, "2 eval classes x 6 images");
    cr_assert(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, run_scores) >= 0);
    cr_assert(H5Dread(dm, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, run_maps) >= 0);
    H5Dclose(ds);
    H5Dclose(dm);
    H5Fclose(f);

    // The run's own composed config: the same head settings and the same eval samples.
    Config *cfg = config_load(cfg_path, NULL, 0, NULL);
    cr_assert_not_null(cfg, "%s", err_msg());
    Settings *st = settings_load(cfg);
    cr_assert_not_null(st, "%s", err_msg());
    ExecDataset ed = {0};
    cr_assert_eq(exec_dataset_open(st, &st->eval.datasets[0], 0, &ed), 0, "%s", err_msg());
    cr_assert_eq(ed.n, 12);
    char ck[128];
    snprintf(ck, sizeof ck, "%s/ckpt", tmp);
    ClipModel *model = clip_model_load(ck, CLIP_TEXT | CLIP_VISION);
    cr_assert_not_null(model, "%s", err_msg());
    Tokenizer *tok = tokenizer_load_dir(ck);
    cr_assert_not_null(tok, "%s", err_msg());
    BaselineConfig bc;
    cr_assert_eq(baseline_config_from(cfg, model->cfg.vision.layers, &bc), 1, "%s", err_msg());
    Baseline *b = baseline_new(&bc, model, tok);
    cr_assert_not_null(b, "%s", err_msg());
    float *px = malloc(sizeof(float) * 3 * 32 * 32), *map = malloc(sizeof(float) * 32 * 32), score = 0;
    double worst = 0, worst_map = 0;
    static const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};  // MVFA-AD: ToTensor alone
    const float *mean = bc.pixel_norm ? model->cfg.image_mean : zero, *std = bc.pixel_norm ? model->cfg.image_std : one;
    if (bc.method == BL_MVFA) {  // the trained adapters of the run
        char *state = fs_join(dir, "state.bin");
        cr_assert_eq(baseline_load(b, state), 0, "%s", err_msg());
        free(state);
    }
    for (int i = 0; i < ed.n; i++) {
        cr_assert_eq(image_load_preprocessed(ed.s[i]->image_path, 32, IMAGE_RESIZE_SQUARE, mean, std, px), 0, "%s",
                     err_msg());
        const DatasetClass *c = ed.classes[ed.cls[i]];
        cr_assert_eq(baseline_score_batch(b, baseline_class_arg(&bc, c->name, c->prompt_name), px, 1, &score, map), 0,
                     "%s", err_msg());
        worst = fmax(worst, fabs(score - run_scores[i]));
        for (int q = 0; q < 32 * 32; q++) {
            float v = map[q] < 0 ? 0 : map[q] > 1 ? 1 : map[q];  // the eval loop clamps maps to [0, 1]
            worst_map = fmax(worst_map, fabs(v - run_maps[(size_t)i * 32 * 32 + q]));
        }
    }
    cr_assert(worst <= tol && worst_map <= tol, "%s: scores differ by %g, maps by %g (tolerance %g)", method, worst,
              worst_map, tol);
    baseline_free(b);
    free(px);
    free(map);
    exec_dataset_free(&ed);
    settings_free(st);
    config_free(cfg);
    tokenizer_free(tok);
    clip_model_free(model);
    free(run_scores);
    free(run_maps);
    free(h5);
    free(cfg_path);
    free(dir);
}

Test(experiment_baselines, winclip_run_scores_are_the_heads_scores) { check_scores_against_head("winclip", 1e-6f); }
Test(experiment_baselines, clip_run_scores_are_the_heads_scores_through_the_cache) {
    check_scores_against_head("clip", 2e-3f);
}
// MVFA-AD from the cached (float16) stream after its first layer, the rest of the tower in the head, with the
// run's trained adapters and without the CLIP normalisation (measured: scores within 2.4e-5, maps within 3.1e-4).
Test(experiment_baselines, mvfa_run_scores_are_the_heads_scores_through_the_cache) {
    check_scores_against_head("mvfa-ad", 2e-3f);
}

Test(experiment_baselines, grid_of_kanoclip_and_the_six_writes_one_table) {
    char abs_demo[PATH_MAX], dir_bl[PATH_MAX];
    cr_assert_not_null(realpath("experiments/demo.yaml", abs_demo));
    cr_assert_not_null(realpath("experiments/baselines", dir_bl));
    char bin[PATH_MAX];
    cr_assert_not_null(realpath("build/kanoclip", bin), "build/kanoclip is built by make test");
    setenv("KANOCLIP_BIN", bin, 1);
    // The demo grid's configs, with the tiny sizes and tmp paths as the grid's common overrides.
    char text[8192], *p = text;
    p += sprintf(p, "name: seven\nout: %s/results\nconfigs:\n  - %s\n", tmp, abs_demo);
    const char *cfgs[] = {"demo-clip", "demo-clip-ac", "demo-winclip", "demo-april-gan", "demo-anomalyclip",
                          "demo-mvfa-ad"};
    for (int i = 0; i < 6; i++) p += sprintf(p, "  - %s/%s.yaml\n", dir_bl, cfgs[i]);
    p += sprintf(p, "common:\n");
    for (size_t i = 0; i < N_DEMO_PATHS; i++) {
        p += sprintf(p, "  - '");
        p += sprintf(p, DEMO_PATH_FMT[i], tmp);
        p += sprintf(p, "'\n");
    }
    for (size_t i = 0; i < N_DEMO_TINY; i++) p += sprintf(p, "  - '%s'\n", DEMO_TINY[i]);
    p += sprintf(p, "  - 'eval.overlays=0'\n");
    char grid_path[256];
    snprintf(grid_path, sizeof grid_path, "%s/seven.yaml", tmp);
    cr_assert_eq(fs_write_atomic(grid_path, text, strlen(text)), 0, "%s", err_msg());

    char out[256];
    snprintf(out, sizeof out, "%s/out.txt", tmp);
    // The cells' logs (children writing to the inherited stderr) go to the same file.
    fflush(stdout);
    fflush(stderr);
    int out_fd = dup(1), err_fd = dup(2);
    FILE *o = fopen(out, "w");
    dup2(fileno(o), 1);
    dup2(fileno(o), 2);
    char *argv[] = {"grid", grid_path, "--run"};
    int rc = cmd_grid(3, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    close(out_fd);
    close(err_fd);
    fclose(o);
    char *log = fs_read_file(out, NULL);
    cr_assert_eq(rc, 0, "%s\n%s", err_msg(), log);
    cr_assert(strstr(log, "grid seven: 7 cells, 7 done, 7 ran now, 0 failed"), "%s", log);
    free(log);
    // One table, a row per method (Table 4: dataset / method), each method once.
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/results/grid-seven/tables/table4_metrics.md", tmp);
    char *table = fs_read_file(tpath, NULL);
    cr_assert_not_null(table, "%s: %s", tpath, err_msg());
    const char *rows[] = {"| synthetic / KAnoCLIP (demo) |", "| synthetic / CLIP |", "| synthetic / CLIP-AC |",
                          "| synthetic / WinCLIP |", "| synthetic / April-GAN |", "| synthetic / AnomalyCLIP |",
                          "| synthetic / MVFA-AD |"};
    for (int i = 0; i < 7; i++) {
        const char *at = strstr(table, rows[i]);
        cr_assert_not_null(at, "no row %s in:\n%s", rows[i], table);
        cr_assert_null(strstr(at + 1, rows[i]), "row %s twice in:\n%s", rows[i], table);
    }
    int n_rows = 0;
    for (const char *q = strstr(table, "| synthetic / "); q; q = strstr(q + 1, "| synthetic / ")) n_rows++;
    cr_assert_eq(n_rows, 7, "%s", table);
    free(table);
}

// extra: one more override for every run (NULL: none).
static void check_resume_with(const char *method, const char *extra) {
    char whole[64], parts[64];
    snprintf(whole, sizeof whole, "%s-whole", method);
    snprintf(parts, sizeof parts, "%s-parts", method);
    const char *ep[] = {"train.epochs=3", extra};
    int n_ep = extra ? 2 : 1;
    cr_assert_eq(run_method(method, whole, n_ep, ep), 0, "%s", err_msg());
    setenv("KANOCLIP_STOP_AFTER_EPOCHS", "1", 1);
    cr_assert_neq(run_method(method, parts, n_ep, ep), 0, "%s: the stop hook did not stop the run", method);
    cr_assert_neq(run_method(method, parts, n_ep, ep), 0, "%s: the stop hook did not stop the second attempt", method);
    unsetenv("KANOCLIP_STOP_AFTER_EPOCHS");
    char *dp = run_folder(parts);
    cr_assert(!has_file(dp, "DONE"), "a stopped run is marked finished");
    cr_assert_eq(run_method(method, parts, n_ep, ep), 0, "%s", err_msg());
    char *dw = run_folder(whole);
    size_t nw, np;
    char *sw = read_in(dw, "state.bin", &nw), *sp = read_in(dp, "state.bin", &np);
    cr_assert_eq(nw, np);
    cr_assert(memcmp(sw, sp, nw) == 0, "%s: parameters, Adam moments or step differ after resuming", method);
    char *cw = read_in(dw, "per_class.csv", NULL), *cp = read_in(dp, "per_class.csv", NULL);
    cr_assert_str_eq(cw, cp);
    char *tw = read_in(dw, "train_log.csv", NULL), *tp = read_in(dp, "train_log.csv", NULL);
    cr_assert_str_eq(tw, tp, "train_log.csv differs:\n%s\nvs\n%s", tw, tp);
    char *log = read_in(dp, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "resuming from"), "%s", log);
    cr_assert_not_null(strstr(log, "after epoch 2 of 3"), "%s", log);
    free(sw); free(sp); free(cw); free(cp); free(tw); free(tp); free(log); free(dw); free(dp);
}

// The training-free baselines read no training set: one that is not on disk does not stop them; a method that
// trains is stopped by it, naming data.train.
Test(experiment_baselines, training_free_methods_need_no_training_set) {
    const char *gone[] = {"data.train.root=/nonexistent/train-set"};
    cr_assert_eq(run_method("clip", "notrain", 1, gone), 0, "%s", err_msg());
    char *d = run_folder("notrain"), *log = read_in(d, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "no training set (train.method clip trains nothing here)"), "%s", log);
    cr_assert_neq(run_method("april-gan", "needstrain", 1, gone), 0, "April-GAN ran without its training set");
    cr_assert_not_null(strstr(err_msg(), "data.train"), "%s", err_msg());
    free(d); free(log);
}

static void check_resume(const char *method) { check_resume_with(method, NULL); }

Test(experiment_baselines, killed_april_gan_run_resumes_to_the_uninterrupted_state) { check_resume("april-gan"); }

// Mosaics are drawn from (seed, epoch, step): a resumed run draws the same ones.
Test(experiment_baselines, april_gan_mosaic_training_resumes_to_the_uninterrupted_state) {
    check_resume_with("april-gan", "train.baseline.aug_rate=0.5");
    char *d = run_folder("april-gan-whole"), *log = read_in(d, "log.txt", NULL);
    cr_assert_not_null(strstr(log, "mosaic augmentation of 50% of the samples"), "%s", log);
    free(d); free(log);
}

// All samples as mosaics train other parameters than none; a method without mosaics refuses the switch.
Test(experiment_baselines, april_gan_mosaics_change_training_and_only_april_gan_takes_them) {
    const char *plain[] = {"train.epochs=1"}, *mosaic[] = {"train.epochs=1", "train.baseline.aug_rate=1"};
    cr_assert_eq(run_method("april-gan", "plain", 1, plain), 0, "%s", err_msg());
    cr_assert_eq(run_method("april-gan", "mosaic", 2, mosaic), 0, "%s", err_msg());
    char *dp = run_folder("plain"), *dm = run_folder("mosaic");
    size_t np, nm;
    char *sp = read_in(dp, "state.bin", &np), *sm = read_in(dm, "state.bin", &nm);
    cr_assert(np == nm && memcmp(sp, sm, np) != 0, "mosaics did not change the trained parameters");
    const char *bad[] = {"train.epochs=1", "train.baseline.aug_rate=0.2"};
    cr_assert_neq(run_method("anomalyclip", "badmosaic", 2, bad), 0);
    cr_assert_not_null(strstr(err_msg(), "train.baseline.aug_rate: only April-GAN"), "%s", err_msg());
    free(dp); free(dm); free(sp); free(sm);
}
Test(experiment_baselines, killed_anomalyclip_run_resumes_to_the_uninterrupted_state) { check_resume("anomalyclip"); }
Test(experiment_baselines, killed_mvfa_run_resumes_to_the_uninterrupted_state) {
    check_resume_with("mvfa-ad", "train.batch_size=4");
}

// state.bin's header (model/baseline_state.c, version 2): the steps of the detection and the segmentation adapters.
static void mvfa_steps(const char *name, long *det, long *seg, int *seg_moments_zero) {
    char *d = run_folder(name);
    size_t n;
    char *raw = read_in(d, "state.bin", &n);
    uint32_t version;
    uint64_t count;
    int64_t s1, s2;
    memcpy(&version, raw + 16, 4);
    memcpy(&count, raw + 24, 8);
    memcpy(&s1, raw + 32, 8);
    memcpy(&s2, raw + 40, 8);
    cr_assert_eq(version, 2u);
    cr_assert_eq(n, 48 + 3 * count * sizeof(float));
    const float *m1 = (const float *)(raw + 48 + count * sizeof(float));  // first moments: seg half, det half
    int zero = 1;
    for (uint64_t i = 0; i < count / 2; i++) zero &= m1[i] == 0.0f;
    *det = (long)s1, *seg = (long)s2, *seg_moments_zero = zero;
    free(raw);
    free(d);
}

// On image-level data (Br35H: no masks) MVFA-AD steps its detection adapters alone, as train_zero.py does for
// its sets without masks; on data with masks both optimisers step every batch.
Test(experiment_baselines, mvfa_trains_detection_alone_without_pixel_ground_truth) {
    const char *one[] = {"train.epochs=1", "train.batch_size=4"};
    cr_assert_eq(run_method("mvfa-ad", "masks", 2, one), 0, "%s", err_msg());
    long det, seg;
    int zero;
    mvfa_steps("masks", &det, &seg, &zero);
    cr_assert(det == 5 && seg == 5 && !zero, "with masks: %ld det steps, %ld seg steps", det, seg);  // 18 images
    // a Br35H folder of the synthetic training classes' images: good -> no/, defects -> yes/
    char pat[256], dst[512];
    snprintf(pat, sizeof pat, "%s/data/*/test/*/*.png", tmp);
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0);
    int n_yes = 0, n_no = 0;
    for (size_t i = 0; i < g.gl_pathc && n_yes + n_no < 12; i++) {
        int good = strstr(g.gl_pathv[i], "/test/good/") != NULL;
        snprintf(dst, sizeof dst, "%s/br35h/%s", tmp, good ? "no" : "yes");
        cr_assert_eq(fs_mkdirs(dst), 0, "%s", err_msg());
        snprintf(dst + strlen(dst), sizeof dst - strlen(dst), "/%zu.png", i);
        size_t len;
        char *img = fs_read_file(g.gl_pathv[i], &len);
        cr_assert_eq(fs_write_atomic(dst, img, len), 0, "%s", err_msg());
        free(img);
        good ? n_no++ : n_yes++;
    }
    globfree(&g);
    cr_assert(n_yes > 0 && n_no > 0);
    char train[512];
    snprintf(train, sizeof train, "data.train={name: br35h, type: br35h, root: %s/br35h}", tmp);
    const char *nomask[] = {"train.epochs=1", "train.batch_size=4", train};
    cr_assert_eq(run_method("mvfa-ad", "nomasks", 3, nomask), 0, "%s", err_msg());
    mvfa_steps("nomasks", &det, &seg, &zero);
    cr_assert(det == 3 && seg == 0 && zero, "without masks: %ld det steps, %ld seg steps, seg moments %s", det, seg,
              zero ? "zero" : "not zero");
}

// The trained baselines' whole runs with KANOCLIP_BACKEND=guard (every buffer of the heads in memory the host
// cannot touch outside an op, model/backend.h): training, scoring and the metrics give the cpu run's bytes.
Test(experiment_baselines, trained_heads_on_the_guard_backend_give_the_cpu_run) {
    const char *methods[] = {"april-gan", "anomalyclip"};
    for (int m = 0; m < 2; m++) {
        char cpu[64], guard[64];
        snprintf(cpu, sizeof cpu, "cpu-%s", methods[m]);
        snprintf(guard, sizeof guard, "guard-%s", methods[m]);
        cr_assert_eq(run_method(methods[m], cpu, 0, NULL), 0, "%s: %s", cpu, err_msg());
        long before = backend_guard_calls();
        setenv("KANOCLIP_BACKEND", "guard", 1);
        int rc = run_method(methods[m], guard, 0, NULL);
        unsetenv("KANOCLIP_BACKEND");
        cr_assert_eq(rc, 0, "%s: %s", guard, err_msg());
        cr_assert(backend_guard_calls() > before + 500, "%s: the guard backend was not used", guard);
        char *dc = run_folder(cpu), *dg = run_folder(guard);
        char *log = read_in(dg, "log.txt", NULL);
        cr_assert_not_null(strstr(log, "the head on the guard backend"), "%s", log);
        const char *files[] = {"metrics.json", "per_class.csv", "train_log.csv", "state.bin"};
        for (int k = 0; k < 4; k++) {
            size_t nc, ng;
            char *tc = read_in(dc, files[k], &nc), *tg = read_in(dg, files[k], &ng);
            cr_assert(nc == ng && memcmp(tc, tg, nc) == 0, "%s: %s differs on guard", methods[m], files[k]);
            free(tc); free(tg);
        }
        free(log); free(dc); free(dg);
    }
}
