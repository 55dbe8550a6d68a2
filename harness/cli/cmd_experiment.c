// kanoclip experiment CONFIG [key=value ...] [--dry-run] [--force] [--print-config] [--quiet]
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/run/demo_assets.h"
#include "harness/run/experiment.h"
#include "harness/run/experiment_plan.h"
#include "harness/run/log.h"
#include "harness/config/settings.h"
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

// The checkpoint folder's files (settings_check_inputs has already read its config.json and weights).
static void report_checkpoint(Check *c, const Settings *s) {
    const char *dir = s->model.checkpoint;
    char what[4200];
    snprintf(what, sizeof what, "model.checkpoint %s", dir);
    if (settings_checkpoint_generated(s)) { check_line(c, 1, what, "tiny random CLIP, generated at run time"); return; }
    char *st = fs_join(dir, "model.safetensors");
    check_line(c, 1, what, fs_exists(st) ? "config.json, model.safetensors" : "config.json, pytorch_model.bin");
    free(st);
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

static void check_dataset(Check *c, const Settings *s, const DatasetSettings *d) {
    char what[4200];
    snprintf(what, sizeof what, "%s %s (%s) %s", d->key, d->name, d->type, d->root);
    const SyntheticSettings *y = &s->data.synthetic;
    if (!fs_is_dir(d->root) && y->enabled && !strcmp(y->out, d->root)) {
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

// The settings are valid (settings_load); what remains to check is what the run reads. A bad setting or input
// stops with the same one line as the run; missing datasets are listed, each on its line.
static int dry_run(Settings *s) {
    Check c = {0};
    char *dir = run_dir_for(s->cfg);
    if (!dir) return fail_with_error();
    char *done = fs_join(dir, "DONE");
    printf("config %s (sha256 %s)\n", "composed", config_hash(s->cfg));
    printf("run folder %s (%s)\n", dir, fs_exists(done) ? "finished; --force reruns" : fs_is_dir(dir) ? "partial; resumes" : "new");
    free(done);
    free(dir);
    if (settings_check_inputs(s) < 0) return fail_with_error();
    check_line(&c, 1, "settings", "every key valid");
    check_line(&c, 1, "device", device_describe(s->run.device));
    check_line(&c, 1, "run.out_dir", s->run.out_dir);
    if (s->cache.shards > 1) {
        char detail[256];
        snprintf(detail, sizeof detail, "%d: the run merges the shard files of `kanoclip features CONFIG --shard I/%d` "
                 "when there are some, else extracts in one process", s->cache.shards, s->cache.shards);
        check_line(&c, 1, "cache.shards", detail);
    }
    report_checkpoint(&c, s);
    if (!settings_uses_train(s)) check_line(&c, 1, "data.train", "not read (this method trains nothing here)");
    else check_dataset(&c, s, &s->data.train);
    for (int i = 0; i < s->eval.n_datasets; i++) check_dataset(&c, s, &s->eval.datasets[i]);
    if (experiment_plan) experiment_plan(s, stdout);
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
    if (print) {
        fputs(config_yaml(cfg), stdout);
        config_free(cfg);
        return 0;
    }
    // Every key checked before anything is created, written or computed.
    Settings *s = settings_load(cfg);
    int rc = 0;
    if (!s) {
        rc = fail_with_error();
    } else if (dry) {
        rc = dry_run(s);
    } else {
        char *rdir = run_dir_for(cfg), *done = rdir ? fs_join(rdir, "DONE") : NULL;
        int finished = done && fs_exists(done);
        free(rdir);
        free(done);
        if (!(finished && !force)) {
            // The inputs too (out_dir, checkpoint, sizes), before the run folder exists.
            if (!execute) rc = err_set("this build has no training/evaluation (experiment_execute missing)");
            else rc = settings_check_inputs(s);
            // Generated inputs (the demo's data and tiny CLIP) exist before the run's identity is taken from them.
            if (rc == 0) rc = demo_assets_prepare(s);
        }
        if (rc < 0) {
            rc = fail_with_error();
        } else {
            char *cmdline = join_args(argc, argv);
            RunOptions opt = {.force = force, .command_line = cmdline, .settings = s};
            Run *run = run_open(cfg, &opt);
            free(cmdline);
            if (!run) {
                rc = fail_with_error();
            } else if (run_state(run) == RUN_DONE) {
                printf("already finished: %s; --force reruns\n", run_dir(run));
            } else {
                if (s->run.threads > 0) omp_set_num_threads(s->run.threads);
                if (execute(run, s) < 0) {
                    // Only where a rerun can help (an interruption, a write that failed): a bad image or a
                    // missing file fails the same way again until it is fixed.
                    log_msg("run failed: %s%s", err_msg(), err_retryable() ? " (resumable: rerun the same command)" : "");
                    rc = fail_with_error();
                } else if (run_finish(run) < 0) {
                    rc = fail_with_error();
                } else {
                    printf("%s\n", run_dir(run));
                }
            }
            run_close(run);
        }
    }
    settings_free(s);
    config_free(cfg);
    return rc;
}

int cmd_experiment(int argc, char **argv) { return experiment_main(argc, argv, experiment_execute); }
