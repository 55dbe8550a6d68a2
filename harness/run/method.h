// A method the harness can run, as one descriptor: its name and label, whether it learns, and the operations the
// one pipeline (experiment_exec.c) calls: open a head on the backbone, prepare a dataset (its features, from the
// HDF5 cache, and its text for the dataset's classes), one training step, scoring of a batch, and the resumable
// state. The table (methods.c) lists KAnoCLIP and the six baselines; adding a method is its file
// (method_<name>.c), one line in the table, its config and its tests.
#ifndef HARNESS_METHOD_H
#define HARNESS_METHOD_H

#include "model/baselines.h"

typedef struct Settings Settings;
typedef struct ClipModel ClipModel;
typedef struct Tokenizer Tokenizer;
typedef struct ExecDataset ExecDataset;
typedef struct MethodHead MethodHead;  // one method's head and buffers for one run

#define METHOD_MAX_LOSSES 8

// One training step's loss terms, in the order of Method.loss_names (the first is the total), and monitors
// written to log.txt only.
typedef struct {
    double loss[METHOD_MAX_LOSSES];
    double monitor[METHOD_MAX_LOSSES];
} MethodLosses;

// A training batch: B samples idx of the prepared training dataset, their labels, local classes and masks
// (B,S,S) at the method's input size (0/1 floats). A method may replace samples (April-GAN's mosaics), masks and
// labels included. pixel_gt: 1 when every sample has pixel ground truth (exec_dataset_mask), 0 when some has
// none (image-level data: its mask is all zero; MVFA-AD then trains its detection adapters alone).
typedef struct {
    int B;
    const int *idx;
    int *label, *cls;
    float *mask;
    int pixel_gt;
    int epoch, step_in_epoch;  // 0-based: what a method's random draws may depend on (resumes draw the same)
} MethodBatch;

typedef enum { METHOD_ROLE_TRAIN = 0, METHOD_ROLE_EVAL = 1 } MethodRole;

typedef struct Method {
    const char *name;              // train.method
    const char *label;             // the tables' name when report.label is empty
    int is_baseline;
    BaselineMethod baseline;       // which baseline head (is_baseline)
    int learns;                    // has a training step
    int train_set_always;          // reads data.train even with train.epochs 0 (KAnoCLIP: prompts per class)
    int n_losses;                  // columns of train_log.csv after step,epoch
    const char *loss_names[METHOD_MAX_LOSSES];
    int n_monitors;
    const char *monitor_names[METHOD_MAX_LOSSES];

    // A head for this run on the loaded backbone; feat_dir is the feature cache folder. NULL with err_set.
    MethodHead *(*open)(const Settings *s, ClipModel *model, Tokenizer *tok, const char *feat_dir);
    // Makes d the dataset the next steps or scores read: its features (extracted into the cache where missing)
    // and its classes' text. Evaluation datasets keep the trained parameters. -1 with err_set.
    int (*prepare)(MethodHead *h, ExecDataset *d, MethodRole role);
    // d's features in the cache, nothing else (no text, no training state): shard `shard` of cache.shards into its
    // shard file, or with shard -1 the whole cache (merged from shards when there are some). Nothing for features
    // a method does not cache (WinCLIP's windows). -1 with err_set.
    int (*features)(MethodHead *h, ExecDataset *d, int shard);
    // One optimiser step on a batch of the prepared training dataset (learns only).
    int (*train_step)(MethodHead *h, MethodBatch *b, MethodLosses *out);
    // Scores B images of one class of the prepared dataset: maps (B,S,S), scores (B) (eval_loop.h EvalScoreFn).
    int (*score)(void *h, const int *idx, const int *cls, int B, float *maps, float *scores);
    int (*save)(MethodHead *h, const char *path);
    int (*load)(MethodHead *h, const char *path);
    long (*step)(const MethodHead *h);   // optimiser steps taken (0 for a method that does not learn)
    int (*image_size)(const MethodHead *h);  // maps and masks are this size
    void (*close)(MethodHead *h);
} Method;

// The table: KAnoCLIP, then the baselines. NULL when no method has that name.
const Method *method_find(const char *name);
// "kanoclip clip clip-ac winclip april-gan anomalyclip mvfa-ad", for messages.
const char *method_names(void);

#endif
