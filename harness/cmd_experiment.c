// kanoclip experiment CONFIG [key=value ...] [--dry-run] [--force] [--print-config] [--quiet]
#include "harness/commands.h"
#include "harness/cli_args.h"
#include "harness/experiment.h"
#include "harness/experiment_plan.h"
#include "harness/log.h"
#include "harness/method_config.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Provided by other parts of the program when they are linked in; NULL otherwise.
#pragma weak experiment_execute
#pragma weak experiment_check_dataset
#pragma weak experiment_plan

static const char usage_text[] =
    "usage: kanoclip experiment CONFIG.yaml [key=value ...] [--dry-run] [--force] [--print-config] "
    "[--quiet]\n"
    "  --dry-run       check the config, the checkpoint folder and every dataset root; run nothing\n"
    "  --force         rerun a finished run (its folder is cleared, log.txt kept)\n"
    "  --print-config  print the composed config and exit\n"
    "  --quiet         no log lines on stderr (the run folder's log.txt still gets every line)\n";

typedef struct { int problems; } Check;

static void check_line(Check *c, int ok, const char *what, const char *detail) {
    printf("%-4s %s%s%s\n", ok ? "ok" : "FAIL", what, detail && *detail ? ": " : "", detail ? detail : "");
    if (!ok) c->problems++;
}

static void check_checkpoint(Check *c, const Config *cfg) {
    const char *dir = NULL;
    config_get_str(cfg, "model.checkpoint", &dir);
    char what[4200];
    snprintf(what, sizeof what, "model.checkpoint %s", dir && *dir ? dir : "(empty)");
    if (!dir || !*dir) { check_line(c, 0, what, "not set"); return; }
    int random = 0;
    config_get_bool(cfg, "model.random.enabled", &random);
    if (random && !fs_is_dir(dir)) { check_line(c, 1, what, "tiny random CLIP, generated at run time"); return; }
    if (!fs_is_dir(dir)) { check_line(c, 0, what, "no such folder"); return; }
    char detail[512] = "";
    int ok = 1;
    char *cj = fs_join(dir, "config.json");
    if (!fs_exists(cj)) { ok = 0; strcat(detail, "config.json missing; "); }
    free(cj);
    const char *weights[] = {"model.safetensors", "pytorch_model.bin"};
    int have = -1;
    for (int i = 0; i < 2 && have < 0; i++) {
        char *w = fs_join(dir, weights[i]);
        if (fs_exists(w)) have = i;
        free(w);
    }
    if (have < 0) { ok = 0; strcat(detail, "no model.safetensors or pytorch_model.bin"); }
    else strcat(detail, weights[have]);
    check_line(c, ok, what, detail);
    // The tokenizer: Hugging Face's vocab.json + merges.txt, or OpenAI's BPE file. Missing is a warning: the
    // shared copy of the OpenAI file may be used instead.
    static const char *tok[3] = {"vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz"};
    int has[3];
    for (int i = 0; i < 3; i++) {
        char *p = fs_join(dir, tok[i]);
        has[i] = fs_exists(p);
        free(p);
    }
    if ((has[0] && has[1]) || has[2])
        printf("ok   tokenizer: %s\n", has[0] && has[1] ? "vocab.json, merges.txt" : tok[2]);
    else
        printf("warn tokenizer: no vocab.json + merges.txt or %s in %s\n", tok[2], dir);
}

static void check_dataset(Check *c, const Config *cfg, const char *role, const ConfigDataset *d) {
    char what[4200];
    snprintf(what, sizeof what, "%s %s (%s) %s", role, d->name, d->type, d->root);
    int synth = 0;
    const char *synth_out = NULL;
    config_get_bool(cfg, "data.synthetic.enabled", &synth);
    config_get_str(cfg, "data.synthetic.out", &synth_out);
    if (!fs_is_dir(d->root) && synth && synth_out && !strcmp(synth_out, d->root)) {
        check_line(c, 1, what, "synthetic, generated at run time");
        return;
    }
    if (experiment_check_dataset) {
        int ok = experiment_check_dataset(d->type, d->root) == 0;
        check_line(c, ok, what, ok ? "readable" : err_msg());
    } else {
        check_line(c, fs_is_dir(d->root), what, fs_is_dir(d->root) ? "folder exists" : "no such folder");
    }
}

static int dry_run(const Config *cfg) {
    Check c = {0};
    char *dir = run_dir_for(cfg);
    if (!dir) return fail_with_error();
    char *done = fs_join(dir, "DONE");
    printf("config %s (sha256 %s)\n", "composed", config_hash(cfg));
    printf("run folder %s (%s)\n", dir, fs_exists(done) ? "finished; --force reruns" : fs_is_dir(dir) ? "partial; resumes" : "new");
    free(done);
    free(dir);
    DeviceKind dev;
    GemmPrecision prec;
    if (run_device_from(cfg, &dev, &prec) == 0) check_line(&c, 1, "device", device_describe(dev));
    else check_line(&c, 0, "device", err_msg());
    check_checkpoint(&c, cfg);
    ConfigDataset d;
    int uses_train = run_uses_training_data(cfg);
    if (uses_train < 0) check_line(&c, 0, "train.method", err_msg());
    else if (!uses_train) check_line(&c, 1, "data.train", "not read (this method trains nothing here)");
    else if (config_train_dataset(cfg, &d) == 0) check_dataset(&c, cfg, "data.train", &d);
    else check_line(&c, 0, "data.train", err_msg());
    int n = config_list_len(cfg, "eval.datasets");
    for (int i = 0; i < n; i++) {
        if (config_dataset(cfg, "eval.datasets", i, &d) == 0) check_dataset(&c, cfg, "eval.datasets", &d);
        else check_line(&c, 0, "eval.datasets", err_msg());
    }
    if (experiment_plan) experiment_plan(cfg, stdout);
    if (!experiment_execute) check_line(&c, 0, "executor", "this build has no training/evaluation");
    if (c.problems) {
        fprintf(stderr, "kanoclip: dry run found %d problem%s\n", c.problems, c.problems == 1 ? "" : "s");
        return 1;
    }
    printf("dry run: everything is in place\n");
    return 0;
}

static char *join_args(int argc, char **argv) {
    size_t n = 16;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    strcpy(s, "kanoclip");
    for (int i = 0; i < argc; i++) { strcat(s, " "); strcat(s, argv[i]); }
    return s;
}

int experiment_main(int argc, char **argv, ExperimentFn execute) {
    const char *path = NULL;
    int dry = 0, force = 0, print = 0, n_ov = 0;
    char **ov = calloc((size_t)argc + 1, sizeof *ov);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); free(ov); return 0; }
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--print-config")) print = 1;
        else if (!strcmp(a, "--quiet")) log_set_echo(0);
        else if (a[0] == '-') { fprintf(stderr, "kanoclip experiment: unknown option '%s'\n", a); free(ov); return 2; }
        else if (strchr(a, '=')) ov[n_ov++] = argv[i];
        else if (!path) path = a;
        else { fprintf(stderr, "kanoclip experiment: more than one config ('%s', '%s')\n", path, a); free(ov); return 2; }
    }
    if (!path) { free(ov); return cli_usage_error(usage_text); }
    Config *cfg = config_load(path, NULL, n_ov, ov);
    free(ov);
    if (!cfg) return fail_with_error();
    int rc = 0;
    if (print) {
        fputs(config_yaml(cfg), stdout);
    } else if (dry) {
        rc = dry_run(cfg);
    } else {
        char *rdir = run_dir_for(cfg), *done = rdir ? fs_join(rdir, "DONE") : NULL;
        int finished = done && fs_exists(done);
        free(rdir);
        free(done);
        if (!execute && !(finished && !force)) {  // say so before creating anything
            fprintf(stderr, "kanoclip: this build has no training/evaluation (experiment_execute missing)\n");
            config_free(cfg);
            return 1;
        }
        // CUDA asked for where it cannot run (or a bad precision): one line, before the run folder or any data
        DeviceKind dev;
        GemmPrecision prec;
        if (!(finished && !force) && run_device_from(cfg, &dev, &prec) < 0) {
            config_free(cfg);
            return fail_with_error();
        }
        char *cmdline = join_args(argc, argv);
        RunOptions opt = {.force = force, .command_line = cmdline};
        Run *run = run_open(cfg, &opt);
        free(cmdline);
        if (!run) { rc = fail_with_error(); }
        else if (run_state(run) == RUN_DONE) {
            printf("already finished: %s; --force reruns\n", run_dir(run));
        } else if (!execute) {
            fprintf(stderr, "kanoclip: this build has no training/evaluation (experiment_execute missing)\n");
            rc = 1;
        } else {
            long threads = 0;
            if (config_get_int(cfg, "run.threads", &threads) == 0 && threads > 0) omp_set_num_threads((int)threads);
            if (execute(run, cfg) < 0) {
                log_msg("run failed: %s (resumable: rerun the same command)", err_msg());
                rc = fail_with_error();
            } else if (run_finish(run) < 0) {
                rc = fail_with_error();
            } else {
                printf("%s\n", run_dir(run));
            }
        }
        run_close(run);
    }
    config_free(cfg);
    return rc;
}

int cmd_experiment(int argc, char **argv) { return experiment_main(argc, argv, experiment_execute); }
