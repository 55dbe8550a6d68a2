// The frozen CLIP towers on the CPU (Hugging Face CLIPModel semantics; docs/reference/engine-anchors.md §3.3).
//
// Vision: patch embedding (conv stride p, no bias, as im2col + GEMM), class token, positional embedding resized
// to the input grid when the input size differs from the checkpoint's, pre-LN, pre-norm blocks, post-LN class
// token times the visual projection. Optional CLIP-VV path (docs/reference/kanoclip-components.md §3.4) and intermediate layers.
// Text: token + positional embeddings, causal blocks, final LN, pooling at the EOT position, projection; a
// backward to the input embeddings only (the weights are frozen), for prompt learning.
//
// Layers are counted as Hugging Face's hidden_states: layer 0 is the pre-LN'd embedding (vision) or the
// embedding (text), layer l (1-based) the residual stream after encoder block l.
#ifndef MODEL_CLIP_MODEL_H
#define MODEL_CLIP_MODEL_H

#include <stdint.h>

#include "model/checkpoint.h"

// One pre-norm transformer block. W = width, I = mlp width.
typedef struct {
    const float *ln1_w, *ln1_b;  // (W)
    const float *qkv_w;          // (3W, W) q|k|v rows packed at load, so one GEMM makes all three
    const float *qkv_b;          // (3W)
    const float *out_w, *out_b;  // (W, W), (W)
    const float *ln2_w, *ln2_b;  // (W)
    const float *fc1_w, *fc1_b;  // (I, W), (I)
    const float *fc2_w, *fc2_b;  // (W, I), (W)
    // the same four weights packed for the GEMM kernel by clip_vision_prepack (NULL: packed per call)
    const float *qkv_p, *out_p, *fc1_p, *fc2_p;
} ClipBlock;

typedef struct {
    TowerShape shape;
    int vocab_size, context_length, eos_token_id, proj_dim;
    const float *token_embedding;          // (V, W)
    const float *position_embedding;       // (context_length, W)
    ClipBlock *blocks;                     // (layers)
    const float *final_ln_w, *final_ln_b;  // (W)
    const float *projection;               // (P, W)
    float *packed;                         // owned: every block's q|k|v weights then biases
} ClipText;

typedef struct {
    TowerShape shape;
    int image_size, patch_size, channels, proj_dim;
    int grid;                              // image_size / patch_size: the positional grid of the weights
    const float *class_embedding;          // (W)
    const float *patch_weight;             // (W, channels*p*p), the conv kernel flattened (c, ky, kx)
    const float *position_embedding;       // (grid*grid + 1, W), row 0 the class position
    const float *pre_ln_w, *pre_ln_b;      // (W)
    ClipBlock *blocks;                     // (layers)
    const float *post_ln_w, *post_ln_b;    // (W)
    const float *projection;               // (P, W)
    float *packed;                         // owned: every block's q|k|v weights then biases
    float *prepacked;                      // owned: the GEMM-kernel layout of the weights (clip_vision_prepack)
    const float *patch_p;                  // patch_weight packed, or NULL
} ClipVision;

// A source of named float32 tensors with an expected shape (a checkpoint; tests may bring another).
// Returns NULL with err_set naming the tensor when it is missing or shaped differently.
typedef const float *(*ClipTensorFn)(void *src, const char *name, const int64_t *shape, int ndim);

// Binds a tower's weights from the source (Hugging Face names text_model.* / vision_model.* and the two
// projections); shapes come from cfg. 0, or -1 with err_set naming the tensor.
int clip_text_bind(ClipText *t, const ClipConfig *cfg, ClipTensorFn get, void *src);
int clip_vision_bind(ClipVision *v, const ClipConfig *cfg, ClipTensorFn get, void *src);
void clip_text_release(ClipText *t);
void clip_vision_release(ClipVision *v);
// Packs the vision tower's GEMM weights once into the kernel's layout (memory: one more copy of them), so
// forwards skip packing per call: worth it for many images (a batch-1 ViT-B/16 forward spends about a third of
// its time packing), not for one. 0 (nothing to do on builds without the packed kernel), -1 out of memory.
int clip_vision_prepack(ClipVision *v);

enum { CLIP_TEXT = 1, CLIP_VISION = 2 };

// A checkpoint folder with the towers asked for (CLIP_TEXT | CLIP_VISION) bound; the other tower's weights are
// never read (nor converted, for F16/BF16 files).
typedef struct ClipModel {
    ClipConfig cfg;
    Checkpoint *ck;
    int towers;
    ClipText text;
    ClipVision vision;
} ClipModel;

ClipModel *clip_model_load(const char *dir, int towers);  // NULL with err_set naming file/tensor/key
void clip_model_free(ClipModel *m);

// ---------------------------------------------------------------------------------------------------------------
// Text tower

// Where row ids (T) pools: the first eos_token_id (49407), or for the legacy eos_token_id 2 the argmax of the
// ids (first maximum). -1 when the row has no end-of-text token.
int clip_text_eot(const ClipText *t, const int *ids, int T);
// embeds (B,T,W) = token embeddings of ids (B,T), positions not added. -1 with err_set for an id out of range.
int clip_text_token_embeddings(const ClipText *t, const int *ids, int B, int T, float *embeds);

typedef struct ClipTextRun ClipTextRun;
// Activations for one forward, grown as batches need. keep_for_backward: store what clip_text_backward needs
// (the inputs of the LayerNorms, q|k|v, attention probabilities, MLP pre-activations: no weight gradients).
ClipTextRun *clip_text_run_new(const ClipText *t, int keep_for_backward);
void clip_text_run_free(ClipTextRun *r);

// text_embeds (B,P) from input embeddings embeds (B,T,W) (token embeddings, context vectors written over some
// positions; positions are added here), pooled at eot (B). Only positions up to the largest eot are computed
// (causal attention: later positions cannot change the pooled row). -1 with err_set on bad arguments.
int clip_text_forward(ClipTextRun *r, const float *embeds, const int *eot, int B, int T, float *text_embeds);
// text_embeds (B,P) from token ids (B,T) (get_text_features). -1 with err_set for a bad id or a row without EOT.
int clip_text_forward_ids(ClipTextRun *r, const int *ids, int B, int T, float *text_embeds);
// After clip_text_forward on a keep_for_backward run: dembeds (B,T,W) += d<text_embeds, dtext_embeds>/d embeds
// for dtext_embeds (B,P). Positions past the largest eot get no gradient (they do not reach the output).
// -1 with err_set when the run does not keep activations or holds no forward.
int clip_text_backward(ClipTextRun *r, float *dembeds, const float *dtext_embeds);

// ---------------------------------------------------------------------------------------------------------------
// Vision tower

// bicubic: aten's upsample_bicubic2d (A = -0.75, no antialias); bicubic-aa: F.interpolate(mode="bicubic",
// antialias=True), open_clip's resize_pos_embed (Keys A = -0.5, support 2 x the downscale, weights normalised;
// on upsampling equal to Pillow's bicubic).
typedef enum { CLIP_POS_BILINEAR = 0, CLIP_POS_BICUBIC = 1, CLIP_POS_BICUBIC_AA = 2 } ClipPosResize;

// "bilinear", "bicubic", "bicubic-aa": the config words (model.pos_interp), in enum order.
const char *clip_pos_resize_name(ClipPosResize mode);

// pos_out (g*g+1, W): the checkpoint's positional embedding for an input grid g (the class row kept, the patch
// rows resized as a W-channel image, align_corners = False, as PyTorch's F.interpolate and AnomalyCLIP).
void clip_resize_positions(float *pos_out, const float *pos, int grid_in, int grid_out, int W, ClipPosResize mode);

typedef struct ClipVisionRun ClipVisionRun;
// A run at input size image_size (>= patch_size; grid = image_size / patch_size, leftover pixels ignored as the
// strided conv does). NULL with err_set for a bad size.
ClipVisionRun *clip_vision_run_new(const ClipVision *v, int image_size, ClipPosResize mode);
void clip_vision_run_free(ClipVisionRun *r);
int clip_vision_tokens(const ClipVisionRun *r);  // T = grid² + 1

// What one forward writes; every field optional (NULL / 0). Buffers are the caller's.
typedef struct {
    float *image_embeds;       // (B,P) post-LN class token · visual projection (get_image_features)
    float *image_embeds_noln;  // (B,P) class token · visual projection, no post-LN (AnomalyCLIP's global feature)
    int n_hidden;
    const int *hidden_layers;  // (n_hidden) layers 0..L
    float **hidden;            // hidden[i] (B,T,W): the residual stream after layer hidden_layers[i]
    // CLIP-VV: V-V path S beside the original O. S_l = O_l for l < vv_from; for l >= vv_from
    // S_l = S_{l-1} + out_proj_l(MHA(V_l, V_l, V_l)), V_l = v_proj_l(LN1_l(O_{l-1})), no MLP; all T rows (the
    // class row too) follow this rule. vv_from = 0: no V-V path (then vv layers and stages read O).
    int vv_from;
    int n_vv;
    const int *vv_layers;      // (n_vv) layers 0..L
    float **vv;                // vv[i] (B,T,W): S after layer vv_layers[i]
    int n_stages;
    const int *stage_layers;   // (n_stages) layers 0..L
    float **stages;            // stages[i] (B,T,P): post-LN(S_l) · visual projection, every row (row 0 = class)
} ClipVisionOut;

// pixels (B,channels,S,S), normalised. Runs only as many layers as the outputs need.
// -1 with err_set for a layer out of range or bad arguments.
int clip_vision_forward(ClipVisionRun *r, const float *pixels, int B, const ClipVisionOut *out);

// The method's stage features (design.md §3/§7): stages[i] (B,T,P) = post-LN + projection of the V-V tokens
// after stage_layers[i] (original tokens when vv_from is 0 or the layer precedes it), and global (B,P) = the
// original path's class token through post-LN (or not: global_ln_post = 0, AnomalyCLIP) and the projection.
// The outputs clip_vision_stage_features asks for, to run through another tower (model/towers.h: the GPU's).
ClipVisionOut clip_vision_stage_out(int vv_from, int n_stages, const int *stage_layers, float **stages, float *global,
                                    int global_ln_post);
int clip_vision_stage_features(ClipVisionRun *r, const float *pixels, int B, int vv_from, int n_stages,
                               const int *stage_layers, float **stages, float *global, int global_ln_post);

#endif
