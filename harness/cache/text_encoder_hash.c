#include "harness/cache/text_encoder_hash.h"
#include "common/error.h"
#include "common/hash.h"

#include <stdio.h>
#include <string.h>

// Bumped when what the hash covers changes, so old caches are not taken for new ones.
#define TEXT_ENCODER_HASH_VERSION "kanoclip-text-encoder-1"

static void put_floats(Sha256 *h, const char *name, const float *x, size_t n) {
    char head[96];
    int k = snprintf(head, sizeof head, "%s:%zu;", name, n);
    sha256_update(h, head, (size_t)k);
    sha256_update(h, x, n * sizeof *x);
}

int text_encoder_hash(const ClipModel *m, const Tokenizer *tok, char hex[65]) {
    if (!(m->towers & CLIP_TEXT)) return err_set("text encoder hash: the model's text tower is not loaded");
    const ClipText *t = &m->text;
    const TowerShape *s = &t->shape;
    size_t W = (size_t)s->width, I = (size_t)s->mlp, P = (size_t)t->proj_dim;
    Sha256 h;
    sha256_init(&h);
    char head[256];
    int k = snprintf(head, sizeof head, "%s;width=%d;layers=%d;heads=%d;mlp=%d;eps=%.9g;act=%d;vocab=%d;ctx=%d;eos=%d;proj=%d;",
                     TEXT_ENCODER_HASH_VERSION, s->width, s->layers, s->heads, s->mlp, (double)s->ln_eps, (int)s->act,
                     t->vocab_size, t->context_length, t->eos_token_id, t->proj_dim);
    sha256_update(&h, head, (size_t)k);
    put_floats(&h, "token_embedding", t->token_embedding, (size_t)t->vocab_size * W);
    put_floats(&h, "position_embedding", t->position_embedding, (size_t)t->context_length * W);
    for (int l = 0; l < s->layers; l++) {
        const ClipBlock *b = &t->blocks[l];
        put_floats(&h, "ln1_w", b->ln1_w, W);
        put_floats(&h, "ln1_b", b->ln1_b, W);
        put_floats(&h, "qkv_w", b->qkv_w, 3 * W * W);
        put_floats(&h, "qkv_b", b->qkv_b, 3 * W);
        put_floats(&h, "out_w", b->out_w, W * W);
        put_floats(&h, "out_b", b->out_b, W);
        put_floats(&h, "ln2_w", b->ln2_w, W);
        put_floats(&h, "ln2_b", b->ln2_b, W);
        put_floats(&h, "fc1_w", b->fc1_w, I * W);
        put_floats(&h, "fc1_b", b->fc1_b, I);
        put_floats(&h, "fc2_w", b->fc2_w, W * I);
        put_floats(&h, "fc2_b", b->fc2_b, W);
    }
    put_floats(&h, "final_ln_w", t->final_ln_w, W);
    put_floats(&h, "final_ln_b", t->final_ln_b, W);
    put_floats(&h, "projection", t->projection, P * W);
    int V = tokenizer_vocab_size(tok);
    k = snprintf(head, sizeof head, "tokenizer:%d;", V);
    sha256_update(&h, head, (size_t)k);
    for (int i = 0; i < V; i++) {
        const char *e = tokenizer_token_str(tok, i);
        if (!e) e = "";
        sha256_update(&h, e, strlen(e) + 1);  // the NUL separates entries
    }
    sha256_final_hex(&h, hex);
    return 0;
}
