// open_clip checkpoints (torch.save state dicts with open_clip's names, e.g. WinCLIP's ViT-B-16-plus-240
// laion400m) converted to a Hugging Face CLIP folder the engine reads: config.json, model.safetensors (F32),
// preprocessor_config.json, and the tokenizer files.
//
// Names: visual.conv1 -> vision_model.embeddings.patch_embedding, visual.transformer.resblocks.N.attn.in_proj_*
// (3W rows q|k|v) -> self_attn.{q,k,v}_proj, mlp.c_fc/c_proj -> mlp.fc1/fc2, ln_1/ln_2 -> layer_norm1/2,
// ln_pre/ln_post -> pre_layrnorm/post_layernorm, visual.proj (W,P) -> visual_projection.weight (P,W) transposed;
// the text side likewise (ln_final -> final_layer_norm, text_projection (W,P) transposed). A "module." prefix
// (DataParallel) and a {"state_dict": ...} wrapper are accepted. Sizes come from the tensor shapes; what shapes do
// not say (the activation, the head counts) comes from the options.
#ifndef MODEL_CONVERT_OPENCLIP_H
#define MODEL_CONVERT_OPENCLIP_H

#include "model/checkpoint.h"

typedef struct {
    Activation act;    // open_clip models use GELU unless trained by OpenAI (QuickGELU)
    int head_width;    // heads = width / head_width unless given (open_clip's default head width: 64)
    int vision_heads;  // 0: vision width / head_width
    int text_heads;    // 0: text width / head_width
} OpenclipOptions;

// Converts IN (a torch.save file) into the folder OUT (created; files written atomically). vocab: the CLIP BPE
// vocabulary (bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt), copied into OUT.
// On success *cfg (if given) holds the configuration written. -1 with err_set naming the file and the tensor.
int openclip_convert(const char *in, const char *out, const char *vocab, const OpenclipOptions *opt, ClipConfig *cfg);

#endif
