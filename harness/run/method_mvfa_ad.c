// MVFA-AD (Huang et al. 2024, "Adapting Visual-Language Models for Generalizable Anomaly Detection in Medical
// Images"), zero-shot: segmentation and detection adapters in the residual stream after four layers of the frozen
// CLIP, trained on the auxiliary data; the head is model/baselines.h's (model/baseline_mvfa.c), its published
// setting baseline_config_defaults' and its switches train.baseline.* (experiments/defaults.yaml). Its own part
// here: a batch without pixel ground truth (image-level data) trains the detection adapters alone, as its
// train_zero.py does for the datasets without masks.
#include "harness/run/method_baseline.h"
#include "harness/run/log.h"

static MethodHead *mvfa_open(const Settings *s, ClipModel *model, Tokenizer *tok, const char *feat_dir) {
    MethodHead *mh = baseline_head_open(s, model, tok, feat_dir);
    if (!mh) return NULL;
    const BaselineConfig *c = ((BaselineHead *)mh)->bc;
    log_msg("method: mvfa-ad caches the stream after layer %d; its adapters and the layers after it run in the head "
            "(CPU), x <- %g x + %g (seg + det) after each map layer; pixels %s", c->layers[0],
            c->adapter_keep, c->adapter_mix, c->pixel_norm ? "normalised" : "in [0, 1], not normalised");
    return mh;
}

static int mvfa_train_step(MethodHead *mh, MethodBatch *b, MethodLosses *out) {
    BaselineHead *h = (BaselineHead *)mh;
    if (baseline_head_load(h, b->idx, b->B) < 0) return -1;
    MethodBatch mb = *b;
    if (!b->pixel_gt) mb.mask = NULL;
    return baseline_head_step_loaded(h, &mb, out);
}

const Method METHOD_MVFA_AD = {
    .name = "mvfa-ad", .label = "MVFA-AD", .baseline = BL_MVFA, .learns = 1, BASELINE_METHOD_OPS_BUT_OPEN,
    .open = mvfa_open, .train_step = mvfa_train_step,
};
