// The user-error rule, end to end through build/kanoclip: bad input gets exactly one line on stderr naming
// the file, key, option or field (`kanoclip: ...` for failures, `kanoclip CMD: ...` or `usage: ...` for usage
// errors), a non-zero exit (1 for failures, 2 for usage errors), and no output file half-written.
// Each case runs the binary in a fresh process (tests/run_cli.h: fork + exec, no shell) in a scratch folder.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/report/plots.h"
#include "model/device.h"
#include "tests/report_fixtures.h"
#include "tests/run_cli.h"
#include "tests/tmpdir.h"

static char exe[PATH_MAX];      // build/kanoclip, absolute: the commands run in the scratch folder
static char scratch[64];         // the scratch folder (cwd of every run)
static char clip_fixture[PATH_MAX]; // a tiny random CLIP checkpoint from tests/ref_clip.py, absolute
static char clip_image[PATH_MAX];   // one of its test images

// Writes scratch/rel (its folders made).
static void put(const char *rel, const char *text) {
    char *path = fs_join(scratch, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    cr_assert_eq(fs_mkdirs(path), 0, "%s", err_msg());
    *slash = '/';
    cr_assert_eq(fs_write_atomic(path, text, strlen(text)), 0, "%s", err_msg());
    free(path);
}

static int exists(const char *rel) {
    char *p = fs_join(scratch, rel);
    int e = fs_exists(p);
    free(p);
    return e;
}

static void setup(void) {
    cr_assert_not_null(realpath("build/kanoclip", exe), "build/kanoclip missing (make)");
    if (!realpath("build/fixtures/clip/a/f32", clip_fixture) || !realpath("build/fixtures/clip/a/images/img_0.png", clip_image))
        clip_fixture[0] = '\0';
    strcpy(scratch, "/tmp/kanoclip-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(scratch));
    put("good.csv", "label,score\n0,0.1\n1,0.9\n0,0.3\n1,0.7\n");
    put("badnum.csv", "label,score\n0,0.1\n1,abc\n");
    put("badhdr.csv", "lbl,score\n0,0.1\n");
    put("extra.csv", "label,score\n0,0.1,3\n");
    put("badlabel.csv", "label,score\n2,0.1\n");
    put("adir/keep", "");
    put("ok.yaml", "run:\n  name: x\n");
    put("badkey.yaml", "run:\n  name: x\n  bogus: 1\n");
    put("badtype.yaml", "run:\n  name: x\ntrain:\n  epochs: abc\n");
    put("malformed.yaml", "run: [\n  name: x\n");
    put("paper_num.csv", "table,dataset,method,image_auroc,image_ap,pixel_auroc,pixel_aupro,source\n"
                         "industrial,mvtec,CLIP,abc,87.6,38.4,11.3,x\n");
    put("badrun/metrics.json", "{\"method\": \"x\", \"datasets\": ");
    put("badrun/DONE", "finished, but its metrics.json is cut short");
    put("grid_key.yaml", "name: g\nconfigs: [ok.yaml]\nbogus: 1\n");
    put("grid_seed.yaml", "name: g\nconfigs: [ok.yaml]\nseeds: [abc]\nout: gout\n");
    put("grid_ok.yaml", "name: g\nconfigs: [ok.yaml]\nout: gout\n");
    put("grid_none.yaml", "name: g\nconfigs: []\n");
    put("meta/meta.json", "{\"test\": ");
    const char *ds[] = {"visa"};
    char *run = fs_join(scratch, "run1");
    fixture_run(run, "kanoclip", NULL, "main", 0, 1, 1, ds, 0.9, 0.95, 1, 0);
    free(run);
}

static void teardown(void) { tmpdir_remove(scratch); }

TestSuite(cli_errors, .init = setup, .fini = teardown);

typedef struct {
    int status; // exit status; 128 + signal when killed
    char *err;  // all of stderr
} Run;

// Runs `kanoclip args...` (NULL-terminated, args[0] = exe) in the scratch folder, stdout discarded, stderr
// captured.
static Run run_argv(char *const *args) {
    char errpath[PATH_MAX];
    snprintf(errpath, sizeof errpath, "%s/.stderr", scratch);
    int st = run_cli(args, scratch, "/dev/null", errpath);
    Run r = {st, fs_read_file(errpath, NULL)};
    cr_assert_not_null(r.err, "%s", err_msg());
    unlink(errpath);
    return r;
}

// expect(status, needle, "cmd", "arg", ..., NULL): the run exits with `status`, stderr is one line, starts as
// the status says (1: "kanoclip: "; 2: "kanoclip CMD" or "usage: kanoclip CMD") and contains `needle`.
static void expect(int status, const char *needle, ...) {
    char *args[64];
    int n = 0;
    args[n++] = exe;
    va_list ap;
    va_start(ap, needle);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        cr_assert(n < 63);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    char line[1024] = "";
    for (int i = 1; i < n; i++) snprintf(line + strlen(line), sizeof line - strlen(line), " %s", args[i]);
    Run r = run_argv(args);
    cr_expect_eq(r.status, status, "kanoclip%s: exit %d, expected %d (stderr: %s)", line, r.status, status, r.err);
    size_t len = strlen(r.err);
    char *nl = strchr(r.err, '\n');
    cr_expect(len > 0 && nl == r.err + len - 1, "kanoclip%s: stderr is not one line: '%s'", line, r.err);
    if (status == 1) {
        cr_expect(!strncmp(r.err, "kanoclip: ", 10), "kanoclip%s: stderr lacks 'kanoclip: ': '%s'", line, r.err);
    } else {
        char cmd[128], usage[140];
        snprintf(cmd, sizeof cmd, "kanoclip %s", args[1]);
        snprintf(usage, sizeof usage, "usage: %s", cmd);
        cr_expect(!strncmp(r.err, cmd, strlen(cmd)) || !strncmp(r.err, usage, strlen(usage)),
                  "kanoclip%s: not a usage line of %s: '%s'", line, cmd, r.err);
    }
    cr_expect_not_null(strstr(r.err, needle), "kanoclip%s: stderr does not name '%s': '%s'", line, needle, r.err);
    free(r.err);
}

#define E(status, needle, ...) expect(status, needle, __VA_ARGS__, (char *)NULL)

// ---- metrics -----------------------------------------------------------------------------------------------

Test(cli_errors, metrics_usage) {
    E(2, "--scores", "metrics");
    E(2, "--scores", "metrics", "--scores");
    E(2, "'--bogus'", "metrics", "--scores", "good.csv", "--bogus");
    E(2, "--bootstrap", "metrics", "--scores", "good.csv", "--bootstrap", "x");
    E(2, "--bins", "metrics", "--maps", "m.h5", "--bins", "0");
    E(2, "--masks", "metrics", "--scores", "good.csv", "--masks", "m.h5");
}

Test(cli_errors, metrics_files) {
    E(1, "nope.csv: No such file", "metrics", "--scores", "nope.csv");
    E(1, "adir: cannot read: is a folder", "metrics", "--scores", "adir");
    E(1, "badnum.csv:3: field 'score'", "metrics", "--scores", "badnum.csv", "--out", "m.json");
    cr_expect(!exists("m.json"), "metrics wrote m.json after an error");
    E(1, "badhdr.csv:1: expected the header", "metrics", "--scores", "badhdr.csv");
    E(1, "extra.csv:2: expected 2 fields", "metrics", "--scores", "extra.csv");
    E(1, "badlabel.csv:2: field 'label'", "metrics", "--scores", "badlabel.csv");
    E(1, "nodir/m.json", "metrics", "--scores", "good.csv", "--out", "nodir/m.json");
    cr_expect(!exists("nodir"));
    E(1, "nope.h5: No such file", "metrics", "--maps", "nope.h5");
    E(1, "good.csv: cannot open as HDF5", "metrics", "--maps", "good.csv");
}

// maps [n,4,4] float32, and masks [n,4,mask_w] uint8 and labels [n_labels] when asked for.
static void put_maps(const char *rel, int n, int mask_w, int n_labels) {
    char *path = fs_join(scratch, rel);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    float maps[2 * 16] = {0};
    unsigned char masks[2 * 4 * 8] = {0};
    int labels[3] = {0, 1, 0};
    for (int i = 0; i < 2 * 16; i++) maps[i] = (float)((i * 37) % 11) / 11.0f;
    hsize_t dm[3] = {(hsize_t)n, 4, 4}, dk[3] = {(hsize_t)n, 4, (hsize_t)mask_w}, dl[1] = {(hsize_t)n_labels};
    cr_assert(H5LTmake_dataset_float(f, "maps", 3, dm, maps) >= 0);
    if (mask_w) cr_assert(H5LTmake_dataset(f, "masks", 3, dk, H5T_NATIVE_UCHAR, masks) >= 0);
    if (n_labels) cr_assert(H5LTmake_dataset_int(f, "labels", 1, dl, labels) >= 0);
    H5Fclose(f);
    free(path);
}

Test(cli_errors, metrics_maps) {
    put_maps("no_masks.h5", 2, 0, 0);
    put_maps("mask_shape.h5", 2, 5, 0);
    put_maps("labels.h5", 2, 4, 3);
    E(1, "no_masks.h5: no dataset 'masks'", "metrics", "--maps", "no_masks.h5");
    E(1, "mask_shape.h5: maps[0]: anomaly map is 4x4 but its mask", "metrics", "--maps", "mask_shape.h5");
    E(1, "labels.h5: labels has 3 items, maps 2", "metrics", "--maps", "labels.h5", "--out", "m.json");
    cr_expect(!exists("m.json"));
    E(1, "good.csv: cannot open as HDF5", "metrics", "--maps", "no_masks.h5", "--masks", "good.csv");
}

// ---- tokenize, embed ---------------------------------------------------------------------------------------

Test(cli_errors, tokenize) {
    E(2, "--model is required", "tokenize", "hi");
    E(2, "--model", "tokenize", "--model");
    E(2, "--context", "tokenize", "--model", "x", "--context", "abc", "hi");
    E(2, "--bogus", "tokenize", "--model", "x", "--bogus", "hi");
    E(2, "--context: expected 0 or an integer >= 2, got 1", "tokenize", "--model", "x", "--context", "1", "hi");
    E(1, "nope", "tokenize", "--model", "nope", "hi");
    E(1, "adir: no tokenizer files", "tokenize", "--model", "adir", "hi");
}

Test(cli_errors, convert_openclip) {
    E(2, "--in and --out are required", "convert-openclip", "--in", "x.pt");
    E(2, "--out", "convert-openclip", "--in", "x.pt", "--out");
    E(2, "--bogus", "convert-openclip", "--bogus", "1");
    E(2, "--act: expected gelu or quick_gelu, got relu", "convert-openclip", "--in", "x", "--out", "o", "--act", "relu");
    E(2, "--text-heads", "convert-openclip", "--in", "x", "--out", "o", "--text-heads", "zero");
    E(1, "--vocab", "convert-openclip", "--in", "good.csv", "--out", "o");
    E(1, "good.csv", "convert-openclip", "--in", "good.csv", "--out", "o", "--vocab", "adir");
    char *o = fs_join(scratch, "o");
    cr_expect(!fs_exists(o), "a failed conversion created its output folder");
    free(o);
}

Test(cli_errors, embed) {
    E(2, "--model is required", "embed", "--out", "e.h5", "--text", "hi");
    E(2, "--batch", "embed", "--model", "x", "--out", "e.h5", "--batch", "0", "--text", "hi");
    E(2, "--layers", "embed", "--model", "x", "--out", "e.h5", "--layers", "a,b", "--text", "hi");
    E(2, "--pos-resize", "embed", "--model", "x", "--out", "e.h5", "--pos-resize", "foo", "--text", "hi");
    E(2, "--out", "embed", "--model", "x", "--out");
    E(2, "--device: expected cpu or cuda, got gpu", "embed", "--model", "x", "--out", "e.h5", "--device", "gpu", "--text", "hi");
    E(2, "--precision: expected fp32, tf32 or bf16, got fp16", "embed", "--model", "x", "--out", "e.h5", "--precision",
      "fp16", "--text", "hi");
    // CUDA asked for where it cannot run: one line, exit 1, before the model is read. build/kanoclip is the
    // default build whatever BUILD this suite came from, so its answer is known only when this suite has CUDA
    // too (a NO_CUDA suite checks the "built without CUDA" message in-process: test_device).
    if (device_cuda_built() && !device_available())
        E(1, "kanoclip: CUDA was asked for, but no CUDA device found (", "embed", "--model", "nope", "--out", "e.h5",
          "--device", "cuda", "--text", "hi");
    E(1, "nope/config.json", "embed", "--model", "nope", "--out", "e.h5", "--text", "hi");
    cr_expect(!exists("e.h5"));
    cr_assert(clip_fixture[0], "build/fixtures/clip missing (make fixtures)");
    // a real checkpoint: an output folder that does not exist, a file that is not an image
    E(1, "nodir/e.h5", "embed", "--model", clip_fixture, "--out", "nodir/e.h5", "--image", clip_image);
    cr_expect(!exists("nodir"));
    E(1, "good.csv: not a PNG, JPEG or BMP image", "embed", "--model", clip_fixture, "--out", "e.h5", "--image", "good.csv");
    cr_expect(!exists("e.h5"), "embed left e.h5 after an error");
}

// ---- datasets ----------------------------------------------------------------------------------------------

Test(cli_errors, dataset_info) {
    E(2, "usage: kanoclip dataset-info", "dataset-info");
    E(2, "'foo'", "dataset-info", "--type", "foo", "--root", ".");
    E(2, "'val'", "dataset-info", "--type", "mvtec", "--root", ".", "--split", "val");
    E(2, "unknown option --bogus", "dataset-info", "--type", "mvtec", "--root", ".", "--bogus");
    E(2, "--root needs a value", "dataset-info", "--type", "mvtec", "--root");
    E(1, "nope: dataset root not found", "dataset-info", "--type", "mvtec", "--root", "nope");
    E(1, "good.csv: not a folder", "dataset-info", "--type", "mvtec", "--root", "good.csv");
    E(1, "adir: no class folders", "dataset-info", "--type", "mvtec", "--root", "adir");
    E(1, "meta/meta.json", "dataset-info", "--type", "meta", "--root", "meta");
}

Test(cli_errors, synth) {
    E(2, "usage: kanoclip synth", "synth");
    E(2, "--out needs a value", "synth", "--out");
    E(2, "--classes", "synth", "--out", "s", "--classes", "0");
    E(2, "'foo'", "synth", "--out", "s", "--layout", "foo");
    E(2, "unknown option --bogus", "synth", "--out", "s", "--bogus");
    E(2, "--seed", "synth", "--out", "s", "--seed", "-1");
    E(2, "--size must be an integer in 16..8192, not '15'", "synth", "--out", "s", "--size", "15");
    cr_expect(!exists("s"), "synth made its folder after a usage error");
    E(1, "good.csv/x", "synth", "--out", "good.csv/x", "--classes", "1", "--size", "32");
    // a dataset written, then its meta.json asked for in a folder that does not exist
    char *args[] = {exe, "synth", "--out", "ds", "--classes", "1", "--size", "32", "--per-class-normal", "1",
                    "--per-class-anomalous", "1", "--train-normal", "1", NULL};
    Run r = run_argv(args);
    cr_assert_eq(r.status, 0, "synth: %s", r.err);
    free(r.err);
    E(1, "nodir/meta.json", "dataset-info", "--type", "mvtec", "--root", "ds", "--write-meta", "nodir/meta.json");
    cr_expect(!exists("nodir"));
}

// ---- experiment, kb ----------------------------------------------------------------------------------------

Test(cli_errors, experiment) {
    E(2, "usage: kanoclip experiment", "experiment");
    E(2, "'--bogus'", "experiment", "ok.yaml", "--bogus");
    E(1, "nope.yaml: No such file", "experiment", "nope.yaml", "--dry-run");
    E(1, "adir: cannot read: is a folder", "experiment", "adir", "--dry-run");
    E(1, "badkey.yaml:3:3: unknown key 'run.bogus'", "experiment", "badkey.yaml", "--dry-run");
    E(1, "badtype.yaml:4:11: train.epochs", "experiment", "badtype.yaml", "--dry-run");
    E(1, "malformed.yaml:3:1:", "experiment", "malformed.yaml", "--dry-run");
    E(1, "unknown key 'train.nokey'", "experiment", "ok.yaml", "train.nokey=1", "--dry-run");
    E(1, "run.seed: expected an integer", "experiment", "ok.yaml", "run.seed=1.5", "--print-config");
    E(1, "good.csv:1:1:", "experiment", "good.csv", "--dry-run");
    // CUDA asked for where it cannot run: one line naming run.device, before any data, model or compute
    if (device_cuda_built() && !device_available())
        E(1, "kanoclip: override run.device=cuda: run.device: CUDA was asked for, but no CUDA device found (",
          "experiment", "ok.yaml", "run.device=cuda");
    E(1, "kanoclip: override run.precision=fp16: run.precision: unknown precision 'fp16'", "experiment", "ok.yaml",
      "run.precision=fp16");
    cr_expect(!exists("results"), "a failed experiment made its results folder");
}

Test(cli_errors, kb) {
    E(2, "usage: kanoclip kb", "kb");
    E(2, "'foo'", "kb", "foo");
    E(2, "'--bogus'", "kb", "show", "ok.yaml", "--bogus");
    E(2, "--concurrency", "kb", "show", "ok.yaml", "--concurrency", "abc");
    E(2, "--concurrency needs a value", "kb", "show", "ok.yaml", "--concurrency");
    E(2, "--checkpoint", "kb", "embed", "--classes", "a", "--cache-dir", "kbc");
    E(1, "nope.yaml: No such file", "kb", "show", "nope.yaml");
    E(1, "badkey.yaml:3:3: unknown key 'run.bogus'", "kb", "show", "badkey.yaml");
    E(1, "unknown key 'kb.nokey'", "kb", "show", "ok.yaml", "kb.nokey=1");
    E(1, "kb.dataset: unknown dataset type 'foo'", "kb", "show", "--dataset-type", "foo", "--dataset-root", "adir");
    E(1, "nope: dataset root not found", "kb", "show", "--dataset-type", "mvtec", "--dataset-root", "nope");
}

// Help says what there is: the top level lists every kb subcommand, `experiment --help` every option it takes.
Test(cli_errors, help_names_every_subcommand_and_option) {
    char *out = fs_join(scratch, "help.txt"), *err = fs_join(scratch, "help.err");
    char *top[] = {exe, "--help", NULL};
    cr_assert_eq(run_cli(top, scratch, out, err), 0);
    char *text = fs_read_file(out, NULL);
    const char *kb = strstr(text, "\n  kb ");
    cr_assert_not_null(kb, "%s", text);
    const char *eol = strchr(kb + 1, '\n');
    cr_assert(strstr(kb, "build") && strstr(kb, "show") && strstr(kb, "embed") && strstr(kb, "show") < eol,
              "the kb line names build, show and embed: %s", text);
    free(text);
    char *exp[] = {exe, "experiment", "--help", NULL};
    cr_assert_eq(run_cli(exp, scratch, out, err), 0);
    text = fs_read_file(out, NULL);
    const char *opts[] = {"--dry-run", "--force", "--print-config", "--quiet"};
    for (int i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %s ", opts[i]);
        cr_assert(strstr(text, line), "%s is not described: %s", opts[i], text);
    }
    free(text);
    free(out);
    free(err);
}

// ---- reports -----------------------------------------------------------------------------------------------

Test(cli_errors, tables) {
    E(2, "usage: kanoclip tables", "tables");
    E(2, "--out needs a value", "tables", "run1", "--out");
    E(2, "'--bogus'", "tables", "run1", "--bogus");
    E(1, "no finished run among the 1 folder given", "tables", "nope", "--out", "t");
    E(1, "badrun/metrics.json", "tables", "run1", "badrun", "--out", "t");
    E(1, "paper_num.csv:2: image_auroc", "tables", "run1", "--out", "t", "--paper", "paper_num.csv");
    E(1, "nope.csv: No such file", "tables", "run1", "--out", "t", "--paper", "nope.csv");
    cr_expect(!exists("t"), "tables wrote its folder after an error");
    E(1, "good.csv/x", "tables", "run1", "--out", "good.csv/x");
}

Test(cli_errors, plots) {
    E(2, "usage: kanoclip plots", "plots", "run1");
    E(2, "usage: kanoclip plots", "plots", "--out", "p");
    E(2, "'--bogus'", "plots", "run1", "--out", "p", "--bogus");
    if (plots_find_gnuplot()) { // without gnuplot the command stops before reading the runs
        E(1, "badrun/metrics.json", "plots", "run1", "badrun", "--out", "p");
        cr_expect(!exists("p"), "plots wrote its folder after an error");
        E(1, "good.csv/x", "plots", "run1", "--out", "good.csv/x");
    }
}

Test(cli_errors, grid) {
    E(2, "usage: kanoclip grid", "grid");
    E(2, "--slurm", "grid", "grid_ok.yaml", "--slurm");
    E(2, "'--bogus'", "grid", "grid_ok.yaml", "--bogus");
    E(1, "nope.yaml: No such file", "grid", "nope.yaml");
    E(1, "grid_key.yaml:3:1: unknown key 'bogus'", "grid", "grid_key.yaml");
    E(1, "run.seed: expected an integer", "grid", "grid_seed.yaml");
    E(1, "grid_none.yaml: configs: the grid has no configs", "grid", "grid_none.yaml");
    E(1, "nodir/job.sh: cannot write", "grid", "grid_ok.yaml", "--slurm", "nodir/job.sh");
    cr_expect(!exists("nodir"));
}
