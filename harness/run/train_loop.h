// The one training loop, for every method that learns (method.h): train.epochs passes in seeded shuffled
// mini-batches of train.batch_size, the ground-truth masks at the method's input size, each loss term to
// train_log.csv (every train.log_every steps, the mean since the previous row), the mean losses and monitors per
// epoch to log.txt, and the method's state (parameters, Adam moments, step) saved atomically to state.bin every
// train.checkpoint_every epochs and at the end. A run with state.bin continues from it: the epoch comes from the
// saved step, and the shuffle of epoch e depends only on (run.seed, e), so a resumed run ends with the parameters of
// an uninterrupted one.
// Test hook: with KANOCLIP_STOP_AFTER_EPOCHS=k in the environment, training stops (as a kill would, an error)
// after k epochs of this invocation.
#ifndef HARNESS_TRAIN_LOOP_H
#define HARNESS_TRAIN_LOOP_H

#include "harness/config/settings.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/method.h"
#include "harness/run/run_dir.h"

typedef struct {
    double first_epoch_loss, last_epoch_loss;  // mean total loss of the run's first and last epoch (epoch_loss.csv),
                                               // whichever attempt trained them
    int epochs_total;                          // epochs in epoch_loss.csv
    int epochs_run;                            // epochs trained in this call (0 when state.bin was complete)
} TrainSummary;

// h has d prepared as its training set (method->prepare with METHOD_ROLE_TRAIN). -1 with err_set.
int train_run(Run *run, const Settings *s, const Method *m, MethodHead *h, const ExecDataset *d, TrainSummary *out);

// The sample order of epoch e (0-based): a Fisher-Yates shuffle of 0..n-1 seeded by (seed, e) alone, so a
// resumed run sees the orders of an uninterrupted one.
void train_epoch_order(int *order, int n, unsigned long long seed, int epoch);

#endif
