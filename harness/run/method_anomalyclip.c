// AnomalyCLIP (Zhou et al. 2024): object-agnostic learnable prompts, deep text prompts, the V-V path.
// The head is model/baselines.h's; the method's published setting is baseline_config_defaults' and its switches
// are train.baseline.* (experiments/defaults.yaml).
#include "harness/run/method_baseline.h"

const Method METHOD_ANOMALYCLIP = {
    .name = "anomalyclip", .label = "AnomalyCLIP", .baseline = BL_ANOMALYCLIP, .learns = 1, BASELINE_METHOD_OPS,
    .train_step = baseline_head_train_step,
};
