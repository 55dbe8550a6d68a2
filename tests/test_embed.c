// `kanoclip embed` end to end: run the binary, read the HDF5 file back, compare with tests/ref_clip.py's
// PyTorch references (relative 1e-4); usage and input errors give one line and a non-zero status, and leave
// no output file behind.
#include "tests/npy.h"
#include "model/device.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX "build/fixtures/clip"
#define KANOCLIP "build/kanoclip"
#define TOL 1e-4

// Runs `kanoclip ARGS`, stderr to errfile; returns the exit status.
static int run(const char *args, char *errfile) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, KANOCLIP " %s 2>%s", args, errfile);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path) {
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    return buf;
}

// Dataset NAME of FILE as floats; *n gets the count, dims[] the shape.
static float *h5_read(const char *file, const char *name, size_t *n, hsize_t *dims) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert(f >= 0, "%s: cannot open", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    cr_assert(d >= 0, "%s: no dataset %s", file, name);
    hid_t s = H5Dget_space(d);
    cr_assert_eq(H5Tget_class(H5Dget_type(d)), H5T_FLOAT);
    cr_assert_eq(H5Tget_size(H5Dget_type(d)), 4u, "%s: %s is not float32", file, name);
    int nd = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, dims, NULL);
    *n = 1;
    for (int i = 0; i < nd; i++) *n *= dims[i];
    float *a = malloc(sizeof(float) * *n);
    cr_assert(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return a;
}

static void tmpdir(char *dir) {
    strcpy(dir, "/tmp/kanoclip-embed-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void check_images(const char *fmt, const char *extra) {
    char dir[64], out[128], err[128], args[2048], what[256];
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/b.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    // shape b: checkpoint at 28 px, input 42 px (positions resized), V-V from layer 2
    snprintf(args, sizeof args,
             "embed --model " FIX "/b/%s --out %s --image-size 42 --layers 0,1,4 --vv-from 2 %s --image "
             FIX "/b/images/img_0.png " FIX "/b/images/img_1.png", fmt, out, extra);
    cr_assert_eq(run(args, err), 0, "%s: %s", args, slurp(err));
    size_t n;
    hsize_t dims[8];
    float *emb = h5_read(out, "image_embeds", &n, dims);
    cr_assert(dims[0] == 2 && dims[1] == 32, "image_embeds shape");
    snprintf(what, sizeof what, "embed %s image_embeds", fmt);
    assert_close(emb, npy_f32(FIX "/b/ref", "image_embeds", NULL), n, TOL, what);
    const int layers[3] = {0, 1, 4};
    for (int i = 0; i < 3; i++) {
        char name[64], ref[64];
        snprintf(name, sizeof name, "hidden/layer_%02d", layers[i]);
        snprintf(ref, sizeof ref, "hidden_%02d", layers[i]);
        float *h = h5_read(out, name, &n, dims);
        cr_assert(dims[0] == 2 && dims[1] == 37 && dims[2] == 96, "%s shape", name);
        snprintf(what, sizeof what, "embed %s %s", fmt, name);
        assert_close(h, npy_f32(FIX "/b/ref", ref, NULL), n, TOL, what);
        snprintf(name, sizeof name, "vv/layer_%02d", layers[i]);
        snprintf(ref, sizeof ref, "vv_%02d", layers[i]);
        float *v = h5_read(out, name, &n, dims);
        snprintf(what, sizeof what, "embed %s %s", fmt, name);
        assert_close(v, npy_f32(FIX "/b/ref", ref, NULL), n, TOL, what);
    }
    unlink(out);
    unlink(err);
    rmdir(dir);
}

Test(embed, images_f32) { check_images("f32", ""); }
Test(embed, images_bin_batch_of_one) { check_images("bin", "--batch 1"); }

Test(embed, image_resized_to_the_input_size) {
    char dir[64], out[128], err[128], args[1024];
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/odd.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s --image " FIX "/a/images/odd_45x37.png", out);
    cr_assert_eq(run(args, err), 0, "%s: %s", args, slurp(err));
    size_t n;
    hsize_t dims[8];
    float *emb = h5_read(out, "image_embeds", &n, dims);
    cr_assert(dims[0] == 1 && dims[1] == 40);
    // PIL's bicubic resize is matched bit-exactly by datasets/image.h, so the tolerance stays 1e-4
    assert_close(emb, npy_f32(FIX "/a/ref", "image_embeds_odd", NULL), n, TOL, "embed 45x37 image");
    unlink(out);
    unlink(err);
    rmdir(dir);
}

// --resize short-crop: OpenAI CLIP's Resize(S) + CenterCrop(S), the reference following clip/clip.py's _transform
// in PIL (tests/ref_clip.py); the same 1e-4 as the square resize. The square result must differ from it.
Test(embed, image_short_side_and_centre_crop) {
    char dir[64], out[128], err[128], args[1024];
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/odd.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    snprintf(args, sizeof args,
             "embed --model " FIX "/a/f32 --out %s --resize short-crop --image " FIX "/a/images/odd_45x37.png", out);
    cr_assert_eq(run(args, err), 0, "%s: %s", args, slurp(err));
    size_t n;
    hsize_t dims[8];
    float *emb = h5_read(out, "image_embeds", &n, dims);
    cr_assert(dims[0] == 1 && dims[1] == 40);
    float *crop = npy_f32(FIX "/a/ref", "image_embeds_odd_short_crop", NULL), *square = npy_f32(FIX "/a/ref", "image_embeds_odd", NULL);
    assert_close(emb, crop, n, TOL, "embed --resize short-crop 45x37 image");
    double diff = 0;
    for (size_t k = 0; k < n; k++) diff = fmax(diff, fabs((double)crop[k] - square[k]));
    cr_assert_gt(diff, 1e-3, "the crop and the square resize give the same embedding: the test cannot tell them apart");
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s --resize crop --image " FIX "/a/images/odd_45x37.png", out);
    cr_assert_neq(run(args, err), 0);
    cr_assert(strstr(slurp(err), "--resize: expected square or short-crop, got crop"), "%s", slurp(err));
    free(emb);
    free(crop);
    free(square);
    unlink(out);
    unlink(err);
    rmdir(dir);
}

Test(embed, texts) {
    FILE *f = fopen(FIX "/a/ref/cli_texts.json", "r");
    if (!f) cr_skip_test("no reference for --text (the shared CLIP vocabulary was not found by ref_clip.py)");
    fclose(f);
    const char *shared = getenv("KANOCLIP_SHARED");
    char vocab[512], dir[64], out[128], err[128], args[2048];
    snprintf(vocab, sizeof vocab, "%s/data/clip/bpe_simple_vocab_16e6.txt.gz", shared ? shared : "../shared");
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/t.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    // the same texts as tests/ref_clip.py's CLI_TEXTS (tokenized there by an independent Python tokenizer)
    snprintf(args, sizeof args,
             "embed --model " FIX "/a/f32 --vocab %s --out %s --text 'a photo of a damaged screw.' "
             "'Flawless  metal nut!' 'a close-up photo of a bottle with a crack'", vocab, out);
    cr_assert_eq(run(args, err), 0, "%s: %s", args, slurp(err));
    size_t n;
    hsize_t dims[8];
    float *emb = h5_read(out, "text_embeds", &n, dims);
    cr_assert(dims[0] == 3 && dims[1] == 40);
    assert_close(emb, npy_f32(FIX "/a/ref", "cli_text_embeds", NULL), n, TOL, "embed --text text_embeds");
    unlink(out);
    unlink(err);
    rmdir(dir);
}

// Files A and B hold the same datasets, bit for bit.
static void assert_same_h5(const char *a, const char *b, const char **names, int n_names) {
    for (int i = 0; i < n_names; i++) {
        size_t na, nb;
        hsize_t da[8], db[8];
        float *x = h5_read(a, names[i], &na, da), *y = h5_read(b, names[i], &nb, db);
        cr_assert_eq(na, nb, "%s: %zu vs %zu values", names[i], na, nb);
        cr_assert(memcmp(x, y, sizeof(float) * na) == 0, "%s differs between %s and %s", names[i], a, b);
        free(x);
        free(y);
    }
}

// --device cpu (with any --precision: the CPU computes in fp32) writes exactly what the default writes; three
// images in batches of two run the submit/finish loop through a full and a partial batch, and the third image
// (img_0 again) matches the reference's first row.
Test(embed, device_cpu_same_as_default) {
    char dir[64], out[3][128], err[128], args[2048];
    tmpdir(dir);
    snprintf(err, sizeof err, "%s/err", dir);
    const char *extra[3] = {"", "--device cpu", "--device cpu --precision bf16"};
    for (int k = 0; k < 3; k++) {
        snprintf(out[k], sizeof out[k], "%s/d%d.h5", dir, k);
        snprintf(args, sizeof args,
                 "embed --model " FIX "/b/f32 --out %s --image-size 42 --layers 1,4 --vv-from 2 --batch 2 %s --image "
                 FIX "/b/images/img_0.png " FIX "/b/images/img_1.png " FIX "/b/images/img_0.png", out[k], extra[k]);
        cr_assert_eq(run(args, err), 0, "%s: %s", args, slurp(err));
    }
    const char *names[] = {"image_embeds", "hidden/layer_01", "hidden/layer_04", "vv/layer_01", "vv/layer_04"};
    assert_same_h5(out[0], out[1], names, 5);
    assert_same_h5(out[0], out[2], names, 5);
    size_t n;
    hsize_t dims[8];
    float *emb = h5_read(out[1], "image_embeds", &n, dims);
    cr_assert(dims[0] == 3 && dims[1] == 32, "image_embeds shape");
    const float *ref = npy_f32(FIX "/b/ref", "image_embeds", NULL);
    assert_close(emb, ref, 2 * 32, TOL, "embed --device cpu rows 0-1");
    assert_close(emb + 2 * 32, ref, 32, TOL, "embed --device cpu row 2 (img_0 again, in the partial batch)");
    free(emb);
    for (int k = 0; k < 3; k++) unlink(out[k]);
    unlink(err);
    rmdir(dir);
}

// --device cuda: on a machine that can run it, the outputs match the PyTorch reference (fp32 GEMMs, 1e-3);
// elsewhere one line saying why, exit 1, and no output file. build/kanoclip is the default build whatever BUILD
// this suite came from: a suite built with CUDA knows the answer; a NO_CUDA suite accepts either reason.
Test(embed, device_cuda) {
    char dir[64], out[128], err[128], args[2048];
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/c.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    snprintf(args, sizeof args,
             "embed --model " FIX "/b/f32 --out %s --image-size 42 --layers 1 --device cuda --image "
             FIX "/b/images/img_0.png " FIX "/b/images/img_1.png", out);
    int rc = run(args, err);
    const char *e = slurp(err);
    if (device_available() || (!device_cuda_built() && rc == 0)) {
        cr_assert_eq(rc, 0, "%s: %s", args, e);
        size_t n;
        hsize_t dims[8];
        float *emb = h5_read(out, "image_embeds", &n, dims);
        assert_close(emb, npy_f32(FIX "/b/ref", "image_embeds", NULL), n, 1e-3, "embed --device cuda image_embeds");
        free(emb);
        unlink(out);
    } else {
        cr_assert_eq(rc, 1, "%s: %s", args, e);
        const char *no_gpu = "kanoclip: CUDA was asked for, but no CUDA device found (cudaGetDeviceCount: ";
        const char *no_cuda = "kanoclip: CUDA was asked for, but this binary was built without CUDA";
        int ok = !strncmp(e, no_gpu, strlen(no_gpu)) || (!device_cuda_built() && !strncmp(e, no_cuda, strlen(no_cuda)));
        cr_assert(ok, "%s", e);
        cr_assert_eq(strchr(e, '\n'), e + strlen(e) - 1, "not one line: %s", e);
        cr_assert_eq(access(out, F_OK), -1, "a failed run left %s behind", out);
    }
    unlink(err);
    rmdir(dir);
}

Test(embed, errors) {
    char dir[64], out[128], err[128], args[1024];
    tmpdir(dir);
    snprintf(out, sizeof out, "%s/x.h5", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    snprintf(args, sizeof args, "embed --out %s --image a.png", out);
    cr_assert_eq(run(args, err), 2);
    cr_assert(strstr(slurp(err), "--model is required") != NULL, "%s", slurp(err));
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s", out);
    cr_assert_eq(run(args, err), 2);
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s --layers 1,x --image a.png", out);
    cr_assert_eq(run(args, err), 2);
    cr_assert(strstr(slurp(err), "--layers") != NULL, "%s", slurp(err));
    snprintf(args, sizeof args, "embed --model %s/nothing --out %s --image a.png", dir, out);
    cr_assert_eq(run(args, err), 1);
    cr_assert(strstr(slurp(err), "nothing") != NULL, "%s", slurp(err));
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s --layers 9 --image " FIX "/a/images/img_0.png",
             out);
    cr_assert_eq(run(args, err), 1);
    cr_assert(strstr(slurp(err), "layer 9") != NULL, "%s", slurp(err));
    snprintf(args, sizeof args, "embed --model " FIX "/a/f32 --out %s --image " FIX "/a/images/img_0.png %s/missing.png",
             out, dir);
    cr_assert_eq(run(args, err), 1);
    cr_assert(strstr(slurp(err), "missing.png") != NULL, "%s", slurp(err));
    cr_assert_eq(access(out, F_OK), -1, "a failed run left %s behind", out);
    // the directory holds only the stderr capture: no temporary file left either
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0, "temporary files left in %s", dir);
    unlink(err);
    rmdir(dir);
}
