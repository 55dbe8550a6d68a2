// The frozen CLIP towers on a CUDA device: the same computations as model/clip_vision.c and model/clip_text.c,
// op for op through model/cuda/ops_cuda.h, with the weights uploaded once (one device allocation per tower) and
// activations allocated once per batch size and reused. Inputs and outputs are host buffers in the CPU API's
// layouts, so a caller switches device without changing its buffers. Only with KANOCLIP_CUDA. (The towers are
// .cu files although they launch no kernel themselves: only .cu objects stay out of the AddressSanitizer builds.)
//
// Overlap: clip_vision_cuda_submit copies the pixels into pinned memory and queues the whole forward (upload,
// layers, downloads into pinned memory) on the op stream, then returns; the caller decodes and preprocesses the
// next batch on its CPU threads while the GPU works, and clip_vision_cuda_finish waits and hands the outputs over.
#ifndef MODEL_CUDA_CLIP_CUDA_H
#define MODEL_CUDA_CLIP_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "model/clip_model.h"

typedef struct ClipVisionCuda ClipVisionCuda;
// Uploads v's weights and the positional embedding at image_size. Needs cuda_ops_init. NULL with err_set.
ClipVisionCuda *clip_vision_cuda_new(const ClipVision *v, int image_size, ClipPosResize mode);
void clip_vision_cuda_free(ClipVisionCuda *r);
int clip_vision_cuda_tokens(const ClipVisionCuda *r);
// As clip_vision_forward (same outputs, same layer rules), synchronous.
int clip_vision_cuda_forward(ClipVisionCuda *r, const float *pixels, int B, const ClipVisionOut *out);
// Queues a forward and returns; out's buffers are written by clip_vision_cuda_finish. One batch in flight.
int clip_vision_cuda_submit(ClipVisionCuda *r, const float *pixels, int B, const ClipVisionOut *out);
int clip_vision_cuda_finish(ClipVisionCuda *r);
// GPU time of the last finished forward in ms (from the pixel upload to the last download, by CUDA events).
double clip_vision_cuda_last_gpu_ms(const ClipVisionCuda *r);
// FLOPs of one image's forward through all layers (2 per multiply-add; GEMMs and attention), for benchmarks.
double clip_vision_flops_per_image(const ClipVision *v, int image_size);

typedef struct ClipTextCuda ClipTextCuda;
// Uploads t's blocks, positions, final LN and projection (not the token table: inputs are embeddings).
ClipTextCuda *clip_text_cuda_new(const ClipText *t, int keep_for_backward);
void clip_text_cuda_free(ClipTextCuda *r);
// As clip_text_forward / clip_text_backward (host buffers; dembeds accumulates).
int clip_text_cuda_forward(ClipTextCuda *r, const float *embeds, const int *eot, int B, int T, float *text_embeds);
int clip_text_cuda_backward(ClipTextCuda *r, float *dembeds, const float *dtext_embeds);

#ifdef __cplusplus
}
#endif

#endif
