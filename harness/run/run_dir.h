// Run folders: one per (config name, config hash) under run.out_dir, as <out_dir>/<name>-<hash12>/:
//   config.yaml       the composed config (what the hash is of)
//   provenance.json   git commit + dirty flag, weights and dataset-manifest hashes, seed, host, time, command line
//   log.txt           every log line of every attempt (appended)
//   metrics.json, per_class.csv, roc_<dataset>.csv, train_log.csv   written by the experiment (experiment.h), and
//   bootstrap_<dataset>.csv, maps_<dataset>.h5 as eval.bootstrap and eval.save_maps ask
//   state.bin ...     resumable state the experiment keeps (run_path(run, "state.bin"))
//   DONE              written last, by run_finish: a folder with DONE is finished and is not run again
#ifndef HARNESS_RUN_DIR_H
#define HARNESS_RUN_DIR_H

#include <stddef.h>

#include "harness/config/config.h"

typedef struct Run Run;
typedef enum {
    RUN_NEW,      // the folder was created now
    RUN_RESUMED,  // the folder existed without DONE: a partial run to continue
    RUN_DONE,     // the folder has DONE (and force was not given): nothing to do
} RunState;

typedef struct {
    int force;                 // rerun a finished run: clears the folder (keeps log.txt) first
    const char *command_line;  // recorded in provenance.json
    int skip_hashes;           // do not hash weights and dataset files (tests; recorded as "skipped")
    const struct Settings *settings;  // the run's settings (which datasets it reads), or NULL
} RunOptions;

// The folder a config runs in (malloc'd): <run.out_dir>/<run.name>-<first 12 hex digits of config_hash>.
char *run_dir_for(const Config *cfg);

// Creates or reopens the run folder; writes config.yaml and provenance.json and opens log.txt (harness/run/log.h)
// unless the run is RUN_DONE. NULL with err_set on failure.
Run *run_open(const Config *cfg, const RunOptions *opt);
RunState run_state(const Run *run);
const char *run_dir(const Run *run);
const Config *run_config(const Run *run);
// DIR/name, malloc'd (the file need not exist).
char *run_path(const Run *run, const char *name);
// Writes DIR/name atomically.
int run_write_file(Run *run, const char *name, const void *data, size_t size);
// Adds or replaces a string field of provenance.json (e.g. the dataset manifest hash the reader computed).
int run_set_provenance(Run *run, const char *key, const char *value);
// Marks the run finished: provenance gets the end time, then DONE is written (last).
int run_finish(Run *run);
// Closes the log; frees run. Does not mark anything.
void run_close(Run *run);

#endif
