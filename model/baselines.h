// The ZSAD baselines as model-side scoring heads (docs/reference/zsad-anchors.md §1.1-§1.3, §1.6, §1.7): CLIP, CLIP-AC,
// WinCLIP (zero-shot), April-GAN (zero-shot), AnomalyCLIP and MVFA-AD (zero-shot), each with the switches where the
// public code and the papers differ. Entry points for a harness:
//
//   baseline_config_defaults(&cfg, method, vision_layers);       // the method's published setting
//   baseline_config_set(&cfg, key, value) / _set_list(...)       // train.baseline.* switches
//   Baseline *b = baseline_new(&cfg, model, tokenizer);          // model: ClipModel with both towers
//                                                                // (baseline_new_on: on a given backend)
//   BaselineFeatures *f = baseline_features_new(b, B);
//   baseline_extract(b, pixels, f);                              // the frozen vision tower (cacheable)
//   baseline_score_features(b, class_name, f, scores, maps);     // per-image score, (B,S,S) map at input size
//   baseline_train_step_features(b, f, masks, labels, class_names, &loss);  // April-GAN, AnomalyCLIP, MVFA-AD
//   baseline_save(b, path) / baseline_load(b, path)              // trained parameters + Adam state
//   baseline_download_params(b, host) / baseline_upload_params(b, host)
//
// Pixels are the preprocessed images at cfg.image_size, channels first (normalised with the checkpoint's mean and
// std, or only scaled to [0, 1] where cfg.pixel_norm is 0: MVFA-AD); maps come out at that same size. Image scores
// are abnormal probabilities in [0, 1] (MVFA-AD: summed over its layers, as its code sums them); maps are abnormal
// probabilities summed over the map layers (APRIL-GAN, AnomalyCLIP, MVFA-AD), then smoothed when cfg.sigma > 0.
//
// The heads run on the op table of model/backend.h (cfg.device; KANOCLIP_BACKEND=guard proves the CPU runs touch
// their buffers only through it): parameters, gradients, Adam moments and activations live there, and only losses,
// scores and maps come down. WinCLIP, which has no head, scores on the host; MVFA-AD's head (the frozen layers after
// its first adapters, model/baseline_mvfa.c) runs on the CPU backend whatever cfg.device says.
#ifndef MODEL_BASELINES_H
#define MODEL_BASELINES_H

#include <stddef.h>

#include "model/backend.h"
#include "model/clip_model.h"
#include "model/device.h"
#include "model/tokenizer.h"

typedef enum { BL_CLIP = 0, BL_CLIP_AC, BL_WINCLIP, BL_APRILGAN, BL_ANOMALYCLIP, BL_MVFA, BL_N_METHODS } BaselineMethod;

// Text templates (model/baseline_prompts.c holds the strings, copied from the public code as data).
typedef enum {
    BL_TPL_NONE = 0,    // the state sentence as is ("a photo of a normal {}.": CLIP)
    BL_TPL_IMAGENET80,  // OpenAI CLIP's 80 ImageNet templates (open_clip OPENAI_IMAGENET_TEMPLATES)
    BL_TPL_WINCLIP21,   // anomalib/zqhang WinCLIP TEMPLATES, 21 entries with the duplicate
    BL_TPL_WINCLIP22,   // the 22 unique templates without periods (caoyunkang/WinClip)
    BL_TPL_APRILGAN35,  // APRIL-GAN prompt_ensemble.py, 35 templates
} BaselineTemplates;

// How one prompt group's sentence embeddings become the group's text feature.
typedef enum {
    BL_POOL_MEAN_UNIT = 0,  // normalise each, mean, renormalise (CLIP ensembles, APRIL-GAN)
    BL_POOL_MEAN_RAW,       // mean of the raw embeddings (anomalib WinCLIP _collect_text_embeddings)
} BaselineTextPool;

typedef enum { BL_CLASS_SPACES = 0, BL_CLASS_RAW, BL_CLASS_OBJECT } BaselineClassName;

#define BL_MAX_LAYERS 8
#define BL_MAX_SCALES 4

typedef struct {
    BaselineMethod method;
    int image_size;           // input = output map size (518 for ViT-L/14@336 methods, 240 for WinCLIP)
    ClipPosResize pos_interp; // positional-embedding resize
    float logit_scale;        // cosine multiplier before the 2-way softmax: 1/0.07 or 100
    int softmax_first;        // 1: softmax on the grid, then upsample (AnomalyCLIP); 0: upsample logits (APRIL-GAN)
    int align_corners;        // of the map upsampling
    float sigma;              // Gaussian smoothing of the final map (scipy semantics, truncate 4); 0: none
    int n_layers;
    int layers[BL_MAX_LAYERS];  // 1-based encoder layers for the maps; negative counts from the end (-1 = last)
    int global_ln_post;       // image feature with post-LN (CLIP) or without (AnomalyCLIP's global)
    // prompts (CLIP, CLIP-AC, WinCLIP, APRIL-GAN)
    BaselineTemplates templates;
    BaselineTextPool text_pool;
    BaselineClassName class_name;
    // WinCLIP
    int n_scales;
    int scales[BL_MAX_SCALES];  // window sides in patches (2, 3)
    // AnomalyCLIP
    int vv_from;              // V-V path from this layer (6 for ViT-L; DPAM_layer 20)
    int aliased_layers;       // 1: the code before 2025-04-13 (AnomalyCLIP_lib/AnomalyCLIP.py before 2a7c886): a map
                              // layer >= vv_from - 1 reads the final V-V tokens (out_tokens kept references to the
                              // tensor that `x += x_res` updates in place from the first V-V block on)
    int deep_fp16;            // 1: deep prompts rounded to fp16 as upstream's .half() (forward; gradient per text)
    int n_ctx;                // learnable context tokens per prompt (12)
    int deep_depth;           // deep text prompts in text layers 1..deep_depth-1 (9); <= 1: none
    int deep_len;             // tokens per deep prompt, overwriting positions 1..deep_len (4)
    char state_normal[32], state_abnormal[32], object_word[32];  // "", "damaged", "object"
    float local_weight;       // λ on the local loss (1 published, 4 at HEAD)
    // APRIL-GAN: the share of training samples replaced by a 2 x 2 mosaic of four images of their class
    // (MVTecDataset.combine_img, aug_rate 0.2 when training on MVTec-AD); 0: none
    float aug_rate;
    float init_std;           // N(0, std²) for learnable parameters (0.02)
    // MVFA-AD (CLIP/adapter.py CLIP_Inplanted): after each map layer the residual stream becomes
    // keep·x + mix·(seg_out + det_out) of its two adapters (0.8, 0.1)
    float adapter_keep, adapter_mix;
    int pixel_norm;           // 1: pixels normalised with the checkpoint's mean/std; 0: ToTensor only (MVFA-AD)
    // training (APRIL-GAN, AnomalyCLIP, MVFA-AD): Adam
    float lr, beta1, beta2, eps;
    unsigned long long seed;
    // where the frozen vision tower and the heads run (run.device / run.precision; defaults: the CPU, fp32).
    // WinCLIP's window embeddings and scoring, the text towers and the fixed text stay on the CPU.
    DeviceKind device;
    GemmPrecision precision;
} BaselineConfig;

// The published defaults of a method at the given backbone depth (layers of the vision tower): CLIP/CLIP-AC
// scale 100 with the last layer; WinCLIP 1/0.07, scales (2, 3), 21 templates, raw mean; APRIL-GAN scale 100,
// layers at L/4 multiples, upsample-then-softmax align_corners; AnomalyCLIP 1/0.07, softmax-then-upsample,
// sigma 4, V-V from layer L/4, layers at L/4 multiples, λ 1, not aliased (the paper's setting); MVFA-AD 240 px
// without normalisation, adapters after the layers at L/4 multiples mixed 0.8 / 0.1 / 0.1, APRIL-GAN's prompts
// with the dataset's prompt name, scale 100, upsample-then-softmax align_corners, Adam 1e-4.
void baseline_config_defaults(BaselineConfig *cfg, BaselineMethod method, int vision_layers);
// One config switch by name and text value, as the harness reads them from train.baseline.* (model/
// baseline_config.c lists the keys). An empty value, "null" or "~", or 0 for layers/scales, keeps the method's
// default. -1 with err_set naming the key for an unknown key or a bad value.
int baseline_config_set(BaselineConfig *cfg, const char *key, const char *value);
// Lists (layers, scales): n values; n = 0, or a single 0, keeps the default.
int baseline_config_set_list(BaselineConfig *cfg, const char *key, const int *values, int n);
// "clip", "clip-ac", "winclip", "april-gan", "anomalyclip", "mvfa-ad" -> method; -1 when unknown.
int baseline_method_from_name(const char *name);
const char *baseline_method_name(BaselineMethod m);

// ---------------------------------------------------------------------------------------------------------------
// Prompts (model/baseline_prompts.c)

// The sentences of the normal (which = 0) or anomalous (which = 1) group for class cls, as the method builds
// them: states x templates, state-major (APRIL-GAN/anomalib order). Returns the count; *out is a malloc'd array
// of malloc'd strings (baseline_free_strings). -1 with err_set on bad arguments.
int baseline_prompt_sentences(const BaselineConfig *cfg, const char *cls, int which, char ***out);
void baseline_free_strings(char **s, int n);
int baseline_template_count(BaselineTemplates t);
const char *baseline_template(BaselineTemplates t, int i);
// Which name of a dataset class a method's prompts take: the folder name ("metal_nut") for BL_CLASS_RAW
// (APRIL-GAN writes class names as they are), else the dataset's prompt name ("metal nut", "electrical
// commutators", "retinal OCT"), which BL_CLASS_SPACES then keeps (it has no underscores). Pass the result as
// class_name to baseline_score_* and baseline_*_features.
const char *baseline_class_arg(const BaselineConfig *cfg, const char *folder_name, const char *prompt_name);
// The class word in prompts: '_' -> ' ' (BL_CLASS_SPACES), as is, or "object". malloc'd.
char *baseline_class_word(BaselineClassName mode, const char *cls);

// text (2,P): row 0 the normal group's feature, row 1 the anomalous one (pooled per cfg->text_pool; not
// normalised for BL_POOL_MEAN_RAW). Sentences are tokenised (truncated to the context) and encoded in batches.
int baseline_text_features(const ClipText *t, Tokenizer *tok, const BaselineConfig *cfg, const char *cls,
                           float *text);

// ---------------------------------------------------------------------------------------------------------------
// Scores from features (model/baseline_maps.c); features need not be normalised (cosine is taken here)

// out (n) = softmax(scale · [cos(f, t_n), cos(f, t_a)])[1]; feat (n, ld) first P used, text (2,P). On the host
// (WinCLIP's windows); the other heads' scores and maps run on the backend (model/baseline_score.c).
void baseline_class_scores(float *out, const float *feat, int n, int ld, int P, const float *text, float scale);

// WinCLIP windows (anomalib make_masks): windows of k x k patches at stride 1 on a g x g grid, in F.unfold order
// (window rows, then columns); idx (n_windows, k*k) the row-major patch indices of each window.
int winclip_window_count(int g, int k);
void winclip_make_masks(int *idx, int g, int k);
// Per-scale harmonic aggregation: out (B, g*g)[u] = |{w ∋ u}| / Σ_{w ∋ u} 1/s_w; scores (B, nw).
void winclip_harmonic(float *out, const float *scores, const int *idx, int nw, int k, int g, int B);
// Across scales with the image score as one more scale: out (B, n) = (n_scales + 1) / (1/img + Σ_s 1/maps_s).
void winclip_combine(float *out, const float *img, const float *const *scale_maps, int n_scales, int B, int n);

// ---------------------------------------------------------------------------------------------------------------
// The vision tower on a subset of tokens (model/clip_vision_masked.c), for WinCLIP's windows: for each window w
// the sequence [class, patches idx[w]] of the embedded tokens (patch embedding + class + positions at the input
// grid, before ln_pre) runs through ln_pre, every block, post-LN at the class row and the projection.
// embeds (B, T, W) from clip_vision_embed; out (B, nw, P).
int clip_vision_embed(const ClipVision *v, const float *pos, int g, const float *pixels, int B, int S,
                      float *embeds);
int clip_vision_window_embeds(const ClipVision *v, const float *embeds, int B, int T, const int *idx, int nw,
                              int k2, float *out);

// ---------------------------------------------------------------------------------------------------------------
// AnomalyCLIP's text encoder with deep prompts (model/baseline_deep_text.c): embeds (B,T,W) input embeddings
// (context written over positions 1..n_ctx), deep (D-1, n, W): before text layer i (1..D-1) the hidden states at
// positions 1..n are overwritten by deep[i-1]. eot (B). Backward gives d embeds and d deep (+=).
typedef struct DeepTextRun DeepTextRun;
DeepTextRun *deep_text_run_new(const ClipText *t);
void deep_text_run_free(DeepTextRun *r);
int deep_text_forward(DeepTextRun *r, const float *embeds, const int *eot, int B, int T, const float *deep,
                      int n_deep, int deep_len, float *text_embeds);
int deep_text_backward(DeepTextRun *r, float *dembeds, float *ddeep, const float *dtext_embeds);
// on = 1: AnomalyCLIP's ResidualAttentionBlock_learnable_token casts each text's copy of the deep prompt with
// .half() before torch.cat with the fp32 stream: the forward reads the prompt rounded to fp16, and autograd
// rounds each text's gradient to fp16 before the expand's sum (in fp32).
void deep_text_run_set_fp16(DeepTextRun *r, int on);

// ---------------------------------------------------------------------------------------------------------------
// MVFA-AD's residual adapter (CLIP/adapter.py ClipAdapter; model/mvfa_adapter.c): no biases, LeakyReLU slope 0.01
//   med (N,P) = lrelu(x (N,W) · w1ᵀ), w1 (P,W);   out (N,W) = lrelu(med · w2ᵀ), w2 (W,P)
// out may be NULL (the last adapted layer: nothing reads its output).
void mvfa_adapter_forward(float *med, float *out, const float *x, const float *w1, const float *w2, int N, int W,
                          int P);
// dx (N,W) +=, dw1 (P,W) +=, dw2 (W,P) += for the gradients dout (N,W) at out (NULL: none) and dmed (N,P) reaching
// med from elsewhere (the loss; read, then overwritten). work (N, W + P) scratch.
void mvfa_adapter_backward(float *dx, float *dw1, float *dw2, float *dmed, const float *dout, const float *x,
                           const float *med, const float *out, const float *w1, const float *w2, int N, int W, int P,
                           float *work);

// ---------------------------------------------------------------------------------------------------------------
// The head: one per method and checkpoint

typedef struct Baseline Baseline;

// model must have both towers bound (CLIP_TEXT | CLIP_VISION); the tokenizer comes from the model folder or the
// shared BPE file. Learnable parameters (APRIL-GAN linear maps, AnomalyCLIP prompts) are initialised from
// cfg->seed. NULL with err_set for a bad config (a layer out of range, a window larger than the grid).
// baseline_new runs the head on backend_for(cfg->device); baseline_new_on on the given backend.
Baseline *baseline_new(const BaselineConfig *cfg, const ClipModel *model, Tokenizer *tok);
Baseline *baseline_new_on(const Backend *be, const BaselineConfig *cfg, const ClipModel *model, Tokenizer *tok);
void baseline_free(Baseline *b);
const BaselineConfig *baseline_config(const Baseline *b);
const Backend *baseline_backend(const Baseline *b);

// The learnable parameters as one flat block of n_params floats (0 for the training-free methods), held by the
// backend: copied to or from the host. Layout: APRIL-GAN: per map layer l, weight (P, W) then bias (P).
// AnomalyCLIP: ctx_normal (n_ctx, Wt), ctx_abnormal (n_ctx, Wt), deep (deep_depth-1, deep_len, Wt). MVFA-AD: the
// segmentation adapters, then the detection ones (its two optimisers' halves), per map layer fc1 (P, W) then
// fc2 (W, P).
size_t baseline_n_params(const Baseline *b);
void baseline_download_params(const Baseline *b, float *host);
void baseline_upload_params(Baseline *b, const float *host);

// What a baseline reads from the frozen vision tower, per image, so a harness can cache it (design.md §3) and
// train or score from the cache: one global feature (P) and n_blocks blocks of rows[i] x ld floats.
//   CLIP, CLIP-AC, AnomalyCLIP: per map layer the tokens (T rows, class row first) after post-LN + projection
//     (AnomalyCLIP: the V-V path's; aliased: every block the final layer's), ld = P
//   APRIL-GAN: per map layer the raw residual stream (T rows), ld = the vision width
//   WinCLIP: per scale the window embeddings (n_windows rows), ld = P
//   MVFA-AD: one block, the raw residual stream after its first map layer (T rows), ld = the vision width: the
//     adapters rewrite the stream from there on, so the layers after it run in the head
// The global feature is post-LN (or not, cfg.global_ln_post) class token times the projection (MVFA-AD: zeros,
// it reads none).
typedef struct {
    int P, ld, n_blocks;
    int rows[BL_MAX_LAYERS];
} BaselineFeatureShape;
void baseline_feature_shape(const Baseline *b, BaselineFeatureShape *s);

typedef struct {
    int B;
    float *global;                 // (B,P)
    float *blocks[BL_MAX_LAYERS];  // blocks[i] (B, rows[i], ld)
} BaselineFeatures;
BaselineFeatures *baseline_features_new(const Baseline *b, int B);  // NULL with err_set when out of memory
void baseline_features_free(BaselineFeatures *f);
// Runs the vision tower on pixels (f->B images, (B,3,S,S) normalised) into f.
int baseline_extract(Baseline *b, const float *pixels, BaselineFeatures *f);

// The trained parameters with their Adam state (model/baseline_state.c), written atomically; a load checks the
// method and the parameter count against the configured head. -1 with err_set naming the file.
int baseline_save(const Baseline *b, const char *path);
int baseline_load(Baseline *b, const char *path);
// The Adam step count: 0 for a new head, the saved one after baseline_load.
long baseline_step(const Baseline *b);

// scores (B) image scores; maps (B,S,S) pixel maps at S = cfg.image_size, from features of f->B images of one
// class. class_name is the dataset's class folder name (ignored by AnomalyCLIP). Text features are cached per
// class name.
int baseline_score_features(Baseline *b, const char *class_name, const BaselineFeatures *f, float *scores,
                            float *maps);
// The same from pixels (extract, then score).
int baseline_score_batch(Baseline *b, const char *class_name, const float *pixels, int B, float *scores,
                         float *maps);

// The training loss of a batch and its gradient (+= into the host's grad (n_params), downloaded from the backend;
// grad may be NULL): masks (B,S,S) in {0,1}, labels (B) 0/1, class_names (B) (APRIL-GAN's and MVFA-AD's text;
// AnomalyCLIP ignores them). APRIL-GAN:
// Σ_layers Focal + Dice(p_a). AnomalyCLIP: CE(global) + λ Σ_layers (Focal + Dice(p_a, G) + Dice(p_n, 1 − G)).
// MVFA-AD: Σ_layers BCEWithLogits(mean_patches p_a(det), y) + Σ_layers Focal + Dice(p_a(seg)); masks NULL (a batch
// without pixel ground truth): the detection terms only, as its train_zero.py for sets without masks.
// -1 with err_set for a training-free method.
int baseline_loss_grad_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                const char *const *class_names, float *loss, float *grad);
// One Adam step (cfg lr, betas, eps; step count kept in b) on that loss; *loss gets the loss before the step.
// MVFA-AD steps its two halves as its two optimisers: the detection adapters every step, the segmentation ones
// only with masks (each half with its own step count).
int baseline_train_step_features(Baseline *b, const BaselineFeatures *f, const float *masks, const int *labels,
                                 const char *const *class_names, float *loss);
// From pixels (extract, then as above).
int baseline_loss_grad(Baseline *b, const float *pixels, const float *masks, const int *labels,
                       const char *const *class_names, int B, float *loss, float *grad);
int baseline_train_step(Baseline *b, const float *pixels, const float *masks, const int *labels,
                        const char *const *class_names, int B, float *loss);

#endif
