// kanoclip embed --model DIR --out FILE.h5 [--image-size S] [--layers L1,L2,...] [--vv-from L] [--batch N]
//                [--pos-resize bilinear|bicubic|bicubic-aa] [--resize square|short-crop] [--vocab PATH] [--device cpu|cuda] [--precision fp32|tf32|bf16]
//                (--image PATH... | --text TEXT...)
// Writes float32 HDF5 datasets (design §5): image_embeds [N,P], hidden/layer_LL [N,T,W], vv/layer_LL [N,T,W]
// for images; text_embeds [N,P] for texts. The file is written under a temporary name and renamed at the end.
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "harness/cache/h5_writer.h"
#include "model/clip_model.h"
#include "model/towers.h"
#include "model/tokenizer.h"
#include "datasets/image.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_line[] =
    "usage: kanoclip embed --model DIR --out FILE.h5 [--image-size S] [--layers L1,L2,...] [--vv-from L] "
    "[--batch N] [--pos-resize bilinear|bicubic|bicubic-aa] [--resize square|short-crop] [--vocab PATH] [--device cpu|cuda] [--precision fp32|tf32|bf16] "
    "(--image PATH... | --text TEXT...)";

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "kanoclip embed: %s%s (see 'kanoclip embed --help')\n", what, arg);
    return 2;
}

static void help(void) {
    printf("%s\n\n"
           "CLIP embeddings and hidden states of images or texts, as float32 HDF5 datasets:\n"
           "  image_embeds [N,P]      post-LN class token times the visual projection (get_image_features)\n"
           "  hidden/layer_LL [N,T,W] the residual stream after encoder layer LL (hidden_states[LL]; 0 = embeddings)\n"
           "  vv/layer_LL [N,T,W]     the CLIP-VV path (with --vv-from; equal to hidden before layer L)\n"
           "  text_embeds [N,P]       pooled at the end-of-text token, times the text projection\n"
           "Options:\n"
           "  --model DIR          Hugging Face CLIP folder (config.json, model.safetensors or pytorch_model.bin)\n"
           "  --out FILE.h5        output file (written atomically)\n"
           "  --image-size S       input size (default: the checkpoint's image_size); images are resized to S x S\n"
           "                       (bicubic) unless already that size, then normalised with the checkpoint's mean/std\n"
           "  --layers L1,L2,...   hidden layers to write (0..num_hidden_layers)\n"
           "  --vv-from L          start the V-V path at layer L (1-based) and write vv/layer_LL for --layers\n"
           "  --pos-resize MODE    positional grid resize when S differs from the checkpoint: bilinear (default),\n"
           "                       bicubic, or bicubic-aa (antialiased, open_clip's resize_pos_embed)\n"
           "  --resize MODE        image resize: square (default; S x S, AnomalyCLIP) or short-crop (short side to\n"
           "                       S, then the centre S x S crop: OpenAI CLIP's preprocess)\n"
           "  --batch N            images per forward (default 8)\n"
           "  --vocab PATH         tokenizer files (folder or bpe_simple_vocab_16e6.txt.gz) when DIR has none\n"
           "  --device cpu|cuda    where the tower runs (default cpu); cuda fails with one line where this binary\n"
           "                       was built without CUDA or no CUDA device answers (no silent fallback)\n"
           "  --precision P        GEMM mode on cuda: fp32 (default), tf32 or bf16 (fp32 accumulation, fp32\n"
           "                       buffers); the CPU always computes in fp32\n",
           usage_line);
}

// "6,12,18" -> layers; -1 on a malformed list.
static int parse_layers(const char *s, int *layers, int max) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1000 || n >= max || (*end && *end != ',')) return -1;
        layers[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

typedef struct {
    const char *model, *out, *vocab;
    int image_size, vv_from, batch, n_layers;
    int layers[256];
    ClipPosResize pos_mode;
    ImageResizeMode resize;
    DeviceKind device;
    GemmPrecision precision;
    char **images, **texts;
    int n_images, n_texts;
} EmbedArgs;

// Decodes and preprocesses images [i0, i0+nb) into pixels (nb,3,S,S).
static int load_batch(const EmbedArgs *a, const ClipModel *m, int S, int i0, int nb, float *pixels) {
    return image_load_batch((const char *const *)a->images + i0, nb, S, a->resize, m->cfg.image_mean,
                            m->cfg.image_std, pixels);
}

static int embed_images(const EmbedArgs *a, ClipModel *m, H5Writer *w) {
    const ClipVision *v = &m->vision;
    int S = a->image_size ? a->image_size : v->image_size;
    for (int i = 0; i < a->n_layers; i++)
        if (a->layers[i] > v->shape.layers)
            return err_set("--layers: layer %d, but %s has %d vision layers", a->layers[i], a->model,
                           v->shape.layers);
    if (a->vv_from > v->shape.layers)
        return err_set("--vv-from: layer %d, but %s has %d vision layers", a->vv_from, a->model, v->shape.layers);
    // more than one forward on the CPU: pack the GEMM weights once instead of once per forward
    if (a->device == DEVICE_CPU && a->n_images > a->batch && clip_vision_prepack(&m->vision) < 0) return -1;
    VisionTower *r = vision_tower_new(v, S, a->pos_mode, a->device, a->precision);
    if (!r) return -1;
    int N = a->n_images, B = a->batch < N ? a->batch : N, T = vision_tower_tokens(r), W = v->shape.width;
    int P = v->proj_dim, nl = a->n_layers, rc = -1, in_flight = 0;
    size_t px = (size_t)v->channels * S * S;
    float *pixels = malloc(sizeof(float) * B * px), *emb = malloc(sizeof(float) * B * P);
    float **hidden = calloc(nl + 1, sizeof(float *)), **vv = calloc(nl + 1, sizeof(float *));
    int ok = pixels && emb && hidden && vv;
    for (int i = 0; ok && i < nl; i++) {
        ok = (hidden[i] = malloc(sizeof(float) * B * T * W)) != NULL;
        if (ok && a->vv_from) ok = (vv[i] = malloc(sizeof(float) * B * T * W)) != NULL;
    }
    if (!ok) { err_set("embed: out of memory for a batch of %d images", B); goto done; }
    char name[64];
    if (h5w_dataset(w, "image_embeds", 2, (hsize_t[]){N, P}) < 0) goto done;
    for (int i = 0; i < nl; i++) {
        snprintf(name, sizeof name, "hidden/layer_%02d", a->layers[i]);
        if (h5w_dataset(w, name, 3, (hsize_t[]){N, T, W}) < 0) goto done;
        snprintf(name, sizeof name, "vv/layer_%02d", a->layers[i]);
        if (a->vv_from && h5w_dataset(w, name, 3, (hsize_t[]){N, T, W}) < 0) goto done;
    }
    ClipVisionOut out = {.image_embeds = emb, .n_hidden = nl, .hidden_layers = a->layers, .hidden = hidden,
                         .vv_from = a->vv_from, .n_vv = a->vv_from ? nl : 0, .vv_layers = a->layers, .vv = vv};
    // Batch i is submitted, then batch i+1 is decoded while the device runs batch i (on the CPU submit runs
    // the batch at once, so this is the plain loop there). submit copies the pixels, so one buffer serves.
    if (load_batch(a, m, S, 0, B, pixels) < 0) goto done;
    if (vision_tower_submit(r, pixels, B, &out) < 0) goto done;
    in_flight = 1;
    for (int i0 = 0; i0 < N; i0 += B) {
        int nb = N - i0 < B ? N - i0 : B, i1 = i0 + B, nb1 = N - i1 < B ? N - i1 : B;
        if (i1 < N && load_batch(a, m, S, i1, nb1, pixels) < 0) goto done;
        in_flight = 0;
        if (vision_tower_finish(r) < 0) goto done;
        if (h5w_write_rows(w, "image_embeds", i0, nb, emb) < 0) goto done;
        for (int i = 0; i < nl; i++) {
            snprintf(name, sizeof name, "hidden/layer_%02d", a->layers[i]);
            if (h5w_write_rows(w, name, i0, nb, hidden[i]) < 0) goto done;
            snprintf(name, sizeof name, "vv/layer_%02d", a->layers[i]);
            if (a->vv_from && h5w_write_rows(w, name, i0, nb, vv[i]) < 0) goto done;
        }
        if (i1 < N) {
            if (vision_tower_submit(r, pixels, nb1, &out) < 0) goto done;
            in_flight = 1;
        }
    }
    rc = 0;
done:
    if (in_flight) {  // an error while a batch ran: wait for it before its buffers go (its status is moot)
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err_msg());
        vision_tower_finish(r);
        err_set("%s", msg);
    }
    for (int i = 0; i < nl; i++) {
        if (hidden) free(hidden[i]);
        if (vv) free(vv[i]);
    }
    free(hidden);
    free(vv);
    free(pixels);
    free(emb);
    vision_tower_free(r);
    return rc;
}

static int embed_texts(const EmbedArgs *a, ClipModel *m, H5Writer *w) {
    const ClipText *t = &m->text;
    Tokenizer *tok = a->vocab ? tokenizer_load(a->vocab) : tokenizer_load_dir(a->model);
    if (!tok) return -1;
    int N = a->n_texts, T = t->context_length, P = t->proj_dim, rc = -1;
    int *ids = calloc((size_t)N * T, sizeof(int));
    float *emb = malloc(sizeof(float) * N * P);
    TextTower *r = NULL;
    if (!ids || !emb) { err_set("embed: out of memory for %d texts", N); goto done; }
    if (!(r = text_tower_new(t, 0, a->device, a->precision))) goto done;
    for (int i = 0; i < N; i++)
        if (tokenizer_encode(tok, a->texts[i], ids + (size_t)i * T, T) < 0) {
            err_wrap("text %d: ", i + 1);
            goto done;
        }
    // texts in groups of 64 so activations stay small for long lists
    for (int i0 = 0; i0 < N; i0 += 64) {
        int nb = N - i0 < 64 ? N - i0 : 64;
        if (text_tower_forward_ids(r, ids + (size_t)i0 * T, nb, T, emb + (size_t)i0 * P) < 0) goto done;
    }
    if (h5w_dataset(w, "text_embeds", 2, (hsize_t[]){N, P}) < 0 || h5w_write_rows(w, "text_embeds", 0, N, emb) < 0)
        goto done;
    rc = 0;
done:
    text_tower_free(r);
    free(ids);
    free(emb);
    tokenizer_free(tok);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    EmbedArgs a = {.batch = 8, .pos_mode = CLIP_POS_BILINEAR, .resize = IMAGE_RESIZE_SQUARE, .device = DEVICE_CPU, .precision = GEMM_FP32};
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { help(); return 0; }
        if (!strcmp(o, "--image") || !strcmp(o, "--text")) {
            int first = i + 1, n = 0;
            while (first + n < argc && strncmp(argv[first + n], "--", 2) != 0) n++;
            if (n == 0) return usage_error("no value after ", o);
            if (o[2] == 'i') a.images = argv + first, a.n_images = n;
            else a.texts = argv + first, a.n_texts = n;
            i += n;
            continue;
        }
        if (i + 1 >= argc) return usage_error("a value is missing after ", o);
        const char *v = argv[++i];
        if (!strcmp(o, "--model")) a.model = v;
        else if (!strcmp(o, "--out")) a.out = v;
        else if (!strcmp(o, "--vocab")) a.vocab = v;
        else if (!strcmp(o, "--image-size")) {
            if (cli_parse_int(v, 1, 100000, &a.image_size) < 0) return usage_error("--image-size: expected a size, got ", v);
        } else if (!strcmp(o, "--vv-from")) {
            if (cli_parse_int(v, 1, 1000, &a.vv_from) < 0) return usage_error("--vv-from: expected a layer >= 1, got ", v);
        } else if (!strcmp(o, "--batch")) {
            if (cli_parse_int(v, 1, 4096, &a.batch) < 0) return usage_error("--batch: expected 1..4096, got ", v);
        } else if (!strcmp(o, "--layers")) {
            if ((a.n_layers = parse_layers(v, a.layers, 256)) < 0)
                return usage_error("--layers: expected a comma-separated list of layers, got ", v);
        } else if (!strcmp(o, "--pos-resize")) {
            if (!strcmp(v, "bilinear")) a.pos_mode = CLIP_POS_BILINEAR;
            else if (!strcmp(v, "bicubic")) a.pos_mode = CLIP_POS_BICUBIC;
            else if (!strcmp(v, "bicubic-aa")) a.pos_mode = CLIP_POS_BICUBIC_AA;
            else return usage_error("--pos-resize: expected bilinear, bicubic or bicubic-aa, got ", v);
        } else if (!strcmp(o, "--resize")) {
            if (!strcmp(v, "square")) a.resize = IMAGE_RESIZE_SQUARE;
            else if (!strcmp(v, "short-crop")) a.resize = IMAGE_RESIZE_SHORT_CROP;
            else return usage_error("--resize: expected square or short-crop, got ", v);
        } else if (!strcmp(o, "--device")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda")) return usage_error("--device: expected cpu or cuda, got ", v);
            device = v;
        } else if (!strcmp(o, "--precision")) {
            if (gemm_precision_parse(v, &a.precision) < 0)
                return usage_error("--precision: expected fp32, tf32 or bf16, got ", v);
        } else return usage_error("unknown option ", o);
    }
    if (!a.model) return usage_error("--model is required", "");
    if (!a.out) return usage_error("--out is required", "");
    if (!a.n_images == !a.n_texts) return usage_error("give either --image PATH... or --text TEXT...", "");
    if (a.n_texts && (a.n_layers || a.vv_from || a.image_size))
        return usage_error("--layers, --vv-from and --image-size apply to --image", "");
    // CUDA asked for where it cannot run: one line, exit 1, before anything is read.
    if (device_select(device, &a.device) < 0) return fail_with_error();

    ClipModel *m = clip_model_load(a.model, a.n_images ? CLIP_VISION : CLIP_TEXT);
    if (!m) return fail_with_error();
    H5Writer *w = h5w_open(a.out);
    int rc = w ? 0 : -1;
    if (!rc) {
        rc = a.n_images ? embed_images(&a, m, w) : embed_texts(&a, m, w);
        if (!rc) rc = h5w_attr_str(w, "model", a.model);
        if (!rc && a.n_images) {
            int S = a.image_size ? a.image_size : m->vision.image_size;
            rc = h5w_attr_int(w, "image_size", S) || h5w_attr_int(w, "vv_from", a.vv_from) ||
                 h5w_attr_str(w, "pos_resize", clip_pos_resize_name(a.pos_mode)) ||
                 h5w_attr_str(w, "resize", a.resize == IMAGE_RESIZE_SHORT_CROP ? "short-crop" : "square") ? -1 : 0;
        }
        rc = h5w_close(w, rc == 0) < 0 ? -1 : rc;
    }
    clip_model_free(m);
    return rc ? fail_with_error() : 0;
}
