// CLIP-AC (from WinCLIP's paper): binary zero-shot CLIP with the prompts "normal [o]" / "anomalous [o]" through the
// ImageNet template ensemble, as the AnomalyCLIP paper's tables run it; it reads CLIP's feature cache.
// The head is model/baselines.h's; the method's published setting is baseline_config_defaults' and its switches
// are train.baseline.* (experiments/defaults.yaml).
#include "harness/run/method_baseline.h"

const Method METHOD_CLIP_AC = {
    .name = "clip-ac", .label = "CLIP-AC", .baseline = BL_CLIP_AC, .learns = 0, BASELINE_METHOD_OPS,
    .train_step = baseline_head_train_step,
};
