// Device dispatch for the CLIP towers (see model/towers.h).
//
// The CUDA runs are referenced weakly: the AddressSanitizer test builds link the C objects only, without the
// .cu ones, and there these symbols are NULL, which reads as "built without CUDA".
#include "model/towers.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#ifdef KANOCLIP_CUDA
#include "model/cuda/clip_cuda.h"
#include "model/cuda/ops_cuda.h"
#pragma weak clip_vision_cuda_new
#pragma weak clip_vision_cuda_free
#pragma weak clip_vision_cuda_tokens
#pragma weak clip_vision_cuda_forward
#pragma weak clip_vision_cuda_submit
#pragma weak clip_vision_cuda_finish
#pragma weak clip_text_cuda_new
#pragma weak clip_text_cuda_free
#pragma weak clip_text_cuda_forward
#pragma weak clip_text_cuda_backward
#pragma weak cuda_ops_set_precision
#endif

// 0 when CUDA can run here; -1 with device_select's message otherwise.
static int cuda_ready(void) {
    DeviceKind k;
    if (device_select("cuda", &k)) return -1;
#ifdef KANOCLIP_CUDA
    if (!clip_vision_cuda_new || !cuda_ops_set_precision)
        return err_set("CUDA was asked for, but this binary was built without CUDA (its CUDA objects are not "
                       "linked in)");
#endif
    return 0;
}

struct VisionTower {
    DeviceKind device;
    GemmPrecision precision;
    ClipVisionRun *cpu;
    void *cuda;  // ClipVisionCuda
};

VisionTower *vision_tower_new(const ClipVision *v, int image_size, ClipPosResize mode, DeviceKind device,
                              GemmPrecision precision) {
    if (device == DEVICE_CUDA && cuda_ready()) return NULL;
    VisionTower *t = calloc(1, sizeof *t);
    if (!t) { err_set("vision tower: out of memory"); return NULL; }
    t->device = device;
    t->precision = precision;
#ifdef KANOCLIP_CUDA
    if (device == DEVICE_CUDA) t->cuda = clip_vision_cuda_new(v, image_size, mode);
    else
#endif
        t->cpu = clip_vision_run_new(v, image_size, mode);
    if (!t->cpu && !t->cuda) { free(t); return NULL; }
    return t;
}

void vision_tower_free(VisionTower *t) {
    if (!t) return;
    clip_vision_run_free(t->cpu);
#ifdef KANOCLIP_CUDA
    if (t->cuda) clip_vision_cuda_free(t->cuda);
#endif
    free(t);
}

int vision_tower_tokens(const VisionTower *t) {
#ifdef KANOCLIP_CUDA
    if (t->cuda) return clip_vision_cuda_tokens(t->cuda);
#endif
    return clip_vision_tokens(t->cpu);
}

int vision_tower_submit(VisionTower *t, const float *pixels, int B, const ClipVisionOut *out) {
#ifdef KANOCLIP_CUDA
    if (t->cuda) {
        cuda_ops_set_precision(t->precision);
        return clip_vision_cuda_submit(t->cuda, pixels, B, out);
    }
#endif
    return clip_vision_forward(t->cpu, pixels, B, out);
}

int vision_tower_finish(VisionTower *t) {
#ifdef KANOCLIP_CUDA
    if (t->cuda) return clip_vision_cuda_finish(t->cuda);
#endif
    return 0;
}

int vision_tower_forward(VisionTower *t, const float *pixels, int B, const ClipVisionOut *out) {
    if (vision_tower_submit(t, pixels, B, out)) return -1;
    return vision_tower_finish(t);
}

struct TextTower {
    DeviceKind device;
    GemmPrecision precision;
    const ClipText *text;
    ClipTextRun *cpu;
    void *cuda;  // ClipTextCuda
};

TextTower *text_tower_new(const ClipText *text, int keep_for_backward, DeviceKind device, GemmPrecision precision) {
    if (device == DEVICE_CUDA && cuda_ready()) return NULL;
    TextTower *t = calloc(1, sizeof *t);
    if (!t) { err_set("text tower: out of memory"); return NULL; }
    t->device = device;
    t->precision = precision;
    t->text = text;
#ifdef KANOCLIP_CUDA
    if (device == DEVICE_CUDA) t->cuda = clip_text_cuda_new(text, keep_for_backward);
    else
#endif
        t->cpu = clip_text_run_new(text, keep_for_backward);
    if (!t->cpu && !t->cuda) { free(t); return NULL; }
    return t;
}

void text_tower_free(TextTower *t) {
    if (!t) return;
    clip_text_run_free(t->cpu);
#ifdef KANOCLIP_CUDA
    if (t->cuda) clip_text_cuda_free(t->cuda);
#endif
    free(t);
}

int text_tower_forward(TextTower *t, const float *embeds, const int *eot, int B, int T, float *text_embeds) {
#ifdef KANOCLIP_CUDA
    if (t->cuda) {
        cuda_ops_set_precision(t->precision);
        return clip_text_cuda_forward(t->cuda, embeds, eot, B, T, text_embeds);
    }
#endif
    return clip_text_forward(t->cpu, embeds, eot, B, T, text_embeds);
}

int text_tower_forward_ids(TextTower *t, const int *ids, int B, int T, float *text_embeds) {
    if (t->cpu) return clip_text_forward_ids(t->cpu, ids, B, T, text_embeds);
    const ClipText *text = t->text;
    if (B <= 0 || T <= 0 || T > text->context_length)
        return err_set("text tower: %d texts of %d tokens (the context is %d)", B, T, text->context_length);
    float *embeds = malloc(sizeof(float) * B * T * text->shape.width);
    int *eot = malloc(sizeof(int) * B), rc = -1;
    if (!embeds || !eot) { err_set("text tower: out of memory"); goto done; }
    for (int b = 0; b < B; b++)
        if ((eot[b] = clip_text_eot(text, ids + (size_t)b * T, T)) < 0) {
            err_set("text tower: text %d has no end-of-text token (%d)", b, text->eos_token_id);
            goto done;
        }
    if (clip_text_token_embeddings(text, ids, B, T, embeds) < 0) goto done;
    rc = text_tower_forward(t, embeds, eot, B, T, text_embeds);
done:
    free(embeds);
    free(eot);
    return rc;
}

int text_tower_backward(TextTower *t, float *dembeds, const float *dtext_embeds) {
#ifdef KANOCLIP_CUDA
    if (t->cuda) {
        cuda_ops_set_precision(t->precision);
        return clip_text_cuda_backward(t->cuda, dembeds, dtext_embeds);
    }
#endif
    return clip_text_backward(t->cpu, dembeds, dtext_embeds);
}
