#define _GNU_SOURCE  // memmem
// Checkpoint loading: config.json defaults, safetensors (F32/F16/BF16) and pytorch_model.bin against the values
// tests/ref_ckpt.py wrote with PyTorch, and every kind of broken file giving an error that names file and tensor.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/rng.h"
#include "model/checkpoint.h"
#include "model/torch_pickle.h"

#define FIX "build/fixtures/ckpt/"

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[8];
    size_t offset, numel;   // into the expected floats
} Expected;

// Reads FOLDER/expected.txt and expected.f32 (written by ref_ckpt.py); returns the count.
static int load_expected(const char *folder, Expected **out, float **values) {
    char path[512];
    snprintf(path, sizeof path, "%s/expected.txt", folder);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "missing %s (run make fixtures)", path);
    int n = 0, cap = 0;
    Expected *e = NULL;
    char line[1024];
    size_t at = 0;
    while (fgets(line, sizeof line, f)) {
        if (n == cap) e = realloc(e, (cap = cap ? 2 * cap : 64) * sizeof *e);
        Expected *x = &e[n++];
        char *tok = strtok(line, " \n");
        snprintf(x->name, sizeof x->name, "%s", tok);
        x->ndim = atoi(strtok(NULL, " \n"));
        x->numel = 1;
        for (int d = 0; d < x->ndim; d++) x->numel *= (size_t)(x->shape[d] = atoll(strtok(NULL, " \n")));
        x->offset = at;
        at += x->numel;
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/expected.f32", folder);
    size_t size = 0;
    char *bytes = fs_read_file(path, &size);
    cr_assert_not_null(bytes, "%s", err_msg());
    cr_assert_eq(size, at * sizeof(float), "%s: %zu bytes for %zu floats", path, size, at);
    *values = (float *)bytes;
    *out = e;
    return n;
}

// Every floating tensor equal bit for bit to PyTorch's float32 (after its rounding to the stored dtype).
static void check_all_tensors(const char *folder, int extra_tensors) {
    Expected *e;
    float *want;
    int n = load_expected(folder, &e, &want);
    Checkpoint *ck = checkpoint_open(folder);
    cr_assert_not_null(ck, "%s", err_msg());
    cr_assert_eq(checkpoint_count(ck), n + extra_tensors, "%d tensors, expected %d", checkpoint_count(ck), n + extra_tensors);
    for (int i = 0; i < n; i++) {
        cr_assert(checkpoint_has(ck, e[i].name), "%s", e[i].name);
        const float *got = checkpoint_tensor_f32(ck, e[i].name, e[i].shape, e[i].ndim);
        cr_assert_not_null(got, "%s", err_msg());
        cr_assert_eq(memcmp(got, want + e[i].offset, e[i].numel * sizeof(float)), 0, "%s: values differ", e[i].name);
        // A second request gives the same memory (converted once).
        cr_assert_eq(checkpoint_tensor_f32(ck, e[i].name, e[i].shape, e[i].ndim), got);
    }
    checkpoint_close(ck);
    free(e);
    free(want);
}

Test(checkpoint, safetensors_f32_exact) { check_all_tensors(FIX "f32", 2); }
Test(checkpoint, safetensors_f16_exact_after_rounding) { check_all_tensors(FIX "f16", 2); }
Test(checkpoint, safetensors_bf16_exact_after_rounding) { check_all_tensors(FIX "bf16", 2); }

Test(checkpoint, pytorch_bin_exact) { check_all_tensors(FIX "bin", 2); }
Test(checkpoint, pytorch_bin_f16_exact_after_rounding) { check_all_tensors(FIX "bin_f16", 2); }

Test(checkpoint, pytorch_bin_views_share_storage) {
    Checkpoint *ck = checkpoint_open(FIX "bin");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t base_shape[2] = {6, 5}, view_shape[2] = {4, 5};
    const float *base = checkpoint_tensor_f32(ck, "extra.base", base_shape, 2);
    const float *view = checkpoint_tensor_f32(ck, "extra.rows_from_2", view_shape, 2);
    cr_assert(base && view, "%s", err_msg());
    cr_assert_eq(view, base + 10);   // storage_offset 10 into the same storage, read once
    const char *dtype;
    for (int i = 0; i < checkpoint_count(ck); i++)
        if (strcmp(checkpoint_entry(ck, i, &dtype, NULL, NULL), "logit_scale") == 0) cr_assert_str_eq(dtype, "FloatStorage");
    checkpoint_close(ck);
}

Test(checkpoint, f32_aligned_data_is_zero_copy) {
    Checkpoint *ck = checkpoint_open(FIX "f32");
    cr_assert_not_null(ck, "%s", err_msg());
    size_t size = 0;
    char *file = fs_read_file(FIX "f32/model.safetensors", &size);
    int64_t shape[2] = {24, 32};
    const float *w = checkpoint_tensor_f32(ck, "text_projection.weight", shape, 2);
    cr_assert_not_null(w, "%s", err_msg());
    // The bytes sit in the file as they are returned: find them there.
    cr_assert_not_null(memmem(file, size, w, sizeof(float) * 24 * 32));
    int64_t scalar_shape[1];
    const float *ls = checkpoint_tensor_f32(ck, "logit_scale", scalar_shape, 0);
    cr_assert_not_null(ls, "%s", err_msg());
    cr_assert_float_eq(*ls, 2.6592f, 1e-6);
    free(file);
    checkpoint_close(ck);
}

Test(checkpoint, misaligned_f32_is_copied) {
    Checkpoint *ck = checkpoint_open_file(FIX "misaligned.safetensors");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t n1 = 1, n3 = 3;
    const float *a = checkpoint_tensor_f32(ck, "a", &n1, 1), *b = checkpoint_tensor_f32(ck, "b", &n3, 1);
    cr_assert(a && b, "%s", err_msg());
    cr_assert_eq(a[0], 1.5f);
    cr_assert_eq((uintptr_t)b % 4, 0);
    cr_assert(b[0] == 0.25f && b[1] == -7.0f && b[2] == 3.0e-3f);
    checkpoint_close(ck);
}

Test(checkpoint, listing_and_shape_lookup) {
    Checkpoint *ck = checkpoint_open(FIX "f16");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t shape[8];
    int ndim = -1;
    cr_assert_eq(checkpoint_shape(ck, "vision_model.embeddings.position_embedding.weight", shape, &ndim), 0);
    cr_assert_eq(ndim, 2);
    cr_assert_eq(shape[0], 17);
    cr_assert_eq(shape[1], 48);
    int found = 0;
    for (int i = 0; i < checkpoint_count(ck); i++) {
        const char *dtype;
        const int64_t *sh;
        int nd;
        const char *name = checkpoint_entry(ck, i, &dtype, &sh, &nd);
        cr_assert_not_null(name);
        if (strcmp(name, "text_model.embeddings.position_ids") == 0) {
            cr_assert_str_eq(dtype, "I64");
            cr_assert_eq(nd, 2);
            cr_assert_eq(sh[1], 16);
            found = 1;
        }
        if (i > 0) cr_assert_lt(strcmp(checkpoint_entry(ck, i - 1, NULL, NULL, NULL), name), 0);
    }
    cr_assert(found);
    cr_assert_null(checkpoint_entry(ck, checkpoint_count(ck), NULL, NULL, NULL));
    cr_assert_neq(checkpoint_shape(ck, "nope", shape, &ndim), 0);
    checkpoint_close(ck);
}

Test(checkpoint, hash_is_sha256_of_file) {
    Checkpoint *ck = checkpoint_open(FIX "f32");
    cr_assert_not_null(ck, "%s", err_msg());
    char want[65];
    cr_assert_eq(sha256_file_hex(FIX "f32/model.safetensors", want), 0);
    const char *h = checkpoint_hash(ck);
    cr_assert_str_eq(h, want);
    cr_assert_eq(checkpoint_hash(ck), h);   // computed once
    cr_assert_str_eq(checkpoint_path(ck), FIX "f32/model.safetensors");
    checkpoint_close(ck);
}

// The error a request or an open must give: it names the file and (where there is one) the tensor.
static void assert_err_names(const char *file, const char *tensor) {
    cr_assert(strstr(err_msg(), file) != NULL, "error lacks the file %s: %s", file, err_msg());
    if (tensor) cr_assert(strstr(err_msg(), tensor) != NULL, "error lacks the tensor %s: %s", tensor, err_msg());
}
#define ASSERT_ERR_NAMES(file, tensor) assert_err_names(file, tensor)

Test(checkpoint, request_errors_name_file_and_tensor) {
    Checkpoint *ck = checkpoint_open(FIX "f32");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t wrong[2] = {32, 24};
    cr_assert_null(checkpoint_tensor_f32(ck, "text_projection.weight", wrong, 2));
    ASSERT_ERR_NAMES("f32/model.safetensors", "text_projection.weight");
    cr_assert(strstr(err_msg(), "[24, 32]") && strstr(err_msg(), "[32, 24]"), "%s", err_msg());
    int64_t right[2] = {24, 32};
    cr_assert_null(checkpoint_tensor_f32(ck, "text_projection.weight", right, 1));
    ASSERT_ERR_NAMES("f32/model.safetensors", "text_projection.weight");
    cr_assert_null(checkpoint_tensor_f32(ck, "text_model.no_such.weight", right, 2));
    ASSERT_ERR_NAMES("f32/model.safetensors", "text_model.no_such.weight");
    cr_assert(!checkpoint_has(ck, "text_model.no_such.weight"));
    int64_t pid[2] = {1, 16};
    cr_assert_null(checkpoint_tensor_f32(ck, "text_model.embeddings.position_ids", pid, 2));
    ASSERT_ERR_NAMES("f32/model.safetensors", "text_model.embeddings.position_ids");
    cr_assert(strstr(err_msg(), "I64"), "%s", err_msg());
    checkpoint_close(ck);
}

// Opening FILE must fail with a message naming FILE and TENSOR (NULL: no tensor involved).
static void expect_open_error(const char *file, const char *tensor, const char *also) {
    err_clear();
    Checkpoint *ck = checkpoint_open_file(file);
    cr_assert_null(ck, "%s opened", file);
    ASSERT_ERR_NAMES(file, tensor);
    if (also) cr_assert(strstr(err_msg(), also), "error lacks '%s': %s", also, err_msg());
}

Test(checkpoint, safetensors_header_errors) {
    expect_open_error(FIX "bad/past_end.safetensors", "visual_projection.weight", "past the end");
    expect_open_error(FIX "bad/short.safetensors", "text_projection.weight", "needs");
    expect_open_error(FIX "bad/overlap.safetensors", "self_attn.", "overlap");
    expect_open_error(FIX "bad/reversed.safetensors", "text_projection.weight", "end before");
    expect_open_error(FIX "bad/header_past_end.safetensors", NULL, "header length");
    expect_open_error(FIX "bad/header_huge.safetensors", NULL, "100 MB");
    expect_open_error(FIX "bad/header_not_json.safetensors", NULL, "JSON");
    expect_open_error(FIX "bad/duplicate.safetensors", "tensor a", "twice");
    expect_open_error(FIX "bad/no_such_file.safetensors", NULL, NULL);
}

Test(checkpoint, unknown_dtype_fails_on_request_only) {
    Checkpoint *ck = checkpoint_open_file(FIX "bad/unknown_dtype.safetensors");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t s[1];
    cr_assert_null(checkpoint_tensor_f32(ck, "logit_scale", s, 0));
    ASSERT_ERR_NAMES("bad/unknown_dtype.safetensors", "logit_scale");
    cr_assert(strstr(err_msg(), "Q7"), "%s", err_msg());
    int64_t w[2] = {24, 32};
    cr_assert_not_null(checkpoint_tensor_f32(ck, "text_projection.weight", w, 2), "%s", err_msg());
    checkpoint_close(ck);
}

Test(checkpoint, pytorch_bin_errors) {
    expect_open_error(FIX "bad/pickle_truncated.bin", "tensor ", "truncated");
    expect_open_error(FIX "bad/pickle_no_stop.bin", NULL, "before STOP");
    expect_open_error(FIX "bad/pickle_bad_opcode.bin", "tensor ", "opcode 0xff");
    expect_open_error(FIX "bad/pickle_missing_storage.bin", "text_model.embeddings.token_embedding.weight", "data/x");
    expect_open_error(FIX "bad/pickle_past_storage.bin", "extra.base", "runs past its storage");
    expect_open_error(FIX "bad/legacy.bin", NULL, "legacy");
    expect_open_error(FIX "bad/byteorder_big.bin", "byteorder", "big-endian");
    Checkpoint *ck = checkpoint_open_file(FIX "byteorder_little.bin");
    cr_assert_not_null(ck, "%s", err_msg());
    checkpoint_close(ck);
    // Every message names the pickle record too.
    expect_open_error(FIX "bad/pickle_bad_opcode.bin", NULL, "/data.pkl");
}

Test(checkpoint, noncontiguous_tensor_fails_on_request) {
    Checkpoint *ck = checkpoint_open_file(FIX "bad/noncontiguous.bin");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t t_shape[2] = {32, 24};
    cr_assert_null(checkpoint_tensor_f32(ck, "text_projection.weight", t_shape, 2));
    ASSERT_ERR_NAMES("bad/noncontiguous.bin", "text_projection.weight");
    cr_assert(strstr(err_msg(), "non-contiguous"), "%s", err_msg());
    int64_t v_shape[2] = {24, 48};
    cr_assert_not_null(checkpoint_tensor_f32(ck, "visual_projection.weight", v_shape, 2), "%s", err_msg());
    checkpoint_close(ck);
}

static char *temp_dir(void) {
    char *dir = strdup("/tmp/kanoclip-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *dir, const char *name, const void *data, size_t n) {
    char *p = fs_join(dir, name);
    cr_assert_eq(fs_write_atomic(p, data, n), 0, "%s", err_msg());
    free(p);
}

// Cut points inside the length, inside the header, at its end and inside the data: all refused, none crash.
Test(checkpoint, truncated_safetensors) {
    size_t size = 0;
    unsigned char *file = (unsigned char *)fs_read_file(FIX "f32/model.safetensors", &size);
    cr_assert_not_null(file);
    size_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | file[i];
    size_t cuts[] = {0, 3, 8, 9, 8 + header / 2, 8 + header - 1, 8 + header, 8 + header + 1, size / 2, size - 4, size - 1};
    char *dir = temp_dir();
    char *path = fs_join(dir, "model.safetensors");
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(dir, "model.safetensors", file, cuts[i]);
        Checkpoint *ck = checkpoint_open(dir);
        cr_assert_null(ck, "cut at %zu of %zu opened", cuts[i], size);
        ASSERT_ERR_NAMES(path, NULL);
        // Cut inside the data: the message names the first tensor that no longer fits.
        if (cuts[i] > 8 + header) cr_assert(strstr(err_msg(), "tensor "), "cut %zu: %s", cuts[i], err_msg());
    }
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free(file);
}

Test(checkpoint, open_folder_without_weights) {
    char *dir = temp_dir();
    cr_assert_null(checkpoint_open(dir));
    ASSERT_ERR_NAMES(dir, NULL);
    rmdir(dir);
    free(dir);
}

// ---- config.json ----

Test(config, tiny_fixture_config) {
    ClipConfig c;
    cr_assert_eq(clip_config_load(FIX "f32", &c), 0, "%s", err_msg());
    cr_assert_eq(c.text.width, 32);
    cr_assert_eq(c.text.layers, 2);
    cr_assert_eq(c.text.heads, 4);
    cr_assert_eq(c.text.mlp, 64);
    cr_assert_eq(c.vocab_size, 100);
    cr_assert_eq(c.context_length, 16);
    cr_assert_eq(c.vision.width, 48);
    cr_assert_eq(c.vision.mlp, 96);
    cr_assert_eq(c.image_size, 32);
    cr_assert_eq(c.patch_size, 8);
    cr_assert_eq(c.projection_dim, 24);
    cr_assert_eq(c.eos_token_id, 49407);
    cr_assert_eq(c.text.act, ACT_QUICK_GELU);
    // No preprocessor_config.json: OpenAI's normalisation.
    cr_assert_float_eq(c.image_mean[0], 0.48145466f, 0);
    cr_assert_float_eq(c.image_std[2], 0.27577711f, 0);
}

static int load_config_text(const char *config, const char *preproc, ClipConfig *c, char **dir_out) {
    char *dir = temp_dir();
    write_file(dir, "config.json", config, strlen(config));
    if (preproc) write_file(dir, "preprocessor_config.json", preproc, strlen(preproc));
    int rc = clip_config_load(dir, c);
    *dir_out = dir;
    return rc;
}

static void remove_dir(char *dir) {
    char *a = fs_join(dir, "config.json"), *b = fs_join(dir, "preprocessor_config.json");
    unlink(a);
    unlink(b);
    rmdir(dir);
    free(a);
    free(b);
    free(dir);
}

Test(config, missing_keys_take_transformers_defaults) {
    ClipConfig c;
    char *dir;
    cr_assert_eq(load_config_text("{\"model_type\": \"clip\", \"text_config\": {\"hidden_size\": 768, \"num_attention_heads\": 12}}",
                                  NULL, &c, &dir), 0, "%s", err_msg());
    cr_assert_eq(c.text.width, 768);
    cr_assert_eq(c.text.heads, 12);
    cr_assert_eq(c.text.mlp, 2048);
    cr_assert_eq(c.text.layers, 12);
    cr_assert_eq(c.vocab_size, 49408);
    cr_assert_eq(c.context_length, 77);
    cr_assert_eq(c.eos_token_id, 49407);
    cr_assert_float_eq(c.text.ln_eps, 1e-5f, 0);
    cr_assert_eq(c.vision.width, 768);
    cr_assert_eq(c.vision.mlp, 3072);
    cr_assert_eq(c.vision.layers, 12);
    cr_assert_eq(c.vision.heads, 12);
    cr_assert_eq(c.vision.act, ACT_QUICK_GELU);
    cr_assert_eq(c.channels, 3);
    cr_assert_eq(c.image_size, 224);
    cr_assert_eq(c.patch_size, 32);
    cr_assert_eq(c.projection_dim, 512);
    cr_assert_float_eq(c.logit_scale_init, 2.6592f, 0);
    remove_dir(dir);
    cr_assert_eq(load_config_text("{\"text_config_dict\": null, \"vision_config\": null}", NULL, &c, &dir), 0, "%s", err_msg());
    cr_assert_eq(c.text.width, 512);
    cr_assert_eq(c.text.heads, 8);
    remove_dir(dir);
}

Test(config, legacy_dump_eos_2_dict_overrides_and_preprocessor) {
    ClipConfig c;
    char *dir;
    const char *cfg =
        "{\"model_type\":\"clip\",\"projection_dim\":768,\"logit_scale_init_value\":2.5,"
        "\"text_config\":{\"hidden_size\":512,\"bos_token_id\":0,\"eos_token_id\":2,\"pad_token_id\":1,"
        "\"hidden_act\":\"quick_gelu\",\"vocab_size\":49408,\"max_position_embeddings\":77},"
        "\"text_config_dict\":{\"hidden_size\":768,\"num_attention_heads\":12,\"intermediate_size\":3072},"
        "\"vision_config\":{\"hidden_size\":1024,\"num_attention_heads\":16,\"num_hidden_layers\":24,"
        "\"intermediate_size\":4096,\"image_size\":336,\"patch_size\":14,\"hidden_act\":\"gelu\",\"layer_norm_eps\":1e-6}}";
    const char *pre = "{\"crop_size\":336,\"image_mean\":[0.5,0.25,0.125],\"image_std\":[0.1,0.2,0.3],\"resample\":3}";
    cr_assert_eq(load_config_text(cfg, pre, &c, &dir), 0, "%s", err_msg());
    cr_assert_eq(c.eos_token_id, 2);   // legacy: pool at the argmax of the ids
    cr_assert_eq(c.text.width, 768);
    cr_assert_eq(c.text.heads, 12);
    cr_assert_eq(c.text.mlp, 3072);
    cr_assert_eq(c.vision.width, 1024);
    cr_assert_eq(c.vision.layers, 24);
    cr_assert_eq(c.vision.act, ACT_GELU);
    cr_assert_float_eq(c.vision.ln_eps, 1e-6f, 0);
    cr_assert_eq(c.image_size, 336);
    cr_assert_eq(c.patch_size, 14);
    cr_assert_eq(c.projection_dim, 768);
    cr_assert_float_eq(c.logit_scale_init, 2.5f, 0);
    cr_assert_float_eq(c.image_mean[2], 0.125f, 0);
    cr_assert_float_eq(c.image_std[1], 0.2f, 0);
    remove_dir(dir);
}

Test(config, single_tower_vision_config) {
    ClipConfig c;
    char *dir;
    cr_assert_eq(load_config_text("{\"model_type\":\"clip_vision_model\",\"hidden_size\":1024,\"num_attention_heads\":16,"
                                  "\"image_size\":336,\"patch_size\":14,\"projection_dim\":768}", NULL, &c, &dir), 0, "%s", err_msg());
    cr_assert_eq(c.vision.width, 1024);
    cr_assert_eq(c.image_size, 336);
    cr_assert_eq(c.projection_dim, 768);
    cr_assert_eq(c.text.width, 512);
    remove_dir(dir);
}

static void expect_config_error(const char *cfg, const char *pre, const char *file, const char *key) {
    ClipConfig c;
    char *dir;
    cr_assert_neq(load_config_text(cfg, pre, &c, &dir), 0, "accepted %s", cfg);
    cr_assert(strstr(err_msg(), file) && strstr(err_msg(), key), "error should name %s and %s: %s", file, key, err_msg());
    remove_dir(dir);
}

Test(config, errors_name_file_and_key) {
    expect_config_error("{\"text_config\":{\"hidden_act\":\"relu\"}}", NULL, "config.json", "text_config.hidden_act");
    expect_config_error("{\"vision_config\":{\"num_hidden_layers\":\"two\"}}", NULL, "config.json", "vision_config.num_hidden_layers");
    expect_config_error("{\"vision_config\":{\"hidden_size\":-3}}", NULL, "config.json", "vision_config.hidden_size");
    expect_config_error("{\"projection_dim\":1.5}", NULL, "config.json", "projection_dim");
    expect_config_error("{\"text_config\":{\"hidden_size\":100,\"num_attention_heads\":8}}", NULL, "config.json",
                        "text_config.num_attention_heads");
    expect_config_error("{\"text_config\": [1,2]}", NULL, "config.json", "text_config");
    expect_config_error("{not json", NULL, "config.json", "JSON");
    expect_config_error("{}", "{\"image_mean\":[0.5,0.5]}", "preprocessor_config.json", "image_mean");
    expect_config_error("{}", "{\"image_std\":[0.5,0,0.5]}", "preprocessor_config.json", "image_std");
    ClipConfig c;
    cr_assert_neq(clip_config_load("/nonexistent/ckpt", &c), 0);
    cr_assert(strstr(err_msg(), "/nonexistent/ckpt/config.json"), "%s", err_msg());
}

// ---- hardening: truncations and seeded random corruption must give errors, never crashes ----

static void write_path(const char *path, const void *data, size_t n) {
    cr_assert_eq(fs_write_atomic(path, data, n), 0, "%s", err_msg());
}

// Opens path and, if that works, asks for every tensor at its own shape; any failure must leave a message.
static int exercise(const char *path) {
    Checkpoint *ck = checkpoint_open_file(path);
    if (!ck) {
        cr_assert(strstr(err_msg(), path), "error without the file: %s", err_msg());
        return 0;
    }
    for (int i = 0; i < checkpoint_count(ck); i++) {
        const int64_t *shape;
        int ndim;
        const char *name = checkpoint_entry(ck, i, NULL, &shape, &ndim);
        const float *v = checkpoint_tensor_f32(ck, name, shape, ndim);
        if (!v) {
            cr_assert(strstr(err_msg(), path) && strstr(err_msg(), name), "request error lacks file/tensor: %s", err_msg());
        } else {
            size_t n = 1;
            for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
            volatile float sink = 0;
            for (size_t j = 0; j < n; j++) sink += v[j];   // touch every element (ASan checks the reads)
            (void)sink;
        }
    }
    checkpoint_close(ck);
    return 1;
}

Test(checkpoint, truncated_pytorch_bin) {
    size_t size = 0;
    char *file = fs_read_file(FIX "bin/pytorch_model.bin", &size);
    cr_assert_not_null(file);
    char *dir = temp_dir();
    char *path = fs_join(dir, "pytorch_model.bin");
    size_t cuts[] = {4, 30, 100, 1000, size / 3, size / 2, size - 200, size - 22, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_path(path, file, cuts[i]);
        cr_assert_eq(exercise(path), 0, "cut at %zu of %zu opened", cuts[i], size);
    }
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free(file);
}

// A corrupted storage record is found by its CRC when the tensor is read, and named.
Test(checkpoint, corrupted_storage_record_fails_on_request) {
    size_t size = 0;
    unsigned char *file = (unsigned char *)fs_read_file(FIX "bin/pytorch_model.bin", &size);
    Checkpoint *ck = checkpoint_open(FIX "bin");
    cr_assert_not_null(ck, "%s", err_msg());
    int64_t shape[2] = {24, 32};
    const float *w = checkpoint_tensor_f32(ck, "text_projection.weight", shape, 2);
    cr_assert_not_null(w, "%s", err_msg());
    unsigned char *at = memmem(file, size, w, 24 * 32 * sizeof(float));
    cr_assert_not_null(at);
    checkpoint_close(ck);
    at[100] ^= 0x40;
    char *dir = temp_dir();
    char *path = fs_join(dir, "pytorch_model.bin");
    write_path(path, file, size);
    ck = checkpoint_open_file(path);
    cr_assert_not_null(ck, "%s", err_msg());
    cr_assert_null(checkpoint_tensor_f32(ck, "text_projection.weight", shape, 2));
    ASSERT_ERR_NAMES(path, "text_projection.weight");
    checkpoint_close(ck);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free(file);
}

static uint64_t fuzz_state;
static uint64_t fuzz_next(void) { return rng_splitmix64(&fuzz_state); } // seeded, so a failure reproduces

// Flips 1-4 random bytes (biased towards the first `hot` bytes: the header) or truncates, for `rounds` files.
static void fuzz_file(const char *src, size_t hot, int rounds, uint64_t seed) {
    size_t size = 0;
    unsigned char *orig = (unsigned char *)fs_read_file(src, &size);
    cr_assert_not_null(orig);
    unsigned char *buf = malloc(size);
    char *dir = temp_dir();
    char *path = fs_join(dir, strstr(src, ".bin") ? "f.bin" : "f.safetensors");
    fuzz_state = seed;
    int opened = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(buf, orig, size);
        size_t n = size;
        if (r % 5 == 4) {
            n = fuzz_next() % size;
        } else {
            int flips = 1 + fuzz_next() % 4;
            for (int f = 0; f < flips; f++) {
                size_t limit = (fuzz_next() % 4 != 0 && hot < size) ? hot : size;
                buf[fuzz_next() % limit] ^= (unsigned char)(1 + fuzz_next() % 255);
            }
        }
        write_path(path, buf, n);
        opened += exercise(path);
    }
    cr_log_info("%s: %d of %d corrupted copies still opened", src, opened, rounds);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
    free(buf);
    free(orig);
}

Test(fuzz, safetensors_random_corruption) {
    size_t size = 0;
    unsigned char *f = (unsigned char *)fs_read_file(FIX "f16/model.safetensors", &size);
    size_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | f[i];
    free(f);
    fuzz_file(FIX "f16/model.safetensors", 8 + header, 300, 1);
    fuzz_file(FIX "bf16/model.safetensors", 8 + header, 100, 2);
}

Test(fuzz, pytorch_bin_random_corruption) {
    // Flips land in zip headers, the central directory, the pickle or storage bytes (caught by CRC).
    fuzz_file(FIX "bin/pytorch_model.bin", (size_t)-1, 200, 3);
}

// The pickle interpreter alone on corrupted data.pkl bytes (inside a zip, the CRC would stop them first).
Test(fuzz, pickle_random_corruption) {
    size_t size = 0;
    unsigned char *orig = (unsigned char *)fs_read_file(FIX "bin/data.pkl", &size);
    cr_assert_not_null(orig);
    PickledTensor *t;
    int n = 0;
    cr_assert_eq(torch_pickle_state_dict(orig, size, "data.pkl", &t, &n), 0, "%s", err_msg());
    cr_assert_eq(n, 83);
    torch_pickle_free(t, n);
    unsigned char *buf = malloc(size);
    fuzz_state = 4;
    int ok = 0;
    for (int r = 0; r < 3000; r++) {
        memcpy(buf, orig, size);
        size_t len = size;
        if (r % 4 == 3) {
            len = fuzz_next() % size;
        } else {
            for (int f = 1 + fuzz_next() % 3; f > 0; f--) buf[fuzz_next() % size] = (unsigned char)fuzz_next();
        }
        err_clear();
        if (torch_pickle_state_dict(buf, len, "data.pkl", &t, &n) == 0) {
            ok++;
            torch_pickle_free(t, n);
        } else {
            cr_assert(strstr(err_msg(), "data.pkl: "), "%s", err_msg());
        }
    }
    cr_log_info("pickle fuzz: %d of 3000 corrupted pickles still parsed", ok);
    free(buf);
    free(orig);
}
