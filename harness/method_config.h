// The KAnoCLIP configuration of a run: the `method:` switches of the YAML config, sizes from the backbone
// (projection dim, text width, patch grid at model.image_size, stages = model.layers), the optimiser from
// train.* and the seed from run.seed.
#ifndef HARNESS_METHOD_CONFIG_H
#define HARNESS_METHOD_CONFIG_H

#include "harness/config.h"
#include "model/checkpoint.h"
#include "model/kanoclip_config.h"

// -1 with err_set naming the key at fault (or the inconsistency, e.g. a stage layer deeper than the tower).
int method_config_from(const Config *cfg, const ClipConfig *clip, KanoclipConfig *out);

// The feature side of the method as the cache needs it: input size, stage layers (n <= 8), V-V start
// (model.vv_from; 0 = CLIP-VV off), global ln_post. -1 with err_set.
typedef struct {
    int image_size;
    int n_layers, layers[8];
    int vv_from;
    int global_ln_post;
    int pos_bicubic;
} BackboneSettings;
int backbone_settings_from(const Config *cfg, BackboneSettings *out);

#endif
