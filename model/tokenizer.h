// The CLIP BPE tokenizer (openai/CLIP simple_tokenizer.py; Hugging Face CLIPTokenizer gives the same ids).
//
// text -> cleaning (model/text_clean.h: NFC, html.unescape twice, whitespace collapse, Python lower())
//      -> pre-tokens by CLIP's pattern
//         <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//         (regex module, IGNORECASE; whitespace is dropped; every digit is its own pre-token)
//      -> UTF-8 bytes through bytes_to_unicode, '</w>' on the last symbol, merges by rank
//      -> [SOT] ids [EOT].
// A pre-token that is exactly "<|startoftext|>" or "<|endoftext|>" becomes the special id.
// Input must be valid UTF-8 (invalid bytes are an error naming the offset, not replaced).
// Thread-safe: the tokenizer is read-only apart from its word cache, which a mutex guards.
#ifndef MODEL_TOKENIZER_H
#define MODEL_TOKENIZER_H

#define TOKENIZER_SOT 49406     // <|startoftext|> in the CLIP vocabulary
#define TOKENIZER_EOT 49407     // <|endoftext|>
#define TOKENIZER_CONTEXT 77    // CLIP's text context length
#define TOKENIZER_BPE_GZ_MERGES 48894 // merges used from bpe_simple_vocab_16e6.txt.gz (49152 - 256 - 2)

typedef struct Tokenizer Tokenizer;

// A model folder: vocab.json + merges.txt (Hugging Face) if both are there, else bpe_simple_vocab_16e6.txt.gz.
// NULL with an error naming the folder and the files looked for.
Tokenizer *tokenizer_load_dir(const char *dir);
// OpenAI's gzip'd merge list: vocabulary = 256 byte symbols, the same with '</w>', the first 48,894 merges
// joined, then <|startoftext|>, <|endoftext|> (49,408 entries).
Tokenizer *tokenizer_load_bpe_gz(const char *path);
// Hugging Face vocab.json (token -> id, ids 0..N-1 all present) and merges.txt ("#version" line, then "a b").
Tokenizer *tokenizer_load_hf(const char *vocab_json, const char *merges_txt);
// A folder (as tokenizer_load_dir) or OpenAI's vocabulary file, gzip'd or not (as tokenizer_load_bpe_gz).
Tokenizer *tokenizer_load(const char *path);
void tokenizer_free(Tokenizer *t);

// Encodes text as [SOT] ... [EOT] into ids (max_len entries, max_len >= 2). When longer, keeps the first
// max_len - 1 ids and puts EOT last (OpenAI's truncate=True, open_clip). Returns the count written (no
// padding), or -1 with an error (invalid UTF-8).
int tokenizer_encode(Tokenizer *t, const char *text, int *ids, int max_len);
// All ids of text, [SOT] ... [EOT], untruncated, malloc'd (caller frees); *count gets their number.
int *tokenizer_encode_all(Tokenizer *t, const char *text, int *count);

int tokenizer_vocab_size(const Tokenizer *t);
// Id of a vocabulary entry spelled as in vocab.json ("cat</w>", "<|endoftext|>"); -1 if absent.
int tokenizer_token_id(const Tokenizer *t, const char *token);
// The vocabulary entry of id (as in vocab.json), NULL if out of range.
const char *tokenizer_token_str(const Tokenizer *t, int id);
// Text of ids (OpenAI's decode: entries joined, bytes restored, '</w>' -> ' '; SOT/EOT skipped). malloc'd.
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n);

#endif
