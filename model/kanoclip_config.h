// KAnoCLIP method configuration: every switch of the heads with its default (docs/reference/kanoclip-components.md §0, §10).
// The harness fills it from the YAML `method:` section (experiments/defaults.yaml lists the same keys);
// the numbers in brackets are the FLAG numbers of the checklist in §10 of that note.
#ifndef MODEL_KANOCLIP_CONFIG_H
#define MODEL_KANOCLIP_CONFIG_H

#include "model/device.h"

#include <stdint.h>

typedef enum {
    KD_BOUNDED = 0,  // (A) d(ā,k̄) − d(n̄,k̄) = 2[cos(n̄,k̄) − cos(ā,k̄)], in [−4, 4] (default)
    KD_TRIPLET = 1,  // (B) d(ā,k̄) + max(0, d(ā,k̄) − d(n̄,k̄) + margin)
    KD_INFONCE = 2,  // (D) −log softmax([cos(ā,k̄), cos(n̄,k̄)] / kd_tau)[0]
} KdForm;

typedef enum {
    DEFORM_DAT = 0,   // DAT v1 deformable attention: offset net, bounded offsets, relative-position bias (default)
    DEFORM_MSDA = 1,  // Deformable-DETR MSDeformAttn, one level, msda_points taps per head (§5.3)
} DeformKind;

typedef struct {
    // ---- sizes (from the backbone and the data) ----
    int width;            // P, joint embedding width of the stage/global features and text features (768)
    int text_width;       // width of the text tower's token embeddings; the contexts live there (768)
    int heads;            // attention heads in Bi-CMCI (12); width % heads == 0
    int grid_h, grid_w;   // patch grid of the stage features (37, 37 at 518 px)
    int image_size;       // maps are upsampled to image_size × image_size (518)
    int n_stages;         // stages with a Bi-CMCI each (4: layers 6/12/18/24) [10]

    // ---- feature side (read by the harness; the heads only see the features it hands over) ----
    int clip_vv;          // 1: stage features from the V-V path (CLIP-VV); 0: original attention (ablation)
    int global_ln_post;   // 1: global feature with ln_post (CLIP); 0: AnomalyCLIP's quirk without it [2]
    int global_vv;        // 1: global feature = the V-V path's class token S_L[0] (Eq. 8) through ln_post + proj,
                          // i.e. row 0 of the layer-L stage; 0: the original path's class token (default)

    // ---- KnPL ----
    int knpl;             // 1: learnable contexts + KD loss; 0: fixed prompts' text features (ablation)
    int n_ctx;            // learnable context tokens per prompt (12)
    float ctx_init_std;   // N(0, std²) initialisation of the contexts (0.02) [6]
    int deep_prompts;     // AnomalyCLIP deep text prompts (0) [5]
    int deep_depth;       // deep prompts replace hidden states before layers 2..deep_depth (9)
    int deep_tokens;      // ... at positions 1..deep_tokens (4)
    KdForm kd_form;       // [8]
    float kd_margin;      // triplet margin in squared-distance units (0.1)
    float kd_tau;         // InfoNCE temperature (0.07)

    // ---- Bi-CMCI ----
    int bicmci;           // 1: Bi-CMCI per stage; 0: plain cosine maps from the stage features (ablation)
    int bicmci_full;      // 0: lean (no MLPs); 1: full, BiXT MLPs after CA (both sides), text SA and DAttn [14]
    int zero_init_out;    // 1: zero-initialised output projections (CA both sides, text SA, DAttn) [15]
    DeformKind deform;    // [13]
    int dat_groups;       // offset groups G (3); width % G == 0, heads % G == 0
    int dat_kernel;       // depthwise kernel of the offset net (5)
    float dat_offset_range; // s: offsets bounded to s·tanh(·)/H_k in normalised units (2.0 = one key cell)
    int dat_rpe;          // 1: continuous relative-position bias table (heads, 2H−1, 2W−1)
    int msda_points;      // sampling points per head of the MSDeformAttn option (4)
    float init_std;       // trunc-normal std of the other Linear weights (0.02), biases 0
    int maps_updated_text;// 1: maps use the per-image text after interaction; 0: the KnPL text [16]

    // ---- Conv-Adapter and scores ----
    int adapter;          // 1: Conv-Adapter on the global feature; 0: raw global feature (ablation)
    int adapter_ratio;    // bottleneck ratio: hidden = width / ratio (4) [18]
    int adapter_residual; // 0: literal I_c; 1: I + I_c with W_up = 0 at init [18]
    float tau;            // temperature of every cosine softmax (0.07) [19]
    int upsample_align_corners; // bilinear upsampling of maps (0, AnomalyCLIP)
    float gauss_sigma;    // Gaussian smoothing of the fused map (4; 0 turns it off) [17]
    float gauss_truncate; // scipy truncate (4)

    // ---- losses ----
    float w_kd, w_global, w_local;  // α, β, γ (1, 1, 1) [21]
    // Where the paper's text reads two ways (docs/paper-switches.md; model/kanoclip_paper.c):
    int local_fused;      // 1: L_local on the fused maps (M_n, M_a) once (Eq. 9, 15 use the fused symbols);
                          // 0: summed over the per-stage maps (AnomalyCLIP's loop; default)
    int map_minmax;       // Norm(.) of Eq. 10: 0 the stage sum divided by the stage count (default); 1 per-image
                          // min-max of the stage sum (each channel), in training and at inference
    int global_max_map;   // 1: L_global = BCE((p_a + max M_a) / 2, y), M_a the fused map before the Gaussian;
                          // 0: BCE on p_a alone (default; max(M) enters only the inference score)

    // ---- optimiser ----
    float lr;             // Adam learning rate (1e-3) [22]
    float beta1, beta2;   // (0.5, 0.999)
    float adam_eps;       // 1e-8
    uint64_t seed;        // initialisation and any sampling (111)

    // ---- where it runs (run.device, run.precision) ----
    DeviceKind device;    // where the frozen text tower runs: DEVICE_CPU (default) or DEVICE_CUDA; the heads stay on the CPU
    GemmPrecision precision; // GEMM mode of the text tower on CUDA (GEMM_FP32 default; the CPU always computes fp32)
} KanoclipConfig;

// The defaults of docs/reference/kanoclip-components.md at ViT-L/14@336 sizes, 518 px.
KanoclipConfig kanoclip_config_default(void);
// -1 with err_set naming the field when sizes or switches are inconsistent or not built.
int kanoclip_config_check(const KanoclipConfig *cfg);

#endif
