// Run folders: identity from the config hash, DONE marker, resume, provenance record.
#define _XOPEN_SOURCE 700
#include "harness/method_config.h"
#include "harness/run_dir.h"
#include "harness/log.h"
#include "harness/provenance.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <omp.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct Run {
    char *dir;
    const Config *cfg;
    RunState state;
    cJSON *prov;
    int owns_log;
};

char *run_dir_for(const Config *cfg) {
    const char *out = NULL, *name = NULL;
    if (config_get_str(cfg, "run.out_dir", &out) < 0 || config_get_str(cfg, "run.name", &name) < 0) return NULL;
    if (!out || !*out) out = ".";
    if (!name || !*name || strchr(name, '/')) {
        err_set("%s: run.name: expected a non-empty name without '/'", config_origin(cfg, "run.name"));
        return NULL;
    }
    char leaf[512];
    snprintf(leaf, sizeof leaf, "%s-%.12s", name, config_hash(cfg));
    return fs_join(out, leaf);
}

static const char *keep_name;  // nftw has no user pointer

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (ftw->level == 0) return 0;
    if (ftw->level == 1 && !strcmp(path + ftw->base, keep_name)) return 0;
    return remove(path) == 0 ? 0 : -1;
}

// Empties a run folder for a forced rerun, keeping log.txt (the history of attempts).
static int clear_run_dir(const char *dir) {
    keep_name = "log.txt";
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return err_set("%s: cannot clear the run folder", dir);
    return 0;
}

static int write_provenance(Run *run) {
    char *path = run_path(run, "provenance.json");
    int rc = json_write_file(path, run->prov);
    free(path);
    return rc;
}

static void record_dataset(cJSON *datasets, const char *name, const char *root, int skip) {
    if (cJSON_GetObjectItem(datasets, name)) return;
    cJSON *d = cJSON_AddObjectToObject(datasets, name);
    cJSON_AddStringToObject(d, "root", root);
    char hex[65];
    long n = 0;
    if (skip) cJSON_AddStringToObject(d, "manifest_sha256", "skipped");
    else if (provenance_manifest_hash(root, hex, &n) == 0) {
        cJSON_AddStringToObject(d, "manifest_sha256", hex);
        cJSON_AddNumberToObject(d, "files", (double)n);
    } else cJSON_AddStringToObject(d, "manifest_sha256", "missing");
}

static cJSON *build_provenance(const Run *run, const RunOptions *opt, int attempt) {
    const Config *cfg = run->cfg;
    cJSON *p = cJSON_CreateObject();
    char commit[64], now[32], host[256] = "unknown", hex[65];
    int dirty;
    provenance_git(commit, &dirty);
    cJSON_AddStringToObject(p, "config_sha256", config_hash(cfg));
    cJSON_AddStringToObject(p, "git_commit", commit);
    if (dirty < 0) cJSON_AddStringToObject(p, "git_dirty", "unknown");
    else cJSON_AddBoolToObject(p, "git_dirty", dirty);
    const char *ck = NULL;
    config_get_str(cfg, "model.checkpoint", &ck);
    cJSON_AddStringToObject(p, "checkpoint", ck ? ck : "");
    if (opt->skip_hashes) cJSON_AddStringToObject(p, "weights_sha256", "skipped");
    else if (!ck || !*ck) cJSON_AddStringToObject(p, "weights_sha256", "none");
    else cJSON_AddStringToObject(p, "weights_sha256", provenance_weights_hash(ck, hex) == 0 ? hex : "missing");
    cJSON *ds = cJSON_AddObjectToObject(p, "datasets");
    ConfigDataset d;
    if (run_uses_training_data(cfg) > 0 && config_train_dataset(cfg, &d) == 0)
        record_dataset(ds, d.name, d.root, opt->skip_hashes);
    else
        err_clear();
    int n = config_has(cfg, "eval.datasets") ? config_list_len(cfg, "eval.datasets") : 0;
    for (int i = 0; i < n; i++)
        if (config_dataset(cfg, "eval.datasets", i, &d) == 0) record_dataset(ds, d.name, d.root, opt->skip_hashes);
    long seed = 0;
    if (config_get_int(cfg, "run.seed", &seed) == 0) cJSON_AddNumberToObject(p, "seed", (double)seed);
    cJSON_AddStringToObject(p, "compiler", __VERSION__);
    cJSON_AddStringToObject(p, "openblas", openblas_get_config());
    cJSON_AddNumberToObject(p, "omp_max_threads", omp_get_max_threads());
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(p, "host", host);
    provenance_now(now);
    cJSON_AddStringToObject(p, "started", now);
    cJSON_AddNumberToObject(p, "attempt", attempt);
    cJSON_AddStringToObject(p, "command_line", opt->command_line ? opt->command_line : "");
    return p;
}

Run *run_open(const Config *cfg, const RunOptions *opt) {
    static const RunOptions none = {0};
    if (!opt) opt = &none;
    char *dir = run_dir_for(cfg);
    if (!dir) return NULL;
    Run *run = calloc(1, sizeof *run);
    run->dir = dir;
    run->cfg = cfg;
    char *done = run_path(run, "DONE");
    int existed = fs_is_dir(dir), finished = fs_exists(done);
    free(done);
    if (finished && !opt->force) {
        run->state = RUN_DONE;
        return run;
    }
    if (finished && clear_run_dir(dir) < 0) goto fail;
    if (fs_mkdirs(dir) < 0) goto fail;
    run->state = existed && !finished ? RUN_RESUMED : RUN_NEW;

    // The attempt number continues from a previous provenance.json (a resumed run).
    int attempt = 1;
    char *ppath = run_path(run, "provenance.json");
    char *old = fs_exists(ppath) ? fs_read_file(ppath, NULL) : NULL;
    free(ppath);
    if (old) {
        cJSON *o = cJSON_Parse(old);
        cJSON *a = o ? cJSON_GetObjectItem(o, "attempt") : NULL;
        if (cJSON_IsNumber(a)) attempt = a->valueint + 1;
        cJSON_Delete(o);
        free(old);
    }
    char *cpath = run_path(run, "config.yaml"), *lpath = run_path(run, "log.txt");
    int rc = config_write_yaml(cfg, cpath);
    if (rc == 0 && (rc = log_open(lpath)) == 0) run->owns_log = 1;
    free(cpath);
    free(lpath);
    if (rc < 0) goto fail;
    run->prov = build_provenance(run, opt, attempt);
    if (write_provenance(run) < 0) goto fail;
    log_msg("run %s: %s (attempt %d)%s", run->state == RUN_RESUMED ? "resumed" : "started", dir, attempt,
            finished ? " after --force" : "");
    return run;
fail:
    run_close(run);
    return NULL;
}

RunState run_state(const Run *run) { return run->state; }
const char *run_dir(const Run *run) { return run->dir; }
const Config *run_config(const Run *run) { return run->cfg; }
char *run_path(const Run *run, const char *name) { return fs_join(run->dir, name); }

int run_write_file(Run *run, const char *name, const void *data, size_t size) {
    char *p = run_path(run, name);
    int rc = fs_write_atomic(p, data, size);
    free(p);
    return rc;
}

int run_set_provenance(Run *run, const char *key, const char *value) {
    if (!run->prov) return err_set("%s: run is finished; provenance is closed", run->dir);
    cJSON *v = cJSON_CreateString(value);
    if (cJSON_GetObjectItem(run->prov, key)) cJSON_ReplaceItemInObject(run->prov, key, v);
    else cJSON_AddItemToObject(run->prov, key, v);
    return write_provenance(run);
}

int run_finish(Run *run) {
    char now[32];
    provenance_now(now);
    if (run_set_provenance(run, "finished", now) < 0) return -1;
    if (run_write_file(run, "DONE", now, strlen(now)) < 0) return -1;
    log_msg("run finished: %s", run->dir);
    run->state = RUN_DONE;
    return 0;
}

void run_close(Run *run) {
    if (!run) return;
    if (run->owns_log) log_close();
    cJSON_Delete(run->prov);
    free(run->dir);
    free(run);
}
