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
} GridCell;

typedef struct Grid Grid;

// Loads the grid file and composes every cell's config (errors name the file, the cell and the key).
Grid *grid_load(const char *path);
void grid_free(Grid *g);
int grid_n_cells(const Grid *g);
const GridCell *grid_cell(const Grid *g, int i);
const char *grid_dir(const Grid *g);
const char *grid_name(const Grid *g);

// Writes cells/ and cells.tsv. When cells.tsv exists with other cells, fails (the grid changed after freezing)
// unless refreeze is set.
int grid_freeze(Grid *g, int refreeze);
// 2 done (DONE), 1 partial (folder without DONE), 0 not started.
int grid_cell_state(const GridCell *c);

// A Slurm submission script: `bash OUT.sh` submits an array job (one cell per task) and a dependent
// (afterok) job that runs `kanoclip tables` over the cells' run folders. exe: the kanoclip binary (absolute).
int grid_write_slurm(const Grid *g, const char *out_path, const char *exe);

// The kanoclip binary to run cells with: $KANOCLIP_BIN, else /proc/self/exe. Static string.
const char *grid_self_exe(void);

#endif
