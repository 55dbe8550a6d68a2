// WinCLIP (Jeong et al. 2023), zero-shot: window embeddings at two scales, harmonic aggregation; scored from pixels.
// The head is model/baselines.h's; the method's published setting is baseline_config_defaults' and its switches
// are train.baseline.* (experiments/defaults.yaml).
#include "harness/run/method_baseline.h"

const Method METHOD_WINCLIP = {
    .name = "winclip", .label = "WinCLIP", .baseline = BL_WINCLIP, .learns = 0, BASELINE_METHOD_OPS,
    .train_step = baseline_head_train_step,
};
