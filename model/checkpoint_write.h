// Writing checkpoints: safetensors files, and tiny random CLIP folders in the Hugging Face layout
// (config.json, model.safetensors, vocab.json, merges.txt) for the demo and for benchmarks.
#ifndef MODEL_CHECKPOINT_WRITE_H
#define MODEL_CHECKPOINT_WRITE_H

#include <stdint.h>

#include "model/checkpoint.h"

typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} TensorOut;

// Writes F32 tensors as one safetensors file (header padded so data starts 8-byte aligned), atomically.
int safetensors_write(const char *path, const TensorOut *tensors, int n);

// Writes DIR/config.json (a CLIPModel config with cfg's towers, Hugging Face keys) atomically.
int clip_write_config(const char *dir, const ClipConfig *cfg);

// Writes DIR/config.json and DIR/model.safetensors: every tensor of a CLIPModel with the shapes cfg implies,
// initialised as OpenAI CLIP's initialize_parameters does (normal with its standard deviations) from seed.
int clip_write_random(const char *dir, const ClipConfig *cfg, uint64_t seed);

// Writes DIR/vocab.json and DIR/merges.txt: the 512 byte tokens, merges that spell each of the given words as
// one token, filler entries up to 49405, and <|startoftext|> 49406 / <|endoftext|> 49407, so that ids keep
// their CLIP meaning with a vocabulary small enough to ship with no download.
int clip_write_small_vocab(const char *dir, const char *const *words, int n_words);

#endif
