// CLIP training against PyTorch (tests/ref_clip_train.py, float64 reference on fresh random weights and inputs):
// the contrastive loss within 1e-5, every weight gradient of both towers within 1e-4 relative (max |diff| over
// max |reference| per tensor), and one clipped AdamW update from PyTorch's gradients within 1e-5 of
// torch.optim.AdamW (given its own gradients instead, Adam's first step, about lr · sign(g), would carry the float32
// gradient error of elements near eps into the weights).
#include "tests/npy.h"
#include "model/clip_train.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "tests/tmpdir.h"

#include <stdint.h>

#define DIR "build/fixtures/clip_train"

typedef struct {
    ClipTrain *m;
    int B, T;
    int *ids, *eot;
    float *pixels;
    float loss;
} Fixture;

static int *npy_int(const char *name, size_t *count) {
    Npy a = npy_load(DIR, name);
    cr_assert_str_eq(a.dtype, "<i8", "%s: expected int64", name);
    int *out = malloc(sizeof(int) * a.count);
    for (size_t i = 0; i < a.count; i++) out[i] = (int)((int64_t *)a.data)[i];
    if (count) *count = a.count;
    free(a.data);
    return out;
}

static Fixture run_fixture(void) {
    Fixture f = {0};
    ClipConfig cfg;
    cr_assert_eq(clip_config_load(DIR "/model", &cfg), 0, "%s", err_msg());
    f.m = clip_train_load(DIR "/model", &cfg);
    cr_assert_not_null(f.m, "%s", err_msg());
    size_t n_ids = 0, n_eot = 0;
    f.ids = npy_int("ids", &n_ids);
    f.eot = npy_int("eot", &n_eot);
    f.B = (int)n_eot;
    f.T = (int)(n_ids / n_eot);
    f.pixels = npy_f32(DIR, "pixels", NULL);
    clip_train_zero_grad(f.m);
    f.loss = clip_train_forward(f.m, f.pixels, f.ids, f.eot, f.B, f.T);
    cr_assert(f.loss >= 0, "%s", err_msg());
    cr_assert_eq(clip_train_backward(f.m), 0, "%s", err_msg());
    return f;
}

// Every tensor the saved model holds, compared by name with the reference's .npy of the same name.
static void compare_all(ClipTrain *m, const char *sub, int use_grads, double tol) {
    // the parameters (or gradients) written as a Hugging Face folder, read back tensor by tensor
    char dir[] = "/tmp/kanoclip-clip-train-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    ClipTrainParams saved = m->params;
    if (use_grads) m->params = m->grads;
    int rc = clip_train_save(m, dir);
    m->params = saved;
    cr_assert_eq(rc, 0, "%s", err_msg());
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    Checkpoint *ck = checkpoint_open_file(path);
    cr_assert_not_null(ck, "%s", err_msg());
    int n = checkpoint_count(ck), checked = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < n; i++) {
        const char *dtype;
        const int64_t *shape;
        int ndim;
        const char *name = checkpoint_entry(ck, i, &dtype, &shape, &ndim);
        char sub_dir[256];
        snprintf(sub_dir, sizeof sub_dir, DIR "/%s", sub);
        size_t count = 0;
        float *want = npy_f32(sub_dir, name, &count);
        const float *got = checkpoint_tensor_f32(ck, name, shape, ndim);
        cr_assert_not_null(got, "%s", err_msg());
        char what[256];
        snprintf(what, sizeof what, "%s %s", sub, name);
        if (use_grads && strstr(name, "k_proj.bias")) {
            // Softmax rows are invariant to the key bias: its exact gradient is 0, so both sides hold rounding
            // noise, which must be noise-sized.
            double noise = 0;
            for (size_t k = 0; k < count; k++) noise = fmax(noise, fabs((double)got[k]));
            cr_assert(noise <= 1e-6, "%s: %.3g from the exact value 0", what, noise);
        } else {
            assert_close(got, want, count, tol, what);
            double e = rel_error(got, want, count);
            if (e > worst) worst = e, worst_name = name;
        }
        free(want);
        checked++;
    }
    cr_assert_eq(checked, 14 + 16 * (m->cfg.text.layers + m->cfg.vision.layers), "every tensor compared");
    cr_log_info("%s: %d tensors, largest relative error %.2g (%s)", sub, checked, worst, worst_name);
    checkpoint_close(ck);
    tmpdir_remove(dir);
}

Test(clip_train, loss_and_every_weight_gradient) {
    Fixture f = run_fixture();
    float *want = npy_f32(DIR, "loss", NULL);
    cr_assert(fabsf(f.loss - want[0]) <= 1e-5f * fabsf(want[0]), "loss %.7g, PyTorch %.7g", f.loss, want[0]);
    compare_all(f.m, "grad", 1, 1e-4);
    clip_train_free(f.m);
}

Test(clip_train, gradients_accumulate) {
    Fixture f = run_fixture();
    float l2 = clip_train_forward(f.m, f.pixels, f.ids, f.eot, f.B, f.T);
    cr_assert_float_eq(l2, f.loss, 1e-6f);
    cr_assert_eq(clip_train_backward(f.m), 0);
    // twice the reference after two backwards without zeroing
    float *g = f.m->grads.vb.fcw;
    size_t n = (size_t)f.m->cfg.vision.layers * f.m->cfg.vision.mlp * f.m->cfg.vision.width;
    for (size_t i = 0; i < n; i++) g[i] *= 0.5f;
    float *want = npy_f32(DIR "/grad", "vision_model.encoder.layers.0.mlp.fc1.weight", NULL);
    assert_close(g, want, n / f.m->cfg.vision.layers, 1e-4, "accumulated fc1 gradient");
    clip_train_free(f.m);
}

Test(clip_train, clipped_adamw_update) {
    Fixture f = run_fixture();
    ClipTrain *g = clip_train_load(DIR "/gradmodel", &f.m->cfg);  // PyTorch's gradients, by tensor name
    cr_assert_not_null(g, "%s", err_msg());
    memcpy(f.m->memory + f.m->n_params, g->memory, sizeof(float) * f.m->n_params);
    clip_train_free(g);
    float *norm = npy_f32(DIR, "grad_norm", NULL);
    ClipTrainOpt o = {.lr = 2e-3, .lr_min = 2e-3, .warmup = 0, .steps = 1, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6,
                      .weight_decay = 0.2, .clip_norm = 0.5 * norm[0]};
    double got = clip_train_update(f.m, &o);
    cr_assert(fabs(got - norm[0]) <= 1e-4 * norm[0], "gradient norm %.6g, PyTorch %.6g", got, norm[0]);
    cr_assert_eq(f.m->step, 1);
    compare_all(f.m, "step", 0, 1e-5);
    clip_train_free(f.m);
}

Test(clip_train, learning_rate_schedule) {
    ClipTrainOpt o = {.lr = 1e-3, .lr_min = 1e-5, .warmup = 10, .steps = 110};
    cr_assert_float_eq(clip_train_lr(&o, 0), 1e-4, 1e-12);           // warm-up: (step + 1) / warmup of the peak
    cr_assert_float_eq(clip_train_lr(&o, 9), 1e-3, 1e-12);
    cr_assert_float_eq(clip_train_lr(&o, 10), 1e-3, 1e-12);          // cosine from the peak ...
    cr_assert_float_eq(clip_train_lr(&o, 60), (1e-3 + 1e-5) / 2, 1e-12);
    cr_assert_float_eq(clip_train_lr(&o, 110), 1e-5, 1e-12);         // ... to the floor
}

Test(clip_train, optimizer_state_round_trip_and_bad_file) {
    Fixture f = run_fixture();
    ClipTrainOpt o = {.lr = 1e-3, .lr_min = 1e-3, .warmup = 0, .steps = 1, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6};
    clip_train_update(f.m, &o);
    char dir[] = "/tmp/kanoclip-clip-state-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(clip_train_save_state(f.m, dir), 0, "%s", err_msg());
    Fixture g = run_fixture();
    cr_assert_eq(clip_train_load_state(g.m, dir), 0, "%s", err_msg());
    cr_assert_eq(g.m->step, 1);
    cr_assert_eq(memcmp(g.m->memory + 2 * g.m->n_params, f.m->memory + 2 * f.m->n_params,
                        sizeof(float) * 2 * f.m->n_params), 0, "moments restored");
    char path[512];
    snprintf(path, sizeof path, "%s/optimizer.bin", dir);
    FILE *fp = fopen(path, "wb");
    fputs("not a state", fp);
    fclose(fp);
    cr_assert_eq(clip_train_load_state(g.m, dir), -1);
    cr_assert(strstr(err_msg(), "optimizer.bin") != NULL, "names the file: %s", err_msg());
    tmpdir_remove(dir);
    clip_train_free(f.m);
    clip_train_free(g.m);
}

Test(clip_train, missing_tensor_named) {
    ClipConfig cfg;
    cr_assert_eq(clip_config_load(DIR "/model", &cfg), 0, "%s", err_msg());
    cfg.vision.layers++;  // asks for a layer the file lacks
    cr_assert_null(clip_train_load(DIR "/model", &cfg));
    cr_assert(strstr(err_msg(), "vision_model.encoder.layers.2") != NULL, "names the tensor: %s", err_msg());
}
