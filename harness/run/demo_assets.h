// What the demo (and the tests) generate instead of downloading: the synthetic dataset of data.synthetic and a
// tiny random CLIP checkpoint in the Hugging Face layout (model.random), each only when its folder is absent.
#ifndef HARNESS_DEMO_ASSETS_H
#define HARNESS_DEMO_ASSETS_H

#include "harness/config/settings.h"

// Generates what the config asks for and is missing. -1 with err_set naming the key or path at fault.
int demo_assets_prepare(const Settings *s);

// The zero-shot class split of the synthetic dataset: when data.synthetic is enabled, root is data.synthetic.out
// and data.synthetic.train_classes = k > 0, the first k generated classes belong to the training dataset and the
// others to evaluation. Returns 1 when class_name is used in that role (train_role 1: data.train, 0: eval), 0
// when it is not; every class of any other root is used.
int demo_synthetic_class_used(const Settings *s, const char *root, int train_role, const char *class_name);

#endif
