// open_clip state dict -> Hugging Face CLIP folder (see convert_openclip.h).
#include "model/convert_openclip.h"
#include "model/checkpoint_write.h"
#include "model/tokenizer.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_OUT = 16 + 2 * 16 * 64, MAX_OWNED = 4 };

typedef struct {
    Checkpoint *ck;
    const char *in, *prefix;  // prefix: "" or "module."
    TensorOut t[MAX_OUT];
    char *names[MAX_OUT];
    int n;
    float *owned[MAX_OWNED];  // transposed projections
    int n_owned;
    char *used[MAX_OUT];      // source tensors mapped (to name one this converter does not know)
    int n_used;
} Conv;

// The source tensor NAME (prefix added) with the given shape; NULL with err_set naming the file and tensor.
static const float *src(Conv *c, const char *name, const int64_t *shape, int ndim) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", c->prefix, name);
    const float *x = checkpoint_tensor_f32(c->ck, full, shape, ndim);
    if (x && c->n_used < MAX_OUT && !(c->used[c->n_used++] = strdup(full))) { err_set("out of memory"); return NULL; }
    return x;
}

static int src_shape(Conv *c, const char *name, int64_t shape[8], int *ndim) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", c->prefix, name);
    return checkpoint_shape(c->ck, full, shape, ndim);
}

static int has(Conv *c, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", c->prefix, name);
    return checkpoint_has(c->ck, full);
}

static int out(Conv *c, const char *name, const float *data, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (!data) return -1;
    if (c->n >= MAX_OUT) return err_set("%s: more tensors than a CLIP model has", c->in);
    char *nm = strdup(name);
    if (!nm) return err_set("out of memory");
    c->names[c->n] = nm;
    c->t[c->n] = (TensorOut){nm, data, ndim, {d0, d1, d2, d3}};
    c->n++;
    return 0;
}

// dst (cols, rows) = src (rows, cols)ᵀ, owned by c.
static const float *transposed(Conv *c, const float *x, int64_t rows, int64_t cols) {
    if (!x) return NULL;
    float *y = malloc(sizeof(float) * rows * cols);
    if (!y || c->n_owned >= MAX_OWNED) { free(y); err_set("out of memory"); return NULL; }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) y[k * rows + r] = x[r * cols + k];
    c->owned[c->n_owned++] = y;
    return y;
}

static int count_blocks(Conv *c, const char *tower) {
    int n = 0;
    char nm[160];
    for (;; n++) {
        snprintf(nm, sizeof nm, "%stransformer.resblocks.%d.ln_1.weight", tower, n);
        if (!has(c, nm)) return n;
    }
}

// Block i's tensor open_clip `FROM`transformer.resblocks.i.OC, shape (d0) or (d0, d1), as HF `TO`encoder.layers.i.HF.
static int block_tensor(Conv *c, const char *from, const char *to, int i, const char *oc, const char *hf, int64_t d0,
                        int64_t d1) {
    char s[192], d[192];
    snprintf(s, sizeof s, "%stransformer.resblocks.%d.%s", from, i, oc);
    snprintf(d, sizeof d, "%sencoder.layers.%d.%s", to, i, hf);
    int64_t shape[2] = {d0, d1};
    int nd = d1 ? 2 : 1;
    return out(c, d, src(c, s, shape, nd), nd, d0, d1, 0, 0);
}

// One transformer's blocks (L of width W, MLP width I).
static int blocks(Conv *c, const char *from, const char *to, int L, int64_t W, int64_t I) {
    for (int i = 0; i < L; i++) {
        // in_proj rows are q | k | v (torch.nn.MultiheadAttention), each (W, W): one source, three outputs
        char s[192], d[192];
        int64_t w3[2] = {3 * W, W}, b3[1] = {3 * W};
        snprintf(s, sizeof s, "%stransformer.resblocks.%d.attn.in_proj_weight", from, i);
        const float *in_w = src(c, s, w3, 2);
        snprintf(s, sizeof s, "%stransformer.resblocks.%d.attn.in_proj_bias", from, i);
        const float *in_b = src(c, s, b3, 1);
        if (!in_w || !in_b) return -1;
        static const char qkv[3] = {'q', 'k', 'v'};
        for (int j = 0; j < 3; j++) {
            snprintf(d, sizeof d, "%sencoder.layers.%d.self_attn.%c_proj.weight", to, i, qkv[j]);
            if (out(c, d, in_w + (size_t)j * W * W, 2, W, W, 0, 0)) return -1;
            snprintf(d, sizeof d, "%sencoder.layers.%d.self_attn.%c_proj.bias", to, i, qkv[j]);
            if (out(c, d, in_b + (size_t)j * W, 1, W, 0, 0, 0)) return -1;
        }
        if (block_tensor(c, from, to, i, "attn.out_proj.weight", "self_attn.out_proj.weight", W, W) ||
            block_tensor(c, from, to, i, "attn.out_proj.bias", "self_attn.out_proj.bias", W, 0) ||
            block_tensor(c, from, to, i, "ln_1.weight", "layer_norm1.weight", W, 0) ||
            block_tensor(c, from, to, i, "ln_1.bias", "layer_norm1.bias", W, 0) ||
            block_tensor(c, from, to, i, "ln_2.weight", "layer_norm2.weight", W, 0) ||
            block_tensor(c, from, to, i, "ln_2.bias", "layer_norm2.bias", W, 0) ||
            block_tensor(c, from, to, i, "mlp.c_fc.weight", "mlp.fc1.weight", I, W) ||
            block_tensor(c, from, to, i, "mlp.c_fc.bias", "mlp.fc1.bias", I, 0) ||
            block_tensor(c, from, to, i, "mlp.c_proj.weight", "mlp.fc2.weight", W, I) ||
            block_tensor(c, from, to, i, "mlp.c_proj.bias", "mlp.fc2.bias", W, 0))
            return -1;
    }
    return 0;
}

static int heads_for(const char *what, int64_t width, int given, int head_width) {
    int h = given > 0 ? given : (head_width > 0 && width % head_width == 0 ? (int)(width / head_width) : 0);
    if (h <= 0 || width % h)
        return err_set("%s width %lld: cannot derive the head count (give it: --%s-heads)", what, (long long)width, what);
    return h;
}

static int vision(Conv *c, ClipConfig *cfg, const OpenclipOptions *opt) {
    int64_t sh[8];
    int nd;
    if (src_shape(c, "visual.conv1.weight", sh, &nd) < 0) return err_wrap("not an open_clip ViT checkpoint: ");
    if (nd != 4 || sh[2] != sh[3]) return err_set("%s: visual.conv1.weight: expected (width, 3, p, p)", c->in);
    int64_t W = sh[0], C = sh[1], p = sh[2];
    if (src_shape(c, "visual.positional_embedding", sh, &nd) < 0) return -1;
    int64_t T = sh[0], g = (int64_t)llround(sqrt((double)(T - 1)));
    if (nd != 2 || g * g + 1 != T) return err_set("%s: visual.positional_embedding: %lld rows is not grid² + 1", c->in, (long long)T);
    if (src_shape(c, "visual.proj", sh, &nd) < 0) return -1;
    int64_t P = sh[1];
    int L = count_blocks(c, "visual.");
    if (L < 1) return err_set("%s: no visual.transformer.resblocks.0.*", c->in);
    if (src_shape(c, "visual.transformer.resblocks.0.mlp.c_fc.weight", sh, &nd) < 0) return -1;
    int64_t I = sh[0];
    int H = heads_for("vision", W, opt->vision_heads, opt->head_width);
    if (H < 0) return -1;
    cfg->vision = (TowerShape){(int)W, L, H, (int)I, 1e-5f, opt->act};
    cfg->image_size = (int)(g * p);
    cfg->patch_size = (int)p;
    cfg->channels = (int)C;
    cfg->projection_dim = (int)P;
    int64_t w[1] = {W}, conv[4] = {W, C, p, p}, pos[2] = {T, W}, proj[2] = {W, P};
    if (out(c, "vision_model.embeddings.class_embedding", src(c, "visual.class_embedding", w, 1), 1, W, 0, 0, 0) ||
        out(c, "vision_model.embeddings.patch_embedding.weight", src(c, "visual.conv1.weight", conv, 4), 4, W, C, p, p) ||
        out(c, "vision_model.embeddings.position_embedding.weight", src(c, "visual.positional_embedding", pos, 2), 2, T, W, 0, 0) ||
        out(c, "vision_model.pre_layrnorm.weight", src(c, "visual.ln_pre.weight", w, 1), 1, W, 0, 0, 0) ||
        out(c, "vision_model.pre_layrnorm.bias", src(c, "visual.ln_pre.bias", w, 1), 1, W, 0, 0, 0) ||
        out(c, "vision_model.post_layernorm.weight", src(c, "visual.ln_post.weight", w, 1), 1, W, 0, 0, 0) ||
        out(c, "vision_model.post_layernorm.bias", src(c, "visual.ln_post.bias", w, 1), 1, W, 0, 0, 0) ||
        out(c, "visual_projection.weight", transposed(c, src(c, "visual.proj", proj, 2), W, P), 2, P, W, 0, 0))
        return -1;
    return blocks(c, "visual.", "vision_model.", L, W, I);
}

static int text(Conv *c, ClipConfig *cfg, const OpenclipOptions *opt) {
    int64_t sh[8];
    int nd;
    if (src_shape(c, "token_embedding.weight", sh, &nd) < 0) return err_wrap("no text tower: ");
    int64_t V = sh[0], W = sh[1];
    if (src_shape(c, "positional_embedding", sh, &nd) < 0) return -1;
    int64_t ctx = sh[0];
    if (src_shape(c, "text_projection", sh, &nd) < 0) return -1;
    if (nd != 2 || sh[1] != cfg->projection_dim)
        return err_set("%s: text_projection: %lld columns, the visual projection has %d", c->in, (long long)sh[1],
                       cfg->projection_dim);
    int L = count_blocks(c, "");
    if (L < 1) return err_set("%s: no transformer.resblocks.0.*", c->in);
    if (src_shape(c, "transformer.resblocks.0.mlp.c_fc.weight", sh, &nd) < 0) return -1;
    int64_t I = sh[0], P = cfg->projection_dim;
    int H = heads_for("text", W, opt->text_heads, opt->head_width);
    if (H < 0) return -1;
    cfg->text = (TowerShape){(int)W, L, H, (int)I, 1e-5f, opt->act};
    cfg->vocab_size = (int)V;
    cfg->context_length = (int)ctx;
    cfg->eos_token_id = 49407;  // open_clip pools at argmax(ids): the end-of-text id is the largest
    int64_t tok[2] = {V, W}, pos[2] = {ctx, W}, w[1] = {W}, proj[2] = {W, P};
    if (out(c, "text_model.embeddings.token_embedding.weight", src(c, "token_embedding.weight", tok, 2), 2, V, W, 0, 0) ||
        out(c, "text_model.embeddings.position_embedding.weight", src(c, "positional_embedding", pos, 2), 2, ctx, W, 0, 0) ||
        out(c, "text_model.final_layer_norm.weight", src(c, "ln_final.weight", w, 1), 1, W, 0, 0, 0) ||
        out(c, "text_model.final_layer_norm.bias", src(c, "ln_final.bias", w, 1), 1, W, 0, 0, 0) ||
        out(c, "text_projection.weight", transposed(c, src(c, "text_projection", proj, 2), W, P), 2, P, W, 0, 0))
        return -1;
    return blocks(c, "", "text_model.", L, W, I);
}

// Checks that the BPE vocabulary loads and has the model's vocabulary size.
static int check_vocab(const char *vocab, int vocab_size) {
    Tokenizer *t = tokenizer_load(vocab);
    if (!t) return err_wrap("--vocab: ");
    int n = tokenizer_vocab_size(t);
    tokenizer_free(t);
    if (n != vocab_size)
        return err_set("--vocab %s: %d entries, the checkpoint's token embedding has %d", vocab, n, vocab_size);
    return 0;
}

// Copies the BPE vocabulary into dir: a .txt.gz file, or a folder's vocab.json + merges.txt.
static int copy_vocab(const char *vocab, const char *dir) {
    static const char *hf_files[2] = {"vocab.json", "merges.txt"};
    int is_dir = fs_is_dir(vocab);
    for (int i = 0; i < (is_dir ? 2 : 1); i++) {
        char *from = is_dir ? fs_join(vocab, hf_files[i]) : strdup(vocab);
        // tokenizer_load_dir looks for this name; zlib reads it whether or not it is compressed
        char *to = fs_join(dir, is_dir ? hf_files[i] : "bpe_simple_vocab_16e6.txt.gz");
        size_t len = 0;
        char *data = fs_read_file(from, &len);
        int rc = data ? fs_write_atomic(to, data, len) : -1;
        free(data); free(from); free(to);
        if (rc) return -1;
    }
    return 0;
}

static int write_preprocessor(const char *dir, const ClipConfig *cfg) {
    // open_clip normalises with OpenAI's statistics unless a model config says otherwise (none of the CLIP ViTs)
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "image_mean", cJSON_CreateDoubleArray(mean, 3));
    cJSON_AddItemToObject(o, "image_std", cJSON_CreateDoubleArray(std, 3));
    cJSON_AddNumberToObject(o, "crop_size", cfg->image_size);
    cJSON_AddNumberToObject(o, "size", cfg->image_size);
    cJSON_AddStringToObject(o, "image_processor_type", "CLIPImageProcessor");
    char *json = cJSON_Print(o);
    cJSON_Delete(o);
    char *path = fs_join(dir, "preprocessor_config.json");
    int rc = json ? fs_write_atomic(path, json, strlen(json)) : err_set("out of memory");
    free(path);
    free(json);
    return rc;
}

int openclip_convert(const char *in, const char *outdir, const char *vocab, const OpenclipOptions *opt, ClipConfig *cfg_out) {
    ClipConfig cfg = {0};
    int rc = -1;
    if (!vocab) return err_set("--vocab: the CLIP BPE vocabulary is needed (open_clip ships it as "
                               "src/open_clip/bpe_simple_vocab_16e6.txt.gz; a Hugging Face CLIP folder also works)");
    Conv *c = calloc(1, sizeof *c);  // ~150 KB of tensor tables: not on the stack
    if (!c) return err_set("out of memory");
    c->in = in;
    c->prefix = "";
    if (!(c->ck = checkpoint_open_file(in))) { free(c); return -1; }
    if (checkpoint_has(c->ck, "module.visual.conv1.weight")) c->prefix = "module.";
    if (vision(c, &cfg, opt) || text(c, &cfg, opt)) goto done;
    cfg.logit_scale_init = 2.6592f;  // HF's default; the trained value is copied below when present
    int64_t none[1] = {0};
    if (has(c, "logit_scale")) {
        const float *ls = src(c, "logit_scale", none, 0);
        if (!ls || out(c, "logit_scale", ls, 0, 0, 0, 0, 0)) goto done;
        cfg.logit_scale_init = ls[0];
    }
    // Every tensor must have been mapped: anything else (LayerScale, attention pooling, a ResNet tower) belongs
    // to a model this converter does not know, and leaving it out would change the features silently.
    for (int i = 0; i < checkpoint_count(c->ck); i++) {
        const char *dt;
        const int64_t *shape;
        int ndim, known = 0;
        const char *name = checkpoint_entry(c->ck, i, &dt, &shape, &ndim);
        for (int k = 0; k < c->n_used && !known; k++) known = !strcmp(name, c->used[k]);
        if (!known) {
            err_set("%s: tensor %s is not part of a plain CLIP ViT (LayerScale, attention pooling, a ResNet tower?): "
                    "this converter does not know that architecture", in, name);
            goto done;
        }
    }
    if (check_vocab(vocab, cfg.vocab_size)) goto done;  // before anything is written
    cfg.image_mean[0] = 0.48145466f; cfg.image_mean[1] = 0.4578275f; cfg.image_mean[2] = 0.40821073f;
    cfg.image_std[0] = 0.26862954f; cfg.image_std[1] = 0.26130258f; cfg.image_std[2] = 0.27577711f;
    if (fs_mkdirs(outdir) < 0) goto done;
    char *st = fs_join(outdir, "model.safetensors");
    rc = safetensors_write(st, c->t, c->n);
    free(st);
    if (rc == 0) rc = clip_write_config(outdir, &cfg);
    if (rc == 0) rc = write_preprocessor(outdir, &cfg);
    if (rc == 0) rc = copy_vocab(vocab, outdir);
    if (rc == 0 && cfg_out) *cfg_out = cfg;
done:
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    for (int i = 0; i < c->n_used; i++) free(c->used[i]);
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
    checkpoint_close(c->ck);
    free(c);
    return rc;
}
