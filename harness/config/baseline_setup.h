// The baselines' head configuration from a composed experiment config (model/baselines.h): the glue between
// train.method / train.baseline.* (experiments/defaults.baselines.yaml) and BaselineConfig.
#ifndef HARNESS_BASELINE_SETUP_H
#define HARNESS_BASELINE_SETUP_H

#include "harness/config/config.h"
#include "model/baselines.h"

// Fills out from cfg when train.method names a baseline: the method's published defaults at the checkpoint's
// vision depth, then model.image_size (input = map size), model.pos_interp, model.vv_from (AnomalyCLIP),
// train.lr/beta1/beta2, run.seed, then every train.baseline.* switch that is set. Returns 1 when filled, 0 when
// train.method is not a baseline (out untouched), -1 with err_set naming the key and where its value came from.
int baseline_config_from(const Config *cfg, int vision_layers, BaselineConfig *out);

#endif
