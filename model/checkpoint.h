// Hugging Face CLIP checkpoint folders: config.json plus model.safetensors (F32, F16, BF16; memory-mapped)
// or pytorch_model.bin (the zip that torch.save writes, holding a pickled state dict).
#ifndef MODEL_CHECKPOINT_H
#define MODEL_CHECKPOINT_H

#include <stdint.h>

typedef enum { ACT_QUICK_GELU, ACT_GELU } Activation;

// One tower's shape, from config.json; keys missing there take the transformers defaults
// (CLIPTextConfig / CLIPVisionConfig, docs/reference/engine-anchors.md §3.2).
typedef struct {
    int width;        // hidden_size
    int layers;       // num_hidden_layers
    int heads;        // num_attention_heads
    int mlp;          // intermediate_size
    float ln_eps;     // layer_norm_eps
    Activation act;   // hidden_act
} TowerShape;

typedef struct {
    TowerShape text, vision;
    int vocab_size;      // text vocab_size (49408)
    int context_length;  // text max_position_embeddings (77)
    int eos_token_id;    // 49407; the legacy value 2 means "pool at argmax of the ids"
    int image_size;      // vision image_size (the positional grid the weights were trained at)
    int patch_size;
    int channels;        // 3
    int projection_dim;
    float logit_scale_init;
    float image_mean[3], image_std[3];  // preprocessor_config.json if present, else OpenAI's
} ClipConfig;

// Reads DIR/config.json (and DIR/preprocessor_config.json if present). -1 with err_set naming file and key.
int clip_config_load(const char *dir, ClipConfig *cfg);

typedef struct Checkpoint Checkpoint;

// Opens DIR/model.safetensors, else DIR/pytorch_model.safetensors, else DIR/pytorch_model.bin. NULL with err_set
// naming the file. Header, offsets, sizes and overlaps of every tensor are validated here.
Checkpoint *checkpoint_open(const char *dir);
// Opens one weights file directly (format from its content).
Checkpoint *checkpoint_open_file(const char *path);
int checkpoint_has(const Checkpoint *ck, const char *name);
// The tensor as float32 with exactly the given shape (ndim 0 for a scalar). F32 data that is aligned in the
// mapped file is returned in place; other dtypes are converted once into memory the checkpoint owns.
// Valid until checkpoint_close. NULL with err_set("FILE: tensor NAME: ...") for a missing tensor,
// a wrong shape, an unsupported dtype or non-contiguous strides (offsets outside the file, overlaps and sizes
// that disagree with the shape are already refused by checkpoint_open). Not thread-safe: the first request
// for a tensor may convert or read it; request from one thread (or all up front).
const float *checkpoint_tensor_f32(Checkpoint *ck, const char *name, const int64_t *shape, int ndim);
// A content hash of the weights file (SHA-256 hex, computed once), for cache keys and provenance.
// NULL with err_set if the file can no longer be read.
const char *checkpoint_hash(Checkpoint *ck);
const char *checkpoint_path(const Checkpoint *ck);
// The shape stored for a tensor (up to 8 dimensions), to size buffers before asking for it (the positional grid
// of the vision tower, say). -1 with err_set if the tensor is missing.
int checkpoint_shape(const Checkpoint *ck, const char *name, int64_t shape[8], int *ndim);
// Listing for debugging: the number of tensors, and tensor i's name (sorted), dtype as the file spells it
// ("F32", "I64", "LongStorage") and shape. NULL past the end. Pointers stay valid until checkpoint_close.
int checkpoint_count(const Checkpoint *ck);
const char *checkpoint_entry(const Checkpoint *ck, int i, const char **dtype, const int64_t **shape, int *ndim);
void checkpoint_close(Checkpoint *ck);

#endif
