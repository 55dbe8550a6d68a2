// Experiment grids: a grid file (keys and defaults in experiments/grid_defaults.yaml) expands to a frozen list of
// cells, configs x datasets x seeds x overrides. Freezing writes, under <out>/grid-<name>/:
//   cells/NNNN.yaml  each cell's composed config (so later edits to the configs do not leak into running jobs)
//   cells.tsv        index, cell config, run folder, source config, dataset, seed, overrides (tab-separated)
// A cell is run as `kanoclip experiment cells/NNNN.yaml` and is done when its run folder has DONE.
#ifndef HARNESS_GRID_H
#define HARNESS_GRID_H

typedef struct {
    char *cell_config;  // <grid dir>/cells/NNNN.yaml
    char *run_dir;      // where `kanoclip experiment` will put the run
    char *config, *dataset, *seed, *overrides;  // what the cell is made of ("" where the grid did not vary it)
    int feature_shards;  // the cell's cache.shards: its feature extraction split into this many shards
} GridCell;

typedef struct Grid Grid;
typedef struct Config Config;

// Loads the grid file and composes every cell's config (errors name the file, the cell and the key).
Grid *grid_load(const char *path);
void grid_free(Grid *g);
int grid_n_cells(const Grid *g);
const GridCell *grid_cell(const Grid *g, int i);
const char *grid_dir(const Grid *g);
const char *grid_name(const Grid *g);
const char *grid_file(const Grid *g);      // the grid file
const Config *grid_spec(const Grid *g);    // the grid file composed over grid_defaults.yaml (slurm.*)

// Writes cells/ and cells.tsv. When cells.tsv exists with other cells, fails (the grid changed after freezing)
// unless refreeze is set.
int grid_freeze(Grid *g, int refreeze);
// 2 done (DONE), 1 partial (folder without DONE), 0 not started.
int grid_cell_state(const GridCell *c);

// What a cell's run folder says, for `kanoclip grid --status`:
//   done     the folder has DONE
//   running  a process holds the folder's lock (harness/run/run_dir.c takes <run>/.lock while a run lives)
//   failed   a Slurm task of the cell failed (<grid dir>/slurm/cell-I.failed), or the folder exists without DONE
//            and nobody holds it (the run stopped before finishing)
//   pending  nothing yet
// "running" is found by taking the lock for an instant (the only test that works on a shared file system across
// nodes); a run starting in that instant is refused and says so.
typedef enum { CELL_PENDING, CELL_RUNNING, CELL_FAILED, CELL_DONE } GridCellStatus;
GridCellStatus grid_cell_status(const Grid *g, int i);
const char *grid_cell_status_name(GridCellStatus st);
// The Slurm output of cell i's task: <grid dir>/slurm/cell-I.out (malloc'd; it need not exist).
char *grid_cell_slurm_log(const Grid *g, int i);
// The largest cache.shards of the cells (1 when none splits its feature extraction).
int grid_feature_shards(const Grid *g);
// Feature shard s's task under Slurm: its output, <grid dir>/slurm/features-S.out, and, when it failed, the mark
// <grid dir>/slurm/features-S.failed (ext "out" or "failed"; malloc'd; they need not exist).
char *grid_features_slurm_file(const Grid *g, int s, const char *ext);

// A Slurm submission script: `bash OUT.sh` submits an array job over the cells not yet done (one cell per task,
// their output appended to <grid dir>/slurm/cell-I.out) and a job that runs `kanoclip tables` over every cell's
// run folder once all tasks succeeded (afterok; cancelled when one fails). With every cell done, only the tables
// job. When cells to run have cache.shards N > 1, an array of N feature shard tasks comes first (task I runs
// `kanoclip features CELL --shard I/N` for each such cell; output in slurm/features-I.out) and the cells' array
// waits for it (afterok; cancelled when a shard fails). Refuses (-1, err_set naming the cell) while a cell is running: a second task of it would be refused its
// run folder. exe: the kanoclip binary (absolute). *n_submitted (may be NULL): the cells in the array.
int grid_write_slurm(const Grid *g, const char *out_path, const char *exe, int *n_submitted);

// The kanoclip binary to run cells with: $KANOCLIP_BIN, else /proc/self/exe. Static string.
const char *grid_self_exe(void);

#endif
