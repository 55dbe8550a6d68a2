// The text-embedding cache: embeddings of knowledge-base texts (or prompts) under one frozen text encoder.
// One HDF5 file per encoder: attributes encoder_hash, dim, code_version; datasets
//   /key     [N] char[64]  SHA-256 (hex) of the text's UTF-8 bytes
//   /text    [N] string    the text itself (for people reading the file)
//   /vector  [N, dim] float32
// The whole file is read at open and rewritten atomically (temporary file, then rename) by embed_cache_save.
// A file whose encoder hash, dim or code version differ is not used: the difference is logged and the cache
// starts empty (the next save replaces it).
#ifndef HARNESS_CACHE_EMBED_H
#define HARNESS_CACHE_EMBED_H

typedef struct EmbedCache EmbedCache;

// Opens (or starts) the cache at path. NULL with err_set on I/O errors or a damaged file.
EmbedCache *embed_cache_open(const char *path, const char *encoder_hash, int dim, const char *code_version);
// 1 and the vector (dim floats) in out when text is cached, 0 when it is not.
int embed_cache_get(const EmbedCache *ec, const char *text, float *out);
// Adds or replaces text's vector (in memory until embed_cache_save).
int embed_cache_put(EmbedCache *ec, const char *text, const float *vec);
int embed_cache_size(const EmbedCache *ec);
const char *embed_cache_reason(const EmbedCache *ec);
// Writes the cache atomically when it changed since open/last save.
int embed_cache_save(EmbedCache *ec);
// Saves (if changed) and frees. Returns the save status.
int embed_cache_close(EmbedCache *ec);

#endif
