// Binding the towers' weights by their Hugging Face names; q|k|v of each block packed into one (3W, W) matrix.
#include "model/clip_model.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ClipTensorFn get;
    void *src;
} Source;

static const float *tensor(Source *s, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t shape[4] = {d0, d1, d2, d3};
    return s->get(s->src, name, shape, ndim);
}

#define T1(name, a) tensor(src, name, 1, a, 0, 0, 0)
#define T2(name, a, b) tensor(src, name, 2, a, b, 0, 0)

// Binds block weights under PREFIX.encoder.layers.N and packs q|k|v into packed (layers, 3W*W + 3W).
static int bind_blocks(ClipBlock *blocks, float **packed_out, const char *prefix, const TowerShape *sh, Source *src) {
    int W = sh->width, I = sh->mlp, L = sh->layers;
    size_t per = (size_t)3 * W * W + 3 * W;
    float *packed = malloc(sizeof(float) * per * L);
    if (!packed) return err_set("%s: out of memory packing q|k|v (%d layers)", prefix, L);
    *packed_out = packed;
    char name[256];
    for (int l = 0; l < L; l++) {
        ClipBlock *b = &blocks[l];
        float *qkv_w = packed + per * l, *qkv_b = qkv_w + (size_t)3 * W * W;
        const char *part[3] = {"q", "k", "v"};
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s_proj.weight", prefix, l, part[j]);
            const float *w = T2(name, W, W);
            if (!w) return -1;
            memcpy(qkv_w + (size_t)j * W * W, w, sizeof(float) * W * W);
            snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s_proj.bias", prefix, l, part[j]);
            const float *bias = T1(name, W);
            if (!bias) return -1;
            memcpy(qkv_b + (size_t)j * W, bias, sizeof(float) * W);
        }
        b->qkv_w = qkv_w;
        b->qkv_b = qkv_b;
#define GET(field, suffix, ...)                                                              \
        snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", prefix, l, suffix);          \
        if (!(b->field = tensor(src, name, __VA_ARGS__))) return -1;
        GET(out_w, "self_attn.out_proj.weight", 2, W, W, 0, 0)
        GET(out_b, "self_attn.out_proj.bias", 1, W, 0, 0, 0)
        GET(ln1_w, "layer_norm1.weight", 1, W, 0, 0, 0)
        GET(ln1_b, "layer_norm1.bias", 1, W, 0, 0, 0)
        GET(ln2_w, "layer_norm2.weight", 1, W, 0, 0, 0)
        GET(ln2_b, "layer_norm2.bias", 1, W, 0, 0, 0)
        GET(fc1_w, "mlp.fc1.weight", 2, I, W, 0, 0)
        GET(fc1_b, "mlp.fc1.bias", 1, I, 0, 0, 0)
        GET(fc2_w, "mlp.fc2.weight", 2, W, I, 0, 0)
        GET(fc2_b, "mlp.fc2.bias", 1, W, 0, 0, 0)
#undef GET
    }
    return 0;
}

static int check_shape(const TowerShape *sh, const char *tower) {
    if (sh->width <= 0 || sh->layers <= 0 || sh->heads <= 0 || sh->mlp <= 0 || sh->width % sh->heads)
        return err_set("%s config: hidden_size %d must be a positive multiple of num_attention_heads %d "
                       "(layers %d, intermediate_size %d)", tower, sh->width, sh->heads, sh->layers, sh->mlp);
    return 0;
}

int clip_text_bind(ClipText *t, const ClipConfig *cfg, ClipTensorFn get, void *source) {
    memset(t, 0, sizeof *t);
    Source s = {get, source}, *src = &s;
    if (check_shape(&cfg->text, "text") < 0) return -1;
    t->shape = cfg->text;
    t->vocab_size = cfg->vocab_size;
    t->context_length = cfg->context_length;
    t->eos_token_id = cfg->eos_token_id;
    t->proj_dim = cfg->projection_dim;
    int W = t->shape.width;
    if (!(t->token_embedding = T2("text_model.embeddings.token_embedding.weight", t->vocab_size, W)) ||
        !(t->position_embedding = T2("text_model.embeddings.position_embedding.weight", t->context_length, W)) ||
        !(t->final_ln_w = T1("text_model.final_layer_norm.weight", W)) ||
        !(t->final_ln_b = T1("text_model.final_layer_norm.bias", W)) ||
        !(t->projection = T2("text_projection.weight", t->proj_dim, W)))
        return -1;
    t->blocks = calloc(t->shape.layers, sizeof(ClipBlock));
    if (!t->blocks || bind_blocks(t->blocks, &t->packed, "text_model", &t->shape, src) < 0) {
        clip_text_release(t);
        return -1;
    }
    return 0;
}

int clip_vision_bind(ClipVision *v, const ClipConfig *cfg, ClipTensorFn get, void *source) {
    memset(v, 0, sizeof *v);
    Source s = {get, source}, *src = &s;
    if (check_shape(&cfg->vision, "vision") < 0) return -1;
    if (cfg->patch_size <= 0 || cfg->image_size < cfg->patch_size || cfg->channels <= 0)
        return err_set("vision config: image_size %d, patch_size %d, num_channels %d do not make a patch grid",
                       cfg->image_size, cfg->patch_size, cfg->channels);
    v->shape = cfg->vision;
    v->image_size = cfg->image_size;
    v->patch_size = cfg->patch_size;
    v->channels = cfg->channels;
    v->proj_dim = cfg->projection_dim;
    v->grid = cfg->image_size / cfg->patch_size;
    int W = v->shape.width, p = v->patch_size;
    if (!(v->class_embedding = T1("vision_model.embeddings.class_embedding", W)) ||
        !(v->patch_weight = tensor(src, "vision_model.embeddings.patch_embedding.weight", 4, W, v->channels, p, p)) ||
        !(v->position_embedding =
              T2("vision_model.embeddings.position_embedding.weight", (int64_t)v->grid * v->grid + 1, W)) ||
        !(v->pre_ln_w = T1("vision_model.pre_layrnorm.weight", W)) ||
        !(v->pre_ln_b = T1("vision_model.pre_layrnorm.bias", W)) ||
        !(v->post_ln_w = T1("vision_model.post_layernorm.weight", W)) ||
        !(v->post_ln_b = T1("vision_model.post_layernorm.bias", W)) ||
        !(v->projection = T2("visual_projection.weight", v->proj_dim, W)))
        return -1;
    v->blocks = calloc(v->shape.layers, sizeof(ClipBlock));
    if (!v->blocks || bind_blocks(v->blocks, &v->packed, "vision_model", &v->shape, src) < 0) {
        clip_vision_release(v);
        return -1;
    }
    return 0;
}

void clip_text_release(ClipText *t) {
    free(t->blocks);
    free(t->packed);
    t->blocks = NULL;
    t->packed = NULL;
}

void clip_vision_release(ClipVision *v) {
    free(v->blocks);
    free(v->packed);
    v->blocks = NULL;
    v->packed = NULL;
}
