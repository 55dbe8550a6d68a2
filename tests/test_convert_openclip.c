// kanoclip convert-openclip: an open_clip state dict (tests/ref_openclip.py) converted to a Hugging Face CLIP
// folder, loaded by the engine, gives the image and text features open_clip's own forward gives (PyTorch,
// relative 1e-4); a training checkpoint ("state_dict" wrapper, "module." prefix) converts to the same bytes; an
// architecture the converter does not know, or a missing vocabulary, is refused with one line and nothing written.
#include "tests/npy.h"
#include "tests/tmpdir.h"
#include "model/clip_model.h"
#include "model/convert_openclip.h"
#include "common/error.h"
#include "common/fsutil.h"

#define FIX "build/fixtures/openclip"

static char tmp[64];
static char vocab[512];

static void setup(void) {
    strcpy(tmp, "/tmp/kanoclip-oc-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    const char *shared = getenv("KANOCLIP_SHARED");
    snprintf(vocab, sizeof vocab, "%s/data/clip/bpe_simple_vocab_16e6.txt.gz", shared ? shared : "../shared");
}
static void teardown(void) { tmpdir_remove(tmp); }

TestSuite(convert_openclip, .init = setup, .fini = teardown);

static const OpenclipOptions OPT = {ACT_GELU, 64, 0, 2};  // vision heads from the width; text heads given

Test(convert_openclip, features_match_open_clip) {
    char out[128];
    snprintf(out, sizeof out, "%s/hf", tmp);
    ClipConfig cfg;
    cr_assert_eq(openclip_convert(FIX "/oc.pt", out, vocab, &OPT, &cfg), 0, "%s", err_msg());
    cr_assert_eq(cfg.vision.heads, 2);
    cr_assert_eq(cfg.image_size, 32);
    ClipModel *m = clip_model_load(out, CLIP_TEXT | CLIP_VISION);
    cr_assert_not_null(m, "%s", err_msg());
    cr_assert_eq(m->cfg.vision.act, ACT_GELU);
    // image features: the class token through post-LN and the projection
    float *pixels = npy_f32(FIX, "pixels", NULL), *want_i = npy_f32(FIX, "image_embeds", NULL);
    float got_i[2 * 48];
    ClipVisionRun *vr = clip_vision_run_new(&m->vision, 32, CLIP_POS_BILINEAR);
    ClipVisionOut o = {.image_embeds = got_i};
    cr_assert_eq(clip_vision_forward(vr, pixels, 2, &o), 0, "%s", err_msg());
    double ei = rel_error(got_i, want_i, 2 * 48);
    cr_assert(ei <= 1e-4, "image features: relative error %.3g", ei);
    // text features: pooled at the end-of-text token (open_clip: argmax of the ids)
    Npy ids64 = npy_load(FIX, "ids");
    int ids[3 * 16];
    for (int i = 0; i < 3 * 16; i++) ids[i] = (int)((int64_t *)ids64.data)[i];
    float *want_t = npy_f32(FIX, "text_embeds", NULL), got_t[3 * 48];
    ClipTextRun *tr = clip_text_run_new(&m->text, 0);
    cr_assert_eq(clip_text_forward_ids(tr, ids, 3, 16, got_t), 0, "%s", err_msg());
    double et = rel_error(got_t, want_t, 3 * 48);
    cr_assert(et <= 1e-4, "text features: relative error %.3g", et);
    fprintf(stderr, "convert-openclip: image features within %.2g, text features within %.2g\n", ei, et);
    clip_vision_run_free(vr);
    clip_text_run_free(tr);
    clip_model_free(m);
    free(pixels); free(want_i); free(want_t); free(ids64.data);
}

Test(convert_openclip, training_checkpoint_converts_to_the_same_bytes) {
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/plain", tmp);
    snprintf(b, sizeof b, "%s/wrapped", tmp);
    cr_assert_eq(openclip_convert(FIX "/oc.pt", a, vocab, &OPT, NULL), 0, "%s", err_msg());
    cr_assert_eq(openclip_convert(FIX "/oc_wrapped.pt", b, vocab, &OPT, NULL), 0, "%s", err_msg());
    const char *files[] = {"model.safetensors", "config.json", "preprocessor_config.json", "bpe_simple_vocab_16e6.txt.gz"};
    for (int i = 0; i < 4; i++) {
        char *pa = fs_join(a, files[i]), *pb = fs_join(b, files[i]);
        size_t na, nb;
        char *da = fs_read_file(pa, &na), *db = fs_read_file(pb, &nb);
        cr_assert(da && db && na == nb && !memcmp(da, db, na), "%s differs", files[i]);
        free(da); free(db); free(pa); free(pb);
    }
}

Test(convert_openclip, unknown_architecture_and_missing_vocab_write_nothing) {
    char out[128];
    snprintf(out, sizeof out, "%s/never", tmp);
    cr_assert_neq(openclip_convert(FIX "/oc_layerscale.pt", out, vocab, &OPT, NULL), 0);
    cr_assert_not_null(strstr(err_msg(), "tensor visual.transformer.resblocks.0.ls_1.gamma is not part of"), "%s", err_msg());
    cr_assert(!fs_exists(out), "%s was created", out);
    cr_assert_neq(openclip_convert(FIX "/oc.pt", out, NULL, &OPT, NULL), 0);
    cr_assert_not_null(strstr(err_msg(), "--vocab"), "%s", err_msg());
    cr_assert(!fs_exists(out), "%s was created", out);
    // text width 64 with open_clip's head width 64 would be 1 head; a width no head width divides is refused
    OpenclipOptions odd = {ACT_GELU, 48, 0, 0};
    cr_assert_neq(openclip_convert(FIX "/oc.pt", out, vocab, &odd, NULL), 0);
    cr_assert_not_null(strstr(err_msg(), "--vision-heads"), "%s", err_msg());
    cr_assert(!fs_exists(out), "%s was created", out);
}
