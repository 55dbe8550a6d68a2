// Test helper for the baselines' suites (test_baselines.c, test_mvfa.c): the tiny random CLIP of DIR/ckpt, the real
// CLIP vocabulary (KANOCLIP_SHARED, else ../shared) and the batch of three images the reference script wrote beside
// it (pixels, masks, labels).
#ifndef TESTS_CLIP_BATCH_FIXTURE_H
#define TESTS_CLIP_BATCH_FIXTURE_H

#include "tests/npy.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "model/clip_model.h"
#include "model/tokenizer.h"

static ClipModel *model;
static Tokenizer *tok;
static float *pixels, *masks;
static int labels[3];

static void clip_batch_load(const char *dir) {
    char *ckpt = fs_join(dir, "ckpt");
    model = clip_model_load(ckpt, CLIP_TEXT | CLIP_VISION);
    free(ckpt);
    cr_assert_not_null(model, "%s", err_msg());
    const char *shared = getenv("KANOCLIP_SHARED");
    char *base = fs_join(shared && *shared ? shared : "../shared", "data/clip");
    char *p = fs_join(base, "bpe_simple_vocab_16e6.txt.gz");
    tok = tokenizer_load(p);
    cr_assert_not_null(tok, "%s", err_msg());
    free(base);
    free(p);
    pixels = npy_f32(dir, "pixels", NULL);
    masks = npy_f32(dir, "masks", NULL);
    Npy l = npy_load(dir, "labels");
    for (int i = 0; i < 3; i++) labels[i] = (int)((int64_t *)l.data)[i];
    free(l.data);
}

static void clip_batch_free(void) {
    clip_model_free(model);
    tokenizer_free(tok);
    free(pixels);
    free(masks);
}

#endif
