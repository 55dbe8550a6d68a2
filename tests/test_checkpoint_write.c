// Random CLIP folders written in C, read back by an independent Python safetensors parser
// (tests/check_random_checkpoint.py): names, shapes, alignment and initialisation scales.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "model/checkpoint_write.h"

static ClipConfig tiny_config(void) {
    ClipConfig c = {0};
    c.text = (TowerShape){.width = 32, .layers = 2, .heads = 4, .mlp = 128, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.vision = (TowerShape){.width = 48, .layers = 3, .heads = 4, .mlp = 192, .ln_eps = 1e-5f, .act = ACT_QUICK_GELU};
    c.vocab_size = 49408;
    c.context_length = 77;
    c.eos_token_id = 49407;
    c.image_size = 64;
    c.patch_size = 16;
    c.channels = 3;
    c.projection_dim = 24;
    c.logit_scale_init = 2.6592f;
    return c;
}

Test(checkpoint_write, random_clip_folder_reads_back) {
    char dir[] = "/tmp/kanoclip-ckw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    ClipConfig c = tiny_config();
    cr_assert_eq(clip_write_random(dir, &c, 42), 0, "%s", err_msg());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_random_checkpoint.py %s", dir);
    cr_assert_eq(system(cmd), 0, "independent reader rejected %s", dir);
}

Test(checkpoint_write, small_vocab_has_clip_special_ids) {
    char dir[] = "/tmp/kanoclip-vocab-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *words[] = {"normal", "damaged", "brass", "disc"};
    cr_assert_eq(clip_write_small_vocab(dir, words, 4), 0, "%s", err_msg());
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json; v=json.load(open('%s/vocab.json')); "
             "m=open('%s/merges.txt').read().splitlines(); "
             "assert v['<|startoftext|>']==49406 and v['<|endoftext|>']==49407 and len(v)==49408; "
             "assert v['a']==64 and v['a</w>']==320 and v['!']==0; "
             "assert 'damaged</w>' in v and 'normal</w>' in v and m[0].startswith('#version'); "
             "assert len(set(v.values()))==len(v)\"", dir, dir);
    cr_assert_eq(system(cmd), 0, "vocab.json/merges.txt in %s fail the checks", dir);
}

Test(checkpoint_write, random_clip_folder_opens_with_our_loader) {
    char dir[] = "/tmp/kanoclip-ckw2-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    ClipConfig c = tiny_config(), back;
    cr_assert_eq(clip_write_random(dir, &c, 7), 0, "%s", err_msg());
    cr_assert_eq(clip_config_load(dir, &back), 0, "%s", err_msg());
    cr_assert_eq(back.text.width, 32);
    cr_assert_eq(back.vision.layers, 3);
    cr_assert_eq(back.image_size, 64);
    cr_assert_eq(back.patch_size, 16);
    cr_assert_eq(back.projection_dim, 24);
    Checkpoint *ck = checkpoint_open(dir);
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t shape[2] = {24, 48};
    const float *w = checkpoint_tensor_f32(ck, "visual_projection.weight", shape, 2);
    cr_assert_not_null(w, "%s", err_msg());
    double s2 = 0;
    for (int i = 0; i < 24 * 48; i++) s2 += (double)w[i] * w[i];
    cr_assert(s2 > 0.0);
    checkpoint_close(ck);
}
