// What the six baselines share as methods of the pipeline (method.h): the head of model/baselines.h, its frozen
// vision features (cached per dataset, or scored from pixels when its blocks cannot share one table: WinCLIP's
// windows), one Adam step on a batch for the methods that learn, and scoring per class. Each baseline is a file
// (method_clip.c, method_clip_ac.c, method_winclip.c, method_april_gan.c, method_anomalyclip.c,
// method_mvfa_ad.c) that names its descriptor over these operations and adds what is its own (April-GAN's mosaic
// augmentation, MVFA-AD's batches without masks).
#ifndef HARNESS_METHOD_BASELINE_H
#define HARNESS_METHOD_BASELINE_H

#include "harness/run/method.h"
#include "harness/cache/cache_feature.h"
#include "harness/config/settings.h"
#include "model/baselines.h"

typedef struct {
    const Settings *s;
    const BaselineConfig *bc;
    ClipModel *model;
    const char *feat_dir;
    Baseline *b;
    BaselineFeatureShape shape;
    const ExecDataset *d;      // the prepared dataset
    FeatureCache *fc;          // its features; NULL: from pixels every time
    BaselineFeatures *f;       // capacity `cap` images; f->B set per batch
    int cap, S;
    const float *mean, *std;   // (3) the pixels' normalisation: the checkpoint's, or 0 and 1 (cfg.pixel_norm 0)
    float *pixels;             // (cap,3,S,S)
    const char **names;        // (cap) class names of a training batch
    void *own;                 // a method's own state (April-GAN's mosaic buffers), freed by own_free at close
    void (*own_free)(void *own);
} BaselineHead;

MethodHead *baseline_head_open(const Settings *s, ClipModel *model, Tokenizer *tok, const char *feat_dir);
int baseline_head_prepare(MethodHead *h, ExecDataset *d, MethodRole role);
int baseline_head_features(MethodHead *h, ExecDataset *d, int shard);
// Fills h->f with the features of samples idx[0..B) of the prepared dataset.
int baseline_head_load(BaselineHead *h, const int *idx, int B);
// One Adam step on the batch in h->f (loaded by the caller) with b's masks and labels.
int baseline_head_step_loaded(BaselineHead *h, MethodBatch *b, MethodLosses *out);
int baseline_head_train_step(MethodHead *h, MethodBatch *b, MethodLosses *out);
int baseline_head_score(void *h, const int *idx, const int *cls, int B, float *maps, float *scores);
int baseline_head_save(MethodHead *h, const char *path);
int baseline_head_load_state(MethodHead *h, const char *path);
long baseline_head_step(const MethodHead *h);
int baseline_head_image_size(const MethodHead *h);
void baseline_head_close(MethodHead *h);

// The descriptor fields every baseline shares; each names its train_step (baseline_head_train_step, or its own).
// BASELINE_METHOD_OPS_BUT_OPEN leaves .open to a method that wraps baseline_head_open (MVFA-AD).
#define BASELINE_METHOD_OPS_BUT_OPEN                                                                              \
    .is_baseline = 1, .n_losses = 1, .loss_names = {"total"},                                                     \
    .prepare = baseline_head_prepare, .features = baseline_head_features, .score = baseline_head_score,          \
    .save = baseline_head_save, .load = baseline_head_load_state, .step = baseline_head_step,                   \
    .image_size = baseline_head_image_size, .close = baseline_head_close
#define BASELINE_METHOD_OPS BASELINE_METHOD_OPS_BUT_OPEN, .open = baseline_head_open

#endif
