// kanoclip features CONFIG [key=value ...] [--shard I/N] [--quiet]
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/config/settings.h"
#include "harness/run/features_exec.h"
#include "harness/run/log.h"
#include "common/error.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: kanoclip features CONFIG.yaml [key=value ...] [--shard I/N] [--quiet]\n"
    "  extracts the frozen vision features a run of CONFIG reads (data.train when its method reads it, every\n"
    "  eval dataset) into the shared feature cache (cache.dir/features), and nothing else; the run then reuses them\n"
    "  --shard I/N  only shard I (0..N-1) of each dataset, into its shard file beside the cache; N must be the\n"
    "               config's cache.shards. The first run that needs the features merges the N shards\n"
    "               (kanoclip grid --slurm submits the N shards as an array job the cells wait for)\n"
    "  --quiet      no log lines on stderr\n";

// "I/N" with 0 <= I < N <= CACHE_MAX_SHARDS.
static int parse_shard(const char *text, int *shard, int *n) {
    const char *slash = strchr(text, '/');
    if (!slash || slash == text) return -1;
    char head[32];
    size_t len = (size_t)(slash - text);
    if (len >= sizeof head) return -1;
    memcpy(head, text, len);
    head[len] = '\0';
    if (cli_parse_int(slash + 1, 1, CACHE_MAX_SHARDS, n) < 0 || cli_parse_int(head, 0, *n - 1, shard) < 0) return -1;
    return 0;
}

int cmd_features(int argc, char **argv) {
    const char *path = NULL;
    int shard = -1, n_shards = 0, n_ov = 0;
    char **ov = calloc((size_t)argc + 1, sizeof *ov);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage_text, stdout); free(ov); return 0; }
        else if (!strcmp(a, "--quiet")) log_set_echo(0);
        else if (!strcmp(a, "--shard")) {
            if (i + 1 >= argc || parse_shard(argv[i + 1], &shard, &n_shards) < 0) {
                fprintf(stderr, "kanoclip features: --shard needs I/N with 0 <= I < N <= %d (e.g. --shard 0/4)%s%s\n",
                        CACHE_MAX_SHARDS, i + 1 < argc ? ", not " : "", i + 1 < argc ? argv[i + 1] : "");
                free(ov);
                return 2;
            }
            i++;
        } else if (a[0] == '-') { fprintf(stderr, "kanoclip features: unknown option '%s'\n", a); free(ov); return 2; }
        else if (strchr(a, '=')) ov[n_ov++] = argv[i];
        else if (!path) path = a;
        else { fprintf(stderr, "kanoclip features: more than one config ('%s', '%s')\n", path, a); free(ov); return 2; }
    }
    if (!path) { free(ov); return cli_usage_error(usage_text); }
    Config *cfg = config_load(path, NULL, n_ov, ov);
    free(ov);
    if (!cfg) return fail_with_error();
    Settings *s = settings_load(cfg);
    int rc = 0;
    if (!s || settings_check_inputs(s) < 0) rc = -1;
    // The shard count is the config's: the run that merges reads cache.shards, so a task may not split otherwise.
    else if (shard >= 0 && n_shards != s->cache.shards)
        rc = err_set("--shard %d/%d: the config's cache.shards is %d (%s); give --shard I/%d, or set cache.shards=%d",
                     shard, n_shards, s->cache.shards, config_origin(cfg, "cache.shards"), s->cache.shards, n_shards);
    if (rc == 0) {
        if (s->run.threads > 0) omp_set_num_threads(s->run.threads);
        rc = features_execute(s, shard);
    }
    if (rc < 0) rc = fail_with_error();
    settings_free(s);
    config_free(cfg);
    return rc;
}
