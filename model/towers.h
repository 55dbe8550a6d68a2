// The CLIP towers on the device a run asks for (`device: cpu|cuda`, `precision: fp32|tf32|bf16`): one handle
// over model/clip_model.h's CPU runs and model/cuda/clip_cuda.h's CUDA runs, with the same host buffers either
// way, so a caller (kanoclip embed, the training loop) switches device by one argument. Asking for CUDA where it
// cannot run fails at creation with device_select's message; nothing falls back silently.
#ifndef MODEL_TOWERS_H
#define MODEL_TOWERS_H

#include "model/clip_model.h"
#include "model/device.h"

typedef struct VisionTower VisionTower;
// NULL with err_set (a bad size; "CUDA was asked for, but ...").
VisionTower *vision_tower_new(const ClipVision *v, int image_size, ClipPosResize mode, DeviceKind device,
                              GemmPrecision precision);
void vision_tower_free(VisionTower *t);
int vision_tower_tokens(const VisionTower *t);
// As clip_vision_forward.
int vision_tower_forward(VisionTower *t, const float *pixels, int B, const ClipVisionOut *out);
// Overlap: submit queues the batch and returns (on the CPU it runs it at once); finish delivers the outputs.
// Between the two the caller decodes and preprocesses the next batch. One batch in flight.
int vision_tower_submit(VisionTower *t, const float *pixels, int B, const ClipVisionOut *out);
int vision_tower_finish(VisionTower *t);

typedef struct TextTower TextTower;
TextTower *text_tower_new(const ClipText *t, int keep_for_backward, DeviceKind device, GemmPrecision precision);
void text_tower_free(TextTower *t);
// As clip_text_forward, clip_text_forward_ids and clip_text_backward.
int text_tower_forward(TextTower *t, const float *embeds, const int *eot, int B, int T, float *text_embeds);
int text_tower_forward_ids(TextTower *t, const int *ids, int B, int T, float *text_embeds);
int text_tower_backward(TextTower *t, float *dembeds, const float *dtext_embeds);

#endif
