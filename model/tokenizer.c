// The CLIP BPE tokenizer: vocabulary loading (OpenAI .txt.gz or Hugging Face vocab.json + merges.txt),
// the pre-token pattern, byte-level BPE with a word cache. See model/tokenizer.h for the rules.
#include "model/tokenizer.h"
#include "model/text_clean.h"
#include "model/unicode_tables.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { CACHE_MAX_WORDS = 1 << 16 }; // the word cache is emptied when it holds this many words

typedef struct { uint64_t key; int rank, merged; } MergeSlot; // key = (uint64)left << 32 | right; rank -1: empty

typedef struct {      // word cache entry: pre-token UTF-8 bytes -> ids
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_len; // key_len 0: empty slot
} CacheSlot;

struct Tokenizer {
    int n_vocab;
    char **tokens;        // (n_vocab) UTF-8 spelling of each entry, as in vocab.json
    int *vocab_slots;     // (vocab_cap) open addressing: token id or -1
    int vocab_cap;
    MergeSlot *merges;    // (merge_cap)
    int merge_cap, n_merges;
    int byte_id[256];     // id of the symbol of each byte
    int byte_end_id[256]; // id of that symbol + "</w>"
    uint32_t byte_cp[256];// bytes_to_unicode
    int sot, eot;
    pthread_mutex_t cache_lock;
    CacheSlot *cache;     // (CACHE_MAX_WORDS * 2)
    int cache_words;
    char *cache_keys;     // (cache_keys_cap)
    size_t cache_keys_len, cache_keys_cap;
    int *cache_ids;       // (cache_ids_cap)
    size_t cache_ids_len, cache_ids_cap;
};

static uint64_t fnv1a(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix64(uint64_t x) { // splitmix64 finaliser
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 map to U+0100 + n in order.
static void bytes_to_unicode(uint32_t cp[256], int order[256]) {
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) { cp[b] = (uint32_t)b; order[k++] = b; }
    }
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) { cp[b] = 256u + (uint32_t)n++; order[k++] = b; }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Vocabulary and merge tables

static int vocab_find(const Tokenizer *t, const char *s, size_t len) {
    uint32_t mask = (uint32_t)t->vocab_cap - 1;
    for (uint32_t i = (uint32_t)fnv1a(s, len) & mask;; i = (i + 1) & mask) {
        int id = t->vocab_slots[i];
        if (id < 0) return -1;
        if (strlen(t->tokens[id]) == len && !memcmp(t->tokens[id], s, len)) return id;
    }
}

// Inserts id under its spelling; a later id with the same spelling replaces the earlier (Python dict).
static void vocab_insert(Tokenizer *t, int id) {
    const char *s = t->tokens[id];
    size_t len = strlen(s);
    uint32_t mask = (uint32_t)t->vocab_cap - 1;
    for (uint32_t i = (uint32_t)fnv1a(s, len) & mask;; i = (i + 1) & mask) {
        int old = t->vocab_slots[i];
        if (old < 0 || !strcmp(t->tokens[old], s)) { t->vocab_slots[i] = id; return; }
    }
}

static int cap_for(int n) {
    int cap = 1024;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

static int vocab_build(Tokenizer *t, const char *src) {
    t->vocab_cap = cap_for(t->n_vocab);
    t->vocab_slots = malloc(sizeof(int) * t->vocab_cap);
    if (!t->vocab_slots) return err_set("%s: out of memory", src);
    for (int i = 0; i < t->vocab_cap; i++) t->vocab_slots[i] = -1;
    for (int id = 0; id < t->n_vocab; id++) vocab_insert(t, id);
    return 0;
}

static const MergeSlot *merge_find(const Tokenizer *t, int left, int right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t mask = (uint32_t)t->merge_cap - 1;
    for (uint32_t i = (uint32_t)mix64(key) & mask;; i = (i + 1) & mask) {
        const MergeSlot *s = &t->merges[i];
        if (s->rank < 0) return NULL;
        if (s->key == key) return s;
    }
}

// Adds merge (left, right) -> merged at the given rank; a repeated pair keeps its last rank (Python dict).
static void merge_insert(Tokenizer *t, int left, int right, int merged, int rank) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t mask = (uint32_t)t->merge_cap - 1;
    for (uint32_t i = (uint32_t)mix64(key) & mask;; i = (i + 1) & mask) {
        MergeSlot *s = &t->merges[i];
        if (s->rank < 0 || s->key == key) {
            if (s->rank < 0) t->n_merges++;
            s->key = key; s->rank = rank; s->merged = merged;
            return;
        }
    }
}

// Splits "a b" (Python str.split(): runs of ASCII whitespace) into two malloc-free views. 0 if not two parts.
static int split_pair(char *line, char **a, char **b) {
    char *save = NULL;
    *a = strtok_r(line, " \t\r\f\v", &save);
    *b = *a ? strtok_r(NULL, " \t\r\f\v", &save) : NULL;
    return *a && *b && !strtok_r(NULL, " \t\r\f\v", &save);
}

// merge lines: the text of merges (one per line, no header), n of them. Ids of parts come from the vocabulary.
static int merges_build(Tokenizer *t, char **lines, int n, const char *src, int first_line) {
    t->merge_cap = cap_for(n);
    t->merges = malloc(sizeof(MergeSlot) * t->merge_cap);
    if (!t->merges) return err_set("%s: out of memory", src);
    for (int i = 0; i < t->merge_cap; i++) t->merges[i].rank = -1;
    for (int r = 0; r < n; r++) {
        char *a, *b;
        char buf[512];
        size_t len = strlen(lines[r]);
        if (len >= sizeof buf) return err_set("%s: line %d: merge too long", src, first_line + r);
        memcpy(buf, lines[r], len + 1);
        if (!split_pair(buf, &a, &b)) return err_set("%s: line %d: expected two symbols", src, first_line + r);
        int ia = vocab_find(t, a, strlen(a)), ib = vocab_find(t, b, strlen(b));
        char joined[512];
        snprintf(joined, sizeof joined, "%s%s", a, b);
        int im = vocab_find(t, joined, strlen(joined));
        if (ia < 0 || ib < 0 || im < 0)
            return err_set("%s: line %d: merge '%s %s': '%s' is not in the vocabulary", src, first_line + r, a, b,
                           ia < 0 ? a : ib < 0 ? b : joined);
        merge_insert(t, ia, ib, im, r);
    }
    return 0;
}

// Byte symbols, special ids and the cache: shared by both loaders once tokens/vocab/merges exist.
static int finish_load(Tokenizer *t, const char *src) {
    int order[256];
    bytes_to_unicode(t->byte_cp, order);
    int unk = vocab_find(t, "<unk>", 5);
    for (int b = 0; b < 256; b++) {
        char s[16];
        int n = utf8_encode(t->byte_cp[b], s);
        memcpy(s + n, "</w>", 5);
        t->byte_id[b] = vocab_find(t, s, (size_t)n);
        t->byte_end_id[b] = vocab_find(t, s, (size_t)n + 4);
        // A vocabulary without some byte symbols (a toy one) maps them to <unk>, as Hugging Face does.
        if (t->byte_id[b] < 0) t->byte_id[b] = unk;
        if (t->byte_end_id[b] < 0) t->byte_end_id[b] = unk;
        if (t->byte_id[b] < 0 || t->byte_end_id[b] < 0)
            return err_set("%s: vocabulary lacks the symbol of byte 0x%02X (and has no <unk>)", src, b);
    }
    t->sot = vocab_find(t, "<|startoftext|>", 15);
    t->eot = vocab_find(t, "<|endoftext|>", 13);
    if (t->sot < 0 || t->eot < 0) return err_set("%s: vocabulary lacks <|startoftext|> or <|endoftext|>", src);
    t->cache = calloc(2 * CACHE_MAX_WORDS, sizeof(CacheSlot));
    if (!t->cache) return err_set("%s: out of memory", src);
    pthread_mutex_init(&t->cache_lock, NULL);
    return 0;
}

static Tokenizer *tokenizer_new(void) {
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) err_set("out of memory");
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->tokens) for (int i = 0; i < t->n_vocab; i++) free(t->tokens[i]);
    free(t->tokens);
    free(t->vocab_slots);
    free(t->merges);
    if (t->cache) pthread_mutex_destroy(&t->cache_lock);
    free(t->cache);
    free(t->cache_keys);
    free(t->cache_ids);
    free(t);
}

// Reads the gzip file whole (about 1.7 MB expanded); NUL-terminated.
static char *gunzip_file(const char *path, size_t *size) {
    gzFile f = gzopen(path, "rb");
    if (!f) { err_set("%s: cannot open", path); return NULL; }
    size_t cap = 1 << 22, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) { gzclose(f); err_set("%s: out of memory", path); return NULL; }
        int got = gzread(f, buf + n, (unsigned)(cap - n));
        if (got < 0) {
            int e;
            const char *msg = gzerror(f, &e);
            err_set("%s: not a valid gzip file (%s)", path, msg);
            free(buf); gzclose(f);
            return NULL;
        }
        n += (size_t)got;
        if (got == 0) break;
        if (n == cap) { cap *= 2; char *p = realloc(buf, cap + 1); if (!p) free(buf); buf = p; }
    }
    gzclose(f);
    buf[n] = 0;
    *size = n;
    return buf;
}

// Splits text into lines in place (strips a trailing '\r'); returns the line pointers (malloc'd).
static char **split_lines(char *text, size_t size, int max_lines, int *n_lines) {
    int cap = 1024, n = 0;
    char **lines = malloc(sizeof(char *) * cap);
    char *p = text, *end = text + size;
    while (lines && p < end && n < max_lines) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r') stop[-1] = 0;
        *stop = 0;
        if (n == cap) { cap *= 2; char **q = realloc(lines, sizeof(char *) * cap); if (!q) free(lines); lines = q; if (!q) break; }
        lines[n++] = p;
        p = stop + 1;
    }
    *n_lines = n;
    return lines;
}

Tokenizer *tokenizer_load_bpe_gz(const char *path) {
    size_t size;
    char *text = gunzip_file(path, &size);
    if (!text) return NULL;
    int n_lines;
    char **lines = split_lines(text, size, TOKENIZER_BPE_GZ_MERGES + 1, &n_lines);
    Tokenizer *t = NULL;
    if (!lines) { err_set("%s: out of memory", path); goto fail; }
    if (n_lines < TOKENIZER_BPE_GZ_MERGES + 1) {
        err_set("%s: %d merge lines, expected at least %d", path, n_lines - 1, TOKENIZER_BPE_GZ_MERGES);
        goto fail;
    }
    char **merges = lines + 1; // line 0 is the "#version" header
    if (!(t = tokenizer_new())) goto fail;
    t->n_vocab = 512 + TOKENIZER_BPE_GZ_MERGES + 2;
    t->tokens = calloc((size_t)t->n_vocab, sizeof(char *));
    if (!t->tokens) { err_set("%s: out of memory", path); goto fail; }
    uint32_t cp[256];
    int order[256];
    bytes_to_unicode(cp, order);
    int id = 0;
    for (int end = 0; end < 2; end++)
        for (int k = 0; k < 256; k++) {
            char s[16];
            int n = utf8_encode(cp[order[k]], s);
            strcpy(s + n, end ? "</w>" : "");
            t->tokens[id++] = strdup(s);
        }
    for (int r = 0; r < TOKENIZER_BPE_GZ_MERGES; r++) {
        char buf[512], *a, *b;
        if (strlen(merges[r]) >= sizeof buf) { err_set("%s: line %d: merge too long", path, r + 2); goto fail; }
        strcpy(buf, merges[r]);
        if (!split_pair(buf, &a, &b)) { err_set("%s: line %d: expected two symbols", path, r + 2); goto fail; }
        size_t la = strlen(a), lb = strlen(b);
        char *s = malloc(la + lb + 1);
        if (!s) { err_set("%s: out of memory", path); goto fail; }
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
        t->tokens[id++] = s;
    }
    t->tokens[id++] = strdup("<|startoftext|>");
    t->tokens[id++] = strdup("<|endoftext|>");
    for (int i = 0; i < t->n_vocab; i++)
        if (!t->tokens[i]) { err_set("%s: out of memory", path); goto fail; }
    if (vocab_build(t, path) || merges_build(t, merges, TOKENIZER_BPE_GZ_MERGES, path, 2) || finish_load(t, path))
        goto fail;
    free(lines);
    free(text);
    return t;
fail:
    tokenizer_free(t);
    free(lines);
    free(text);
    return NULL;
}

Tokenizer *tokenizer_load_hf(const char *vocab_json, const char *merges_txt) {
    Tokenizer *t = NULL;
    char *mtext = NULL;
    char **lines = NULL;
    cJSON *root = NULL;
    size_t size;
    if (!(root = json_read_object(vocab_json))) goto fail;
    if (!(t = tokenizer_new())) goto fail;
    t->n_vocab = cJSON_GetArraySize(root);
    if (t->n_vocab <= 0) { err_set("%s: empty vocabulary", vocab_json); goto fail; }
    t->tokens = calloc((size_t)t->n_vocab, sizeof(char *));
    if (!t->tokens) { err_set("%s: out of memory", vocab_json); goto fail; }
    for (cJSON *e = root->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)e->valueint) {
            err_set("%s: entry \"%s\": id is not an integer", vocab_json, e->string);
            goto fail;
        }
        int id = e->valueint;
        if (id < 0 || id >= t->n_vocab || t->tokens[id]) {
            err_set("%s: entry \"%s\": id %d out of range or repeated (ids must be 0..%d)", vocab_json, e->string,
                    id, t->n_vocab - 1);
            goto fail;
        }
        if (!(t->tokens[id] = strdup(e->string))) { err_set("%s: out of memory", vocab_json); goto fail; }
    }
    if (vocab_build(t, vocab_json)) goto fail;
    if (!(mtext = fs_read_file(merges_txt, &size))) goto fail;
    int n_lines;
    if (!(lines = split_lines(mtext, size, 1 << 30, &n_lines))) { err_set("%s: out of memory", merges_txt); goto fail; }
    int first = n_lines > 0 && !strncmp(lines[0], "#version", 8) ? 1 : 0;
    int n = n_lines - first;
    while (n > 0 && lines[first + n - 1][0] == 0) n--; // trailing empty lines
    if (merges_build(t, lines + first, n, merges_txt, first + 1) || finish_load(t, vocab_json)) goto fail;
    free(lines); free(mtext); cJSON_Delete(root);
    return t;
fail:
    tokenizer_free(t);
    free(lines); free(mtext); cJSON_Delete(root);
    return NULL;
}

Tokenizer *tokenizer_load_dir(const char *dir) {
    char *vj = fs_join(dir, "vocab.json"), *mt = fs_join(dir, "merges.txt");
    char *gz = fs_join(dir, "bpe_simple_vocab_16e6.txt.gz");
    Tokenizer *t = NULL;
    if (fs_exists(vj) && fs_exists(mt)) t = tokenizer_load_hf(vj, mt);
    else if (fs_exists(gz)) t = tokenizer_load_bpe_gz(gz);
    else err_set("%s: no tokenizer files (looked for vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz)", dir);
    free(vj); free(mt); free(gz);
    return t;
}

Tokenizer *tokenizer_load(const char *path) {
    if (fs_is_dir(path)) return tokenizer_load_dir(path);
    if (!fs_exists(path)) { err_set("%s: no such file or folder", path); return NULL; }
    size_t n = strlen(path);
    if ((n >= 5 && !strcmp(path + n - 5, ".json")) || (n >= 10 && !strcmp(path + n - 10, "merges.txt"))) {
        err_set("%s: give the folder that holds vocab.json and merges.txt, not one of the files", path);
        return NULL;
    }
    return tokenizer_load_bpe_gz(path); // zlib also reads an uncompressed bpe_simple_vocab_16e6.txt
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_vocab; }
int tokenizer_token_id(const Tokenizer *t, const char *token) { return vocab_find(t, token, strlen(token)); }
const char *tokenizer_token_str(const Tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab ? t->tokens[id] : NULL;
}

// ---------------------------------------------------------------------------------------------------------
// BPE of one pre-token

typedef struct { int *v; size_t n, cap; } IntBuf; // growable id list

static int intbuf_push(IntBuf *b, int x) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 128;
        int *p = realloc(b->v, cap * sizeof *p);
        if (!p) return err_set("out of memory");
        b->v = p;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

// Merges the word's symbols w[0..n) in place: repeatedly the adjacent pair of lowest rank, every occurrence
// left to right. Returns the new length.
static int bpe_merge(const Tokenizer *t, int *w, int n) {
    while (n > 1) {
        int best_rank = -1, left = 0, right = 0, merged = 0;
        for (int i = 0; i + 1 < n; i++) {
            const MergeSlot *m = merge_find(t, w[i], w[i + 1]);
            if (m && (best_rank < 0 || m->rank < best_rank)) {
                best_rank = m->rank; left = w[i]; right = w[i + 1]; merged = m->merged;
            }
        }
        if (best_rank < 0) break;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (i + 1 < n && w[i] == left && w[i + 1] == right) { w[k++] = merged; i++; }
            else w[k++] = w[i];
        }
        n = k;
    }
    return n;
}

static CacheSlot *cache_slot(Tokenizer *t, const char *key, size_t len, uint64_t h) {
    uint32_t mask = 2 * CACHE_MAX_WORDS - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        CacheSlot *s = &t->cache[i];
        if (!s->key_len) return s;
        if (s->hash == h && s->key_len == len && !memcmp(t->cache_keys + s->key_off, key, len)) return s;
    }
}

static int cache_store(Tokenizer *t, const char *key, size_t len, uint64_t h, const int *ids, int n) {
    if (t->cache_words >= CACHE_MAX_WORDS || t->cache_keys_len + len > UINT32_MAX / 2 ||
        t->cache_ids_len + (size_t)n > UINT32_MAX / 2) {
        memset(t->cache, 0, sizeof(CacheSlot) * 2 * CACHE_MAX_WORDS);
        t->cache_words = 0;
        t->cache_keys_len = t->cache_ids_len = 0;
    }
    if (t->cache_keys_len + len > t->cache_keys_cap) {
        size_t cap = t->cache_keys_cap ? 2 * t->cache_keys_cap : 1 << 16;
        while (cap < t->cache_keys_len + len) cap *= 2;
        char *p = realloc(t->cache_keys, cap);
        if (!p) return err_set("out of memory");
        t->cache_keys = p; t->cache_keys_cap = cap;
    }
    if (t->cache_ids_len + (size_t)n > t->cache_ids_cap) {
        size_t cap = t->cache_ids_cap ? 2 * t->cache_ids_cap : 1 << 15;
        while (cap < t->cache_ids_len + (size_t)n) cap *= 2;
        int *p = realloc(t->cache_ids, cap * sizeof *p);
        if (!p) return err_set("out of memory");
        t->cache_ids = p; t->cache_ids_cap = cap;
    }
    CacheSlot *s = cache_slot(t, key, len, h);
    if (s->key_len) return 0;
    s->hash = h;
    s->key_off = (uint32_t)t->cache_keys_len; s->key_len = (uint32_t)len;
    s->ids_off = (uint32_t)t->cache_ids_len; s->ids_len = (uint32_t)n;
    memcpy(t->cache_keys + t->cache_keys_len, key, len);
    memcpy(t->cache_ids + t->cache_ids_len, ids, sizeof(int) * n);
    t->cache_keys_len += len;
    t->cache_ids_len += (size_t)n;
    t->cache_words++;
    return 0;
}

// Appends the ids of one pre-token (its UTF-8 bytes) to out.
static int encode_word(Tokenizer *t, const char *bytes, size_t len, IntBuf *out) {
    if (len == 15 && !memcmp(bytes, "<|startoftext|>", 15)) return intbuf_push(out, t->sot);
    if (len == 13 && !memcmp(bytes, "<|endoftext|>", 13)) return intbuf_push(out, t->eot);
    uint64_t h = fnv1a(bytes, len);
    pthread_mutex_lock(&t->cache_lock);
    CacheSlot *s = cache_slot(t, bytes, len, h);
    if (s->key_len) {
        int rc = 0;
        for (uint32_t i = 0; i < s->ids_len && !rc; i++) rc = intbuf_push(out, t->cache_ids[s->ids_off + i]);
        pthread_mutex_unlock(&t->cache_lock);
        return rc;
    }
    pthread_mutex_unlock(&t->cache_lock);
    int stack[64], *w = len <= 64 ? stack : malloc(sizeof(int) * len);
    if (!w) return err_set("out of memory");
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)bytes[i];
        w[i] = i + 1 == len ? t->byte_end_id[b] : t->byte_id[b];
    }
    int n = bpe_merge(t, w, (int)len), rc = 0;
    for (int i = 0; i < n && !rc; i++) rc = intbuf_push(out, w[i]);
    if (!rc) {
        pthread_mutex_lock(&t->cache_lock);
        rc = cache_store(t, bytes, len, h, w, n);
        pthread_mutex_unlock(&t->cache_lock);
    }
    if (w != stack) free(w);
    return rc;
}

// ---------------------------------------------------------------------------------------------------------
// Pre-tokens

// Does the literal ASCII pattern text lit match at s[i..]? Letters also match their IGNORECASE variants that
// survive lower() (U+017F LONG S for 's').
static int match_literal(const uint32_t *s, size_t n, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++) {
        if (i + k >= n) return 0;
        uint32_t c = s[i + k], want = (unsigned char)lit[k];
        if (c == want) continue;
        int ok = 0;
        for (int v = 0; v < uni_pattern_variant_count && !ok; v++)
            ok = uni_pattern_variant[v].from == want && uni_pattern_variant[v].to == c;
        if (!ok) return 0;
    }
    return 1;
}

// Length of the pre-token at s[i], or 0 when s[i] starts none (whitespace, dropped).
static size_t pretoken_len(const uint32_t *s, size_t n, size_t i) {
    uint32_t c = s[i];
    if (c == '<') {
        if (match_literal(s, n, i, "<|startoftext|>")) return 15;
        if (match_literal(s, n, i, "<|endoftext|>")) return 13;
    }
    if (c == '\'') {
        static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
        for (int k = 0; k < 7; k++)
            if (match_literal(s, n, i, contractions[k])) return strlen(contractions[k]);
    }
    size_t j = i;
    if (uni_is_letter(c)) {
        while (j < n && uni_is_letter(s[j])) j++;
        return j - i;
    }
    if (uni_is_number(c)) return 1;
    while (j < n && uni_is_other(s[j])) j++;
    return j - i;
}

// All ids of text, framed by SOT and EOT.
static int encode_into(Tokenizer *t, const char *text, IntBuf *out) {
    CpBuf clean = {0};
    if (text_clean_clip(text, strlen(text), &clean)) return -1;
    int rc = intbuf_push(out, t->sot);
    char *bytes = malloc(4 * clean.n + 1);
    if (!bytes) rc = err_set("out of memory");
    size_t i = 0;
    while (!rc && i < clean.n) {
        size_t len = pretoken_len(clean.cp, clean.n, i);
        if (!len) { i++; continue; }
        size_t nb = 0;
        for (size_t k = i; k < i + len; k++) nb += (size_t)utf8_encode(clean.cp[k], bytes + nb);
        rc = encode_word(t, bytes, nb, out);
        i += len;
    }
    if (!rc) rc = intbuf_push(out, t->eot);
    free(bytes);
    cpbuf_free(&clean);
    return rc;
}

int *tokenizer_encode_all(Tokenizer *t, const char *text, int *count) {
    IntBuf b = {0};
    if (encode_into(t, text, &b)) { free(b.v); return NULL; }
    *count = (int)b.n;
    return b.v;
}

int tokenizer_encode(Tokenizer *t, const char *text, int *ids, int max_len) {
    if (max_len < 2) return err_set("tokenizer: max length %d is below 2 (SOT and EOT)", max_len);
    IntBuf b = {0};
    if (encode_into(t, text, &b)) { free(b.v); return -1; }
    int n = (int)b.n <= max_len ? (int)b.n : max_len;
    memcpy(ids, b.v, sizeof(int) * n);
    ids[n - 1] = t->eot; // truncation keeps EOT last
    free(b.v);
    return n;
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n) {
    int byte_of[512];
    for (int i = 0; i < 512; i++) byte_of[i] = -1;
    for (int b = 0; b < 256; b++) byte_of[t->byte_cp[b]] = b;
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    for (int i = 0; out && i < n; i++) {
        if (ids[i] == t->sot || ids[i] == t->eot || ids[i] < 0 || ids[i] >= t->n_vocab) continue;
        CpBuf cps = {0};
        const char *s = t->tokens[ids[i]];
        if (utf8_decode(s, strlen(s), &cps)) { cpbuf_free(&cps); continue; }
        for (size_t k = 0; out && k < cps.n; k++) {
            if (len + 2 > cap) { char *p = realloc(out, cap *= 2); if (!p) free(out); out = p; if (!p) break; }
            out[len++] = cps.cp[k] < 512 && byte_of[cps.cp[k]] >= 0 ? (char)byte_of[cps.cp[k]] : '?';
        }
        cpbuf_free(&cps);
    }
    if (!out) { err_set("out of memory"); return NULL; }
    out[len] = 0;
    // '</w>' marks a word end: a space.
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        if (!strncmp(out + r, "</w>", 4)) { out[w++] = ' '; r += 4; }
        else out[w++] = out[r++];
    }
    out[w] = 0;
    return out;
}
