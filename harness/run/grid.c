// Grids: expansion into cells, freezing, Slurm scripts (grid.h).
#define _GNU_SOURCE
#include "harness/run/grid.h"
#include "harness/config/config.h"
#include "harness/config/settings.h"
#include "harness/run/run_dir.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct Grid {
    char *path, *name, *dir;
    GridCell *cells;
    int n;
    char **yaml;      // [n] composed config of each cell
    Config *spec;     // the grid file itself
};

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xstrdup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static char *grid_defaults_path(void) {
    const char *d = config_find_defaults();
    if (!d) return NULL;
    const char *slash = strrchr(d, '/');
    return slash ? xstrdup_printf("%.*s/grid_defaults.yaml", (int)(slash - d), d) : strdup("grid_defaults.yaml");
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
}

// Appends one cell: composes config with the overrides (common + dataset + seed + set).
// A YAML double-quoted string.
static void yaml_quoted(char *out, size_t size, const char *s) {
    size_t k = 0;
    if (k + 1 < size) out[k++] = '"';
    for (; *s && k + 3 < size; s++) {
        if (*s == '"' || *s == '\\') out[k++] = '\\';
        out[k++] = *s;
    }
    if (k + 1 < size) out[k++] = '"';
    out[k] = '\0';
}

// Item d of the grid's datasets: a name, or {name, type, root}. *label names the cell's dataset; *flow is the
// item as YAML flow text for the eval.datasets override (malloc'd). -1 with err_set.
static int dataset_item(const Grid *g, int d, char **label, char **flow) {
    const char *name = config_list_str(g->spec, "datasets", d);
    if (name) {
        *label = strdup(name);
        *flow = strdup(name);
        return 0;
    }
    const char *fields[3] = {"name", "type", "root"}, *v[3];
    for (int i = 0; i < 3; i++) v[i] = config_list_field(g->spec, "datasets", d, fields[i]);
    if (!v[0] && !v[1])
        return err_set("%s: datasets item %d: expected a name or {name, type, root}", g->path, d);
    char q[3][1100], text[3400] = "{";
    for (int i = 0; i < 3; i++) {
        if (!v[i]) continue;
        yaml_quoted(q[i], sizeof q[i], v[i]);
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s: %s", strlen(text) > 1 ? ", " : "", fields[i], q[i]);
    }
    strcat(text, "}");
    *label = strdup(v[0] && *v[0] ? v[0] : v[1]);
    *flow = strdup(text);
    return 0;
}

static int add_cell(Grid *g, const char *config, const char *dataset, const char *dataset_flow, const char *seed,
                    char **set, int n_set) {
    char **ov = calloc((size_t)n_set + 64, sizeof *ov);
    int n = 0, n_common = config_list_len(g->spec, "common");
    for (int i = 0; i < n_common; i++) ov[n++] = (char *)config_list_str(g->spec, "common", i);
    char *ds_ov = *dataset ? xstrdup_printf("eval.datasets=[%s]", dataset_flow) : NULL;
    char *seed_ov = *seed ? xstrdup_printf("run.seed=%s", seed) : NULL;
    if (ds_ov) ov[n++] = ds_ov;
    if (seed_ov) ov[n++] = seed_ov;
    for (int i = 0; i < n_set; i++) ov[n++] = set[i];
    Config *cfg = config_load(config, NULL, n, ov);
    int rc = 0;
    if (!cfg) {
        rc = err_wrap("%s: cell %d (%s%s%s%s%s): ", g->path, g->n, config, *dataset ? ", dataset " : "", dataset,
                      *seed ? ", seed " : "", seed);
    } else {
        g->cells = realloc(g->cells, sizeof *g->cells * (size_t)(g->n + 1));
        g->yaml = realloc(g->yaml, sizeof *g->yaml * (size_t)(g->n + 1));
        GridCell *c = &g->cells[g->n];
        char leaf[32];
        snprintf(leaf, sizeof leaf, "cells/%04d.yaml", g->n);
        c->cell_config = fs_join(g->dir, leaf);
        c->run_dir = run_dir_for(cfg);
        long shards = 1;
        config_get_int(cfg, "cache.shards", &shards);
        c->feature_shards = (int)shards;
        c->config = strdup(config);
        c->dataset = strdup(dataset);
        c->seed = strdup(seed);
        size_t len = 1;
        for (int i = 0; i < n_set; i++) len += strlen(set[i]) + 1;
        c->overrides = calloc(len, 1);
        for (int i = 0; i < n_set; i++) {
            if (i) strcat(c->overrides, " ");
            strcat(c->overrides, set[i]);
        }
        g->yaml[g->n] = strdup(config_yaml(cfg));
        g->n++;
        if (!c->run_dir) rc = -1;
        // the one key the Slurm script reads from a cell (the run checks the others)
        else if (shards < 1 || shards > CACHE_MAX_SHARDS)
            rc = err_set("%s: cell %d: %s: cache.shards: %ld: expected 1..%d", g->path, g->n - 1,
                         config_origin(cfg, "cache.shards"), shards, CACHE_MAX_SHARDS);
        config_free(cfg);
    }
    free(ds_ov);
    free(seed_ov);
    free(ov);
    return rc;
}

Grid *grid_load(const char *path) {
    char *defaults = grid_defaults_path();
    if (!defaults) return NULL;
    Config *spec = config_load(path, defaults, 0, NULL);
    free(defaults);
    if (!spec) return NULL;
    Grid *g = calloc(1, sizeof *g);
    g->path = strdup(path);
    g->spec = spec;
    const char *name, *out;
    config_get_str(spec, "name", &name);
    config_get_str(spec, "out", &out);
    if (!name || !*name || strchr(name, '/')) {
        err_set("%s: name: expected a non-empty name without '/'", config_origin(spec, "name"));
        grid_free(g);
        return NULL;
    }
    g->name = strdup(name);
    char leaf[300];
    snprintf(leaf, sizeof leaf, "grid-%s", name);
    g->dir = fs_join(out && *out ? out : ".", leaf);

    int nc = config_list_len(spec, "configs"), nd = config_list_len(spec, "datasets");
    int ns = config_list_len(spec, "seeds"), no = config_list_len(spec, "overrides");
    if (nc <= 0) {
        err_set("%s: configs: the grid has no configs", path);
        grid_free(g);
        return NULL;
    }
    char *base = dir_of(path);
    int rc = 0;
    for (int c = 0; c < nc && rc == 0; c++) {
        const char *cp = config_list_str(spec, "configs", c);
        if (!cp) { rc = -1; break; }
        char *config = cp[0] == '/' ? strdup(cp) : fs_join(base, cp);
        for (int d = 0; d < (nd ? nd : 1) && rc == 0; d++) {
            char *ds = NULL, *ds_flow = NULL;
            if (nd && dataset_item(g, d, &ds, &ds_flow) < 0) { rc = -1; break; }
            if (!nd) { ds = strdup(""); ds_flow = strdup(""); }
            for (int s = 0; s < (ns ? ns : 1) && rc == 0; s++) {
                const char *seed = ns ? config_list_str(spec, "seeds", s) : "";
                for (int o = 0; o < (no ? no : 1) && rc == 0; o++) {
                    char key[64];
                    snprintf(key, sizeof key, "overrides.%d", o);
                    int n_set = no ? config_list_len(spec, key) : 0;
                    if (n_set < 0) { rc = err_wrap("%s: overrides item %d: ", path, o); break; }
                    char **set = calloc((size_t)n_set + 1, sizeof *set);
                    for (int k = 0; k < n_set && rc == 0; k++)
                        if (!(set[k] = (char *)config_list_str(spec, key, k))) rc = -1;
                    if (rc == 0 && !seed) rc = -1;
                    if (rc == 0) rc = add_cell(g, config, ds, ds_flow, seed, set, n_set);
                    free(set);
                }
            }
            free(ds);
            free(ds_flow);
        }
        free(config);
    }
    free(base);
    if (rc < 0) { grid_free(g); return NULL; }
    return g;
}

void grid_free(Grid *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        GridCell *c = &g->cells[i];
        free(c->cell_config);
        free(c->run_dir);
        free(c->config);
        free(c->dataset);
        free(c->seed);
        free(c->overrides);
        free(g->yaml[i]);
    }
    free(g->cells);
    free(g->yaml);
    config_free(g->spec);
    free(g->path);
    free(g->name);
    free(g->dir);
    free(g);
}

int grid_n_cells(const Grid *g) { return g->n; }
const GridCell *grid_cell(const Grid *g, int i) { return i >= 0 && i < g->n ? &g->cells[i] : NULL; }
const char *grid_dir(const Grid *g) { return g->dir; }
const char *grid_name(const Grid *g) { return g->name; }
const char *grid_file(const Grid *g) { return g->path; }
const Config *grid_spec(const Grid *g) { return g->spec; }

static char *cells_tsv(const Grid *g) {
    size_t cap = 256;
    for (int i = 0; i < g->n; i++) {
        const GridCell *c = &g->cells[i];
        cap += strlen(c->cell_config) + strlen(c->run_dir) + strlen(c->config) + strlen(c->dataset) +
               strlen(c->seed) + strlen(c->overrides) + 32;
    }
    char *s = malloc(cap);
    strcpy(s, "index\tcell_config\trun_dir\tconfig\tdataset\tseed\toverrides\n");
    for (int i = 0; i < g->n; i++) {
        const GridCell *c = &g->cells[i];
        sprintf(s + strlen(s), "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i, c->cell_config, c->run_dir, c->config, c->dataset,
                c->seed, c->overrides);
    }
    return s;
}

int grid_freeze(Grid *g, int refreeze) {
    char *tsv = cells_tsv(g);
    char *path = fs_join(g->dir, "cells.tsv");
    int rc = 0;
    if (fs_exists(path) && !refreeze) {
        char *old = fs_read_file(path, NULL);
        if (old && strcmp(old, tsv))
            rc = err_set("%s: the grid's cells changed since they were frozen (configs or grid file edited); "
                         "--refreeze replaces them (finished runs are kept and reused)", path);
        free(old);
    }
    char *cells = fs_join(g->dir, "cells");
    if (rc == 0) rc = fs_mkdirs(cells);
    for (int i = 0; i < g->n && rc == 0; i++) rc = fs_write_atomic(g->cells[i].cell_config, g->yaml[i], strlen(g->yaml[i]));
    if (rc == 0) rc = fs_write_atomic(path, tsv, strlen(tsv));  // last: the list names only written cells
    free(cells);
    free(path);
    free(tsv);
    return rc;
}

int grid_cell_state(const GridCell *c) {
    char *done = fs_join(c->run_dir, "DONE");
    int st = fs_exists(done) ? 2 : fs_is_dir(c->run_dir) ? 1 : 0;
    free(done);
    return st;
}

static char *cell_slurm_file(const Grid *g, int i, const char *ext) {
    char leaf[64];
    snprintf(leaf, sizeof leaf, "slurm/cell-%d.%s", i, ext);
    return fs_join(g->dir, leaf);
}

char *grid_cell_slurm_log(const Grid *g, int i) { return cell_slurm_file(g, i, "out"); }

int grid_feature_shards(const Grid *g) {
    int n = 1;
    for (int i = 0; i < g->n; i++)
        if (g->cells[i].feature_shards > n) n = g->cells[i].feature_shards;
    return n;
}

char *grid_features_slurm_file(const Grid *g, int s, const char *ext) {
    char leaf[64];
    snprintf(leaf, sizeof leaf, "slurm/features-%d.%s", s, ext);
    return fs_join(g->dir, leaf);
}

// 1 when a process holds PATH's flock (common/file_lock.h); 0 when free or missing. A shared lock for an instant:
// it never waits and leaves the file as it was.
static int lock_held(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) held = errno == EWOULDBLOCK;
    else flock(fd, LOCK_UN);
    close(fd);
    return held;
}

GridCellStatus grid_cell_status(const Grid *g, int i) {
    const GridCell *c = &g->cells[i];
    if (grid_cell_state(c) == 2) return CELL_DONE;
    char *lock = fs_join(c->run_dir, ".lock"), *failed = cell_slurm_file(g, i, "failed");
    GridCellStatus st = lock_held(lock) ? CELL_RUNNING
                        : fs_exists(failed) || fs_is_dir(c->run_dir) ? CELL_FAILED
                                                                     : CELL_PENDING;
    free(lock);
    free(failed);
    return st;
}

const char *grid_cell_status_name(GridCellStatus st) {
    static const char *const names[] = {"pending", "running", "failed", "done"};
    return names[st];
}

const char *grid_self_exe(void) {
    static char exe[4096];
    const char *env = getenv("KANOCLIP_BIN");
    if (env && *env) return env;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "kanoclip";
    exe[n] = '\0';
    return exe;
}
