// Training over cached features: train.epochs passes in seeded shuffled mini-batches of train.batch_size, the
// ground-truth masks at the input size, each loss term to train_log.csv (every train.log_every steps, the mean
// since the previous row), the three cosine monitors and the mean losses per epoch to log.txt, and the state
// (parameters, Adam moments, step) saved atomically to state.bin every train.checkpoint_every epochs and at the
// end. A run with state.bin continues from it: the epoch comes from the saved step, and the shuffle of epoch e
// depends only on (run.seed, e), so a resumed run ends with the parameters of an uninterrupted one.
// Test hook: with KANOCLIP_STOP_AFTER_EPOCHS=k in the environment, training stops (as a kill would, an error)
// after k epochs of this invocation.
#ifndef HARNESS_TRAIN_LOOP_H
#define HARNESS_TRAIN_LOOP_H

#include "harness/cache_feature.h"
#include "harness/config.h"
#include "harness/exec_dataset.h"
#include "harness/run_dir.h"
#include "model/kanoclip.h"

typedef struct {
    double first_epoch_loss, last_epoch_loss;  // mean total loss of the first and last epoch trained now
    int epochs_run;                            // epochs trained in this call (0 when state.bin was complete)
} TrainSummary;

int train_run(Run *run, const Config *cfg, Kanoclip *m, const ExecDataset *d, FeatureCache *fc, TrainSummary *out);

// Batch loading shared with evaluation: features of samples idx[0..B) into stage (B, n_stages, T, P) and
// global (B, P). -1 with err_set.
int train_load_features(FeatureCache *fc, const int *idx, int B, int n_stages, int T, int P, float *stage, float *global);

// The sample order of epoch e (0-based): a Fisher-Yates shuffle of 0..n-1 seeded by (seed, e) alone, so a
// resumed run sees the orders of an uninterrupted one. Shared with the baselines' training (exec_baseline.c).
void train_epoch_order(int *order, int n, unsigned long long seed, int epoch);

// Resuming: the epoch after a saved state's Adam step (which must lie on an epoch boundary, and not past
// train.epochs; the error names the state file), logged; and train_log.csv (with this header) trimmed back to the
// rows up to step `last` (rows a killed run wrote after its last saved state are written again), or created.
int train_resume_epoch(const char *state, long step, int steps_per_epoch, long epochs, int *start_epoch);
int train_log_trim(const char *path, const char *header, long last);

#endif
