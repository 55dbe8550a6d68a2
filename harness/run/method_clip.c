// CLIP (Radford et al. 2021): two fixed prompts per class, scale 100, the last layer's patch tokens.
// The head is model/baselines.h's; the method's published setting is baseline_config_defaults' and its switches
// are train.baseline.* (experiments/defaults.yaml).
#include "harness/run/method_baseline.h"

const Method METHOD_CLIP = {
    .name = "clip", .label = "CLIP", .baseline = BL_CLIP, .learns = 0, BASELINE_METHOD_OPS,
    .train_step = baseline_head_train_step,
};
