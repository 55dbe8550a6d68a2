// Run folders: identity from the config hash, DONE marker, resume, provenance record.
#define _XOPEN_SOURCE 700
#include "harness/config/settings.h"
#include "harness/run/run_dir.h"
#include "harness/run/log.h"
#include "harness/run/provenance.h"
#include "common/error.h"
#include "common/file_lock.h"
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
    FileLock lock;   // held on <dir>/.lock while the run lives: a second process of the same run is refused
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
    if (ftw->level == 1 && (!strcmp(path + ftw->base, keep_name) || !strcmp(path + ftw->base, ".lock"))) return 0;
    return remove(path) == 0 ? 0 : -1;
}

// A temporary file of an atomic write (common/fsutil.c fs_temp_name: NAME.tmp.PID) that a killed writer left.
static int is_temp_name(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    for (t += 5; *t; t++)
        if (*t < '0' || *t > '9') return 0;
    return t[-1] != '.';
}

static int remove_temp(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    if (flag == FTW_F && is_temp_name(path + ftw->base)) unlink(path);
    return 0;
}

// Removes what killed writers left in a run folder we hold the lock of: no other process writes there.
static void remove_stale_temps(const char *dir) { nftw(dir, remove_temp, 16, FTW_PHYS); }

// Empties a run folder for a forced rerun, keeping log.txt (the history of attempts) and the lock.
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

// The run's inputs as they are now: the weights' SHA-256 and each dataset's manifest (every file's path, size and
// content hash) of the datasets the run reads. With the config hash (the folder's name) this is the run's
// identity: a run folder is never reused for other weights or data.
static cJSON *inputs_now(const Config *cfg, const RunOptions *opt) {
    cJSON *p = cJSON_CreateObject();
    char hex[65];
    const char *ck = NULL;
    config_get_str(cfg, "model.checkpoint", &ck);
    if (opt->skip_hashes) cJSON_AddStringToObject(p, "weights_sha256", "skipped");
    else if (!ck || !*ck) cJSON_AddStringToObject(p, "weights_sha256", "none");
    else cJSON_AddStringToObject(p, "weights_sha256", provenance_weights_hash(ck, hex) == 0 ? hex : "missing");
    cJSON *ds = cJSON_AddObjectToObject(p, "datasets");
    ConfigDataset d;
    // The training set is recorded when the run reads it (opt->settings says; without them, when it is named).
    if ((!opt->settings || settings_uses_train(opt->settings)) && config_train_dataset(cfg, &d) == 0)
        record_dataset(ds, d.name, d.root, opt->skip_hashes);
    else
        err_clear();
    int n = config_has(cfg, "eval.datasets") ? config_list_len(cfg, "eval.datasets") : 0;
    for (int i = 0; i < n; i++)
        if (config_dataset(cfg, "eval.datasets", i, &d) == 0) record_dataset(ds, d.name, d.root, opt->skip_hashes);
    return p;
}

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// What differs between the inputs recorded in a run folder's provenance.json and now ("" when nothing does;
// hashes recorded as "skipped" compare equal to anything).
static void inputs_changed(const cJSON *old, const cJSON *now, char *why, size_t cap) {
    why[0] = 0;
    const char *a = str_of(old, "weights_sha256"), *b = str_of(now, "weights_sha256");
    if (a && b && strcmp(a, "skipped") && strcmp(b, "skipped") && strcmp(a, b))
        snprintf(why, cap, "the weights in model.checkpoint changed (sha256 %.12s, now %.12s)", a, b);
    const cJSON *od = cJSON_GetObjectItem(old, "datasets"), *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(now, "datasets")) {
        const cJSON *o = cJSON_GetObjectItem(od, d->string);
        const char *x = o ? str_of(o, "manifest_sha256") : NULL, *y = str_of(d, "manifest_sha256");
        if (!x || !y || !strcmp(x, "skipped") || !strcmp(y, "skipped") || !strcmp(x, y)) continue;
        size_t n = strlen(why);
        snprintf(why + n, cap - n, "%sthe files of dataset %s changed (manifest %.12s, now %.12s)", n ? "; " : "",
                 d->string, x, y);
    }
}

static cJSON *build_provenance(const Run *run, const RunOptions *opt, const cJSON *inputs, int attempt) {
    const Config *cfg = run->cfg;
    cJSON *p = cJSON_CreateObject();
    char commit[64], now[32], host[256] = "unknown";
    int dirty;
    provenance_git(commit, &dirty);
    cJSON_AddStringToObject(p, "config_sha256", config_hash(cfg));
    cJSON_AddStringToObject(p, "git_commit", commit);
    if (dirty < 0) cJSON_AddStringToObject(p, "git_dirty", "unknown");
    else cJSON_AddBoolToObject(p, "git_dirty", dirty);
    const char *ck = NULL;
    config_get_str(cfg, "model.checkpoint", &ck);
    cJSON_AddStringToObject(p, "checkpoint", ck ? ck : "");
    cJSON_AddItemToObject(p, "weights_sha256", cJSON_Duplicate(cJSON_GetObjectItem(inputs, "weights_sha256"), 1));
    cJSON_AddItemToObject(p, "datasets", cJSON_Duplicate(cJSON_GetObjectItem(inputs, "datasets"), 1));
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
    run->lock.fd = -1;
    char *ppath = run_path(run, "provenance.json"), *done = run_path(run, "DONE"), *lock = run_path(run, ".lock");
    cJSON *inputs = inputs_now(cfg, opt), *old = NULL;
    char changed[1024] = "";
    int attempt = 1, existed = fs_is_dir(dir), finished = 0;
    if (existed) {
        // Another process of this run holds the folder: refuse before touching anything in it.
        long holder = 0;
        int busy = file_lock(lock, 0, &run->lock, &holder);
        if (busy) {
            if (busy > 0) err_set("%s: in use by another run of the same config (pid %ld); wait for it to finish", dir, holder);
            goto fail;
        }
        char *text = fs_exists(ppath) ? fs_read_file(ppath, NULL) : NULL;
        old = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (old) inputs_changed(old, inputs, changed, sizeof changed);
        finished = fs_exists(done);
    }
    if (finished && !opt->force) {
        if (changed[0]) {
            err_set("%s: finished with other inputs: %s; its results stay as they are (--force reruns it with the "
                    "current inputs, or give another run.name)", dir, changed);
            goto fail;
        }
        run->state = RUN_DONE;
        goto out;
    }
    if (existed && !opt->force && changed[0]) {
        err_set("%s: a partial run with other inputs: %s; --force starts it anew with the current ones", dir, changed);
        goto fail;
    }
    if (existed && opt->force) {
        if (clear_run_dir(dir) < 0) goto fail;
        cJSON_Delete(old);
        old = NULL;
    }
    if (fs_mkdirs(dir) < 0) goto fail;
    if (run->lock.fd < 0) {
        long holder = 0;
        int busy = file_lock(lock, 0, &run->lock, &holder);
        if (busy) {
            if (busy > 0) err_set("%s: in use by another run of the same config (pid %ld); wait for it to finish", dir, holder);
            goto fail;
        }
    }
    run->state = existed && !opt->force ? RUN_RESUMED : RUN_NEW;
    if (run->state == RUN_RESUMED) remove_stale_temps(dir);
    // The attempt number continues from a previous provenance.json (a resumed run).
    const cJSON *a = old ? cJSON_GetObjectItem(old, "attempt") : NULL;
    if (cJSON_IsNumber(a)) attempt = a->valueint + 1;
    char *cpath = run_path(run, "config.yaml"), *lpath = run_path(run, "log.txt");
    int rc = config_write_yaml(cfg, cpath);
    if (rc == 0 && (rc = log_open(lpath)) == 0) run->owns_log = 1;
    free(cpath);
    free(lpath);
    if (rc < 0) goto fail;
    run->prov = build_provenance(run, opt, inputs, attempt);
    if (write_provenance(run) < 0) goto fail;
    log_msg("run %s: %s (attempt %d)%s", run->state == RUN_RESUMED ? "resumed" : "started", dir, attempt,
            opt->force && existed ? " after --force" : "");
    goto out;
fail:
    run_close(run);
    run = NULL;
out:
    cJSON_Delete(inputs);
    cJSON_Delete(old);
    free(ppath);
    free(done);
    free(lock);
    return run;
}

RunState run_state(const Run *run) { return run->state; }
const char *run_dir(const Run *run) { return run->dir; }
const Config *run_config(const Run *run) { return run->cfg; }
char *run_path(const Run *run, const char *name) { return fs_join(run->dir, name); }

int run_write_file(Run *run, const char *name, const void *data, size_t size) {
    char *p = run_path(run, name);
    int rc = fs_write_atomic(p, data, size);
    free(p);
    return rc < 0 ? err_mark_retryable() : 0;  // the file before it is intact; a rerun writes it again
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
    file_unlock(&run->lock);
    cJSON_Delete(run->prov);
    free(run->dir);
    free(run);
}
