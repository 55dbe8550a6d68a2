// Writers for safetensors files and for tiny random CLIP checkpoint folders.
#include "model/checkpoint_write.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/rng.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int safetensors_write(const char *path, const TensorOut *tensors, int n) {
    cJSON *hdr = cJSON_CreateObject();
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        for (int d = 0; d < tensors[i].ndim; d++) {
            count *= (size_t)tensors[i].shape[d];
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
        }
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToObject(t, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + 4 * count)));
        cJSON_AddItemToObject(t, "data_offsets", offs);
        cJSON_AddItemToObject(hdr, tensors[i].name, t);
        offset += 4 * count;
    }
    char *json = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;  // data starts 8-byte aligned
    size_t total = 8 + padded + offset;
    unsigned char *buf = malloc(total);
    uint64_t h = padded;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + 8, json, jlen);
    memset(buf + 8 + jlen, ' ', padded - jlen);
    free(json);
    unsigned char *p = buf + 8 + padded;
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < tensors[i].ndim; d++) count *= (size_t)tensors[i].shape[d];
        memcpy(p, tensors[i].data, 4 * count);  // little-endian hosts only (x86-64, arm64)
        p += 4 * count;
    }
    int rc = fs_write_atomic(path, buf, total);
    free(buf);
    return rc;
}

// A growing list of named random tensors.
typedef struct {
    TensorOut *t;
    int n, cap;
    Rng rng;
} TensorList;

static float *add_tensor(TensorList *l, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (l->n == l->cap) { l->cap = l->cap ? 2 * l->cap : 64; l->t = realloc(l->t, l->cap * sizeof *l->t); }
    TensorOut *t = &l->t[l->n++];
    t->name = strdup(name);
    t->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3};
    size_t count = 1;
    for (int d = 0; d < ndim; d++) { t->shape[d] = dims[d]; count *= (size_t)dims[d]; }
    float *data = calloc(count ? count : 1, sizeof(float));
    t->data = data;
    return data;
}

static void fill_normal(TensorList *l, float *x, size_t n, double std) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(&l->rng));
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

// One tower's encoder layers, with CLIP's initialisation (attn std w^-0.5, out/fc2 std w^-0.5 (2L)^-0.5,
// fc1 std (2w)^-0.5); biases get a small random value so that no path is trivially zero.
static void add_encoder(TensorList *l, const char *prefix, const TowerShape *s) {
    char name[256];
    int W = s->width, I = s->mlp;
    double attn_std = pow(W, -0.5), proj_std = attn_std * pow(2.0 * s->layers, -0.5), fc_std = pow(2.0 * W, -0.5);
    static const char *qkvo[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int L = 0; L < s->layers; L++) {
        for (int j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.weight", prefix, L, qkvo[j]);
            fill_normal(l, add_tensor(l, name, 2, W, W, 0, 0), (size_t)W * W, j == 3 ? proj_std : attn_std);
            snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.bias", prefix, L, qkvo[j]);
            fill_normal(l, add_tensor(l, name, 1, W, 0, 0, 0), W, 0.01);
        }
        for (int j = 1; j <= 2; j++) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.layer_norm%d.weight", prefix, L, j);
            fill_const(add_tensor(l, name, 1, W, 0, 0, 0), W, 1.0f);
            snprintf(name, sizeof name, "%s.encoder.layers.%d.layer_norm%d.bias", prefix, L, j);
            add_tensor(l, name, 1, W, 0, 0, 0);
        }
        snprintf(name, sizeof name, "%s.encoder.layers.%d.mlp.fc1.weight", prefix, L);
        fill_normal(l, add_tensor(l, name, 2, I, W, 0, 0), (size_t)I * W, fc_std);
        snprintf(name, sizeof name, "%s.encoder.layers.%d.mlp.fc1.bias", prefix, L);
        fill_normal(l, add_tensor(l, name, 1, I, 0, 0, 0), I, 0.01);
        snprintf(name, sizeof name, "%s.encoder.layers.%d.mlp.fc2.weight", prefix, L);
        fill_normal(l, add_tensor(l, name, 2, W, I, 0, 0), (size_t)W * I, proj_std);
        snprintf(name, sizeof name, "%s.encoder.layers.%d.mlp.fc2.bias", prefix, L);
        fill_normal(l, add_tensor(l, name, 1, W, 0, 0, 0), W, 0.01);
    }
}

static cJSON *tower_json(const TowerShape *s, int projection_dim) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "hidden_size", s->width);
    cJSON_AddNumberToObject(o, "intermediate_size", s->mlp);
    cJSON_AddNumberToObject(o, "num_attention_heads", s->heads);
    cJSON_AddNumberToObject(o, "num_hidden_layers", s->layers);
    cJSON_AddStringToObject(o, "hidden_act", s->act == ACT_GELU ? "gelu" : "quick_gelu");
    cJSON_AddNumberToObject(o, "layer_norm_eps", s->ln_eps);
    cJSON_AddNumberToObject(o, "projection_dim", projection_dim);
    return o;
}

int clip_write_config(const char *dir, const ClipConfig *cfg) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPModel"));
    cJSON_AddItemToObject(root, "architectures", arch);
    cJSON_AddStringToObject(root, "model_type", "clip");
    cJSON_AddNumberToObject(root, "projection_dim", cfg->projection_dim);
    cJSON_AddNumberToObject(root, "logit_scale_init_value", cfg->logit_scale_init);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON *text = tower_json(&cfg->text, cfg->projection_dim);
    cJSON_AddNumberToObject(text, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(text, "max_position_embeddings", cfg->context_length);
    cJSON_AddNumberToObject(text, "bos_token_id", 49406);
    cJSON_AddNumberToObject(text, "eos_token_id", cfg->eos_token_id);
    cJSON_AddNumberToObject(text, "pad_token_id", 1);
    cJSON_AddItemToObject(root, "text_config", text);
    cJSON *vision = tower_json(&cfg->vision, cfg->projection_dim);
    cJSON_AddNumberToObject(vision, "image_size", cfg->image_size);
    cJSON_AddNumberToObject(vision, "patch_size", cfg->patch_size);
    cJSON_AddNumberToObject(vision, "num_channels", cfg->channels);
    cJSON_AddItemToObject(root, "vision_config", vision);
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = fs_join(dir, "config.json");
    int rc = fs_write_atomic(path, json, strlen(json));
    free(path);
    free(json);
    return rc;
}

int clip_write_random(const char *dir, const ClipConfig *cfg, uint64_t seed) {
    if (fs_mkdirs(dir) != 0) return -1;
    if (clip_write_config(dir, cfg) != 0) return -1;
    TensorList l = {0};
    rng_seed(&l.rng, seed);
    int Wt = cfg->text.width, Wv = cfg->vision.width, P = cfg->projection_dim, p = cfg->patch_size;
    int grid = cfg->image_size / p, Nv = grid * grid + 1;
    fill_normal(&l, add_tensor(&l, "text_model.embeddings.token_embedding.weight", 2, cfg->vocab_size, Wt, 0, 0),
                (size_t)cfg->vocab_size * Wt, 0.02);
    fill_normal(&l, add_tensor(&l, "text_model.embeddings.position_embedding.weight", 2, cfg->context_length, Wt, 0, 0),
                (size_t)cfg->context_length * Wt, 0.01);
    add_encoder(&l, "text_model", &cfg->text);
    fill_const(add_tensor(&l, "text_model.final_layer_norm.weight", 1, Wt, 0, 0, 0), Wt, 1.0f);
    add_tensor(&l, "text_model.final_layer_norm.bias", 1, Wt, 0, 0, 0);
    double vscale = pow(Wv, -0.5);
    fill_normal(&l, add_tensor(&l, "vision_model.embeddings.class_embedding", 1, Wv, 0, 0, 0), Wv, vscale);
    fill_normal(&l, add_tensor(&l, "vision_model.embeddings.patch_embedding.weight", 4, Wv, cfg->channels, p, p),
                (size_t)Wv * cfg->channels * p * p, 1.0 / sqrt((double)cfg->channels * p * p));
    fill_normal(&l, add_tensor(&l, "vision_model.embeddings.position_embedding.weight", 2, Nv, Wv, 0, 0),
                (size_t)Nv * Wv, vscale);
    fill_const(add_tensor(&l, "vision_model.pre_layrnorm.weight", 1, Wv, 0, 0, 0), Wv, 1.0f);
    add_tensor(&l, "vision_model.pre_layrnorm.bias", 1, Wv, 0, 0, 0);
    add_encoder(&l, "vision_model", &cfg->vision);
    fill_const(add_tensor(&l, "vision_model.post_layernorm.weight", 1, Wv, 0, 0, 0), Wv, 1.0f);
    add_tensor(&l, "vision_model.post_layernorm.bias", 1, Wv, 0, 0, 0);
    fill_normal(&l, add_tensor(&l, "visual_projection.weight", 2, P, Wv, 0, 0), (size_t)P * Wv, vscale);
    fill_normal(&l, add_tensor(&l, "text_projection.weight", 2, P, Wt, 0, 0), (size_t)P * Wt, pow(Wt, -0.5));
    fill_const(add_tensor(&l, "logit_scale", 0, 0, 0, 0, 0), 1, cfg->logit_scale_init);
    char *path = fs_join(dir, "model.safetensors");
    int rc = safetensors_write(path, l.t, l.n);
    free(path);
    for (int i = 0; i < l.n; i++) { free((void *)l.t[i].name); free((void *)l.t[i].data); }
    free(l.t);
    return rc;
}

// OpenAI's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 + n in order.
static void byte_to_utf8(int byte, char out[3]) {
    int printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
    int cp = byte;
    if (!printable) {
        int n = 0;
        for (int b = 0; b < byte; b++)
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

int clip_write_small_vocab(const char *dir, const char *const *words, int n_words) {
    if (fs_mkdirs(dir) != 0) return -1;
    cJSON *vocab = cJSON_CreateObject();
    int id = 0;
    char sym[256][3];
    for (int b = 0; b < 256; b++) byte_to_utf8(b, sym[b]);
    // Id order is bytes_to_unicode()'s: the 188 printable bytes first, then the other 68.
    int order[256], k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            if (printable == (pass == 0)) order[k++] = b;
        }
    for (int i = 0; i < 256; i++) cJSON_AddNumberToObject(vocab, sym[order[i]], id++);
    for (int i = 0; i < 256; i++) {
        char s[16];
        snprintf(s, sizeof s, "%s</w>", sym[order[i]]);
        cJSON_AddNumberToObject(vocab, s, id++);
    }
    // Merges spelling each lowercase ASCII word left to right: ((w o) r) d</w> ...
    size_t cap = 1 << 16, len = 0;
    char *merges = malloc(cap);
    len += (size_t)snprintf(merges, cap, "#version: 0.2\n");
    for (int w = 0; w < n_words; w++) {
        const char *word = words[w];
        size_t n = strlen(word);
        if (n < 2) continue;
        char left[256] = "";
        snprintf(left, sizeof left, "%s", sym[(unsigned char)word[0]]);
        for (size_t i = 1; i < n && strlen(left) < 200; i++) {
            char right[16], joined[256];
            snprintf(right, sizeof right, "%s%s", sym[(unsigned char)word[i]], i == n - 1 ? "</w>" : "");
            snprintf(joined, sizeof joined, "%s%s", left, right);
            if (!cJSON_GetObjectItemCaseSensitive(vocab, joined)) {
                if (len + 600 > cap) { cap *= 2; merges = realloc(merges, cap); }
                len += (size_t)snprintf(merges + len, cap - len, "%s %s\n", left, right);
                cJSON_AddNumberToObject(vocab, joined, id++);
            }
            snprintf(left, sizeof left, "%s", joined);
        }
    }
    while (id < 49406) {
        char s[32];
        snprintf(s, sizeof s, "<|unused_%d|>", id);
        cJSON_AddNumberToObject(vocab, s, id++);
    }
    cJSON_AddNumberToObject(vocab, "<|startoftext|>", 49406);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", 49407);
    char *json = cJSON_PrintUnformatted(vocab);
    cJSON_Delete(vocab);
    char *vpath = fs_join(dir, "vocab.json"), *mpath = fs_join(dir, "merges.txt");
    int rc = fs_write_atomic(vpath, json, strlen(json));
    if (rc == 0) rc = fs_write_atomic(mpath, merges, len);
    free(vpath);
    free(mpath);
    free(json);
    free(merges);
    return rc;
}
