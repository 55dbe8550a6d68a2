// The baselines through the experiment executor (train.method: clip | clip-ac | winclip | april-gan | anomalyclip):
// the head from train.method / train.baseline.* (baseline_setup.h), the frozen vision features in the HDF5 feature
// cache keyed by method and feature shape (WinCLIP, whose features are whole-tower runs per window, scores from
// pixels), training of April-GAN and AnomalyCLIP for train.epochs over the training dataset with the head's state
// (parameters + Adam) saved to state.bin after every epoch (a run with state.bin resumes; the shuffle of epoch e
// depends only on (run.seed, e), so a resumed run ends where an uninterrupted one does; KANOCLIP_STOP_AFTER_EPOCHS
// stops it as in train_loop.h), then every eval dataset through eval_dataset_scored, the same metrics as KAnoCLIP.
#ifndef HARNESS_EXEC_BASELINE_H
#define HARNESS_EXEC_BASELINE_H

#include "harness/config.h"
#include "harness/eval_loop.h"
#include "harness/exec_dataset.h"
#include "harness/run_dir.h"
#include "harness/train_loop.h"
#include "model/baselines.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

// The display name of a method for tables when report.label is empty: "CLIP", "CLIP-AC", "WinCLIP", "April-GAN",
// "AnomalyCLIP".
const char *baseline_display_label(BaselineMethod m);

// Trains (when the method learns) and evaluates; res (n_eval) filled as eval_dataset does, ts the training
// summary. feat_dir: the feature cache folder. -1 with err_set (the run stays resumable).
int exec_baseline(Run *run, const Config *cfg, const BaselineConfig *bc, ClipModel *model, Tokenizer *tok,
                  ExecDataset *train, ExecDataset *ev, int n_eval, const char *feat_dir, EvalResult *res,
                  TrainSummary *ts);

#endif
