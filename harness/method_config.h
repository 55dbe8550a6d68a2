// The KAnoCLIP configuration of a run: the `method:` switches of the YAML config, sizes from the backbone
// (projection dim, text width, patch grid at model.image_size, stages = model.layers), the optimiser from
// train.* and the seed from run.seed.
#ifndef HARNESS_METHOD_CONFIG_H
#define HARNESS_METHOD_CONFIG_H

#include "harness/config.h"
#include "model/checkpoint.h"
#include "model/device.h"
#include "model/kanoclip_config.h"

// run.device (cpu | cuda, through device_select: CUDA asked for where it cannot run is an error naming
// run.device) and run.precision (fp32 | tf32 | bf16). -1 with err_set.
int run_device_from(const Config *cfg, DeviceKind *device, GemmPrecision *precision);

// 1 when the run reads data.train: KAnoCLIP (its prompts, knowledge base and heads), April-GAN and AnomalyCLIP
// when train.epochs > 0; 0 for the training-free baselines (CLIP, CLIP-AC, WinCLIP), which then need no training
// set on disk. -1 with err_set for an unknown train.method.
int run_uses_training_data(const Config *cfg);

// -1 with err_set naming the key at fault (or the inconsistency, e.g. a stage layer deeper than the tower).
int method_config_from(const Config *cfg, const ClipConfig *clip, KanoclipConfig *out);

// The feature side of the method as the cache needs it: input size, stage layers (n <= 8), V-V start
// (model.vv_from; 0 = CLIP-VV off), global ln_post, and the run's device and precision. -1 with err_set.
typedef struct {
    int image_size;
    int n_layers, layers[8];
    int vv_from;
    int global_ln_post;
    int pos_bicubic;
    DeviceKind device;        // run.device (checked usable by device_select)
    GemmPrecision precision;  // run.precision
} BackboneSettings;
int backbone_settings_from(const Config *cfg, BackboneSettings *out);

#endif
