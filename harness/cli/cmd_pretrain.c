// kanoclip pretrain CONFIG [key=value ...]
// Trains a small CLIP from scratch on synthetic image-caption pairs (datasets/synth_pairs.c) with the engine of
// model/clip_train.h, and writes a Hugging Face folder (config.json, model.safetensors, vocab.json, merges.txt)
// that every other command reads like a downloaded CLIP, with its provenance (PROVENANCE.md, loss_curve.csv,
// pretrain.yaml). Keys and their defaults: experiments/pretrain-defaults.yaml. Checkpoints and the optimizer
// state go to OUT.state/, from which a killed run resumes.
#include "harness/cli/commands.h"
#include "harness/config/config.h"
#include "harness/run/log.h"
#include "harness/run/provenance.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/strbuf.h"
#include "datasets/synth.h"
#include "model/checkpoint_write.h"
#include "model/clip_train.h"
#include "model/tokenizer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: kanoclip pretrain CONFIG.yaml [key=value ...]\n"
    "  trains a CLIP on synthetic image-caption pairs and writes a Hugging Face folder (the config's out);\n"
    "  keys: experiments/pretrain-defaults.yaml; an interrupted run resumes from OUT.state/\n";

typedef struct {
    const char *out;
    long seed, threads, log_every, checkpoint_every;
    long image_size, patch_size, vw, vl, vh, tw, tl, th, context, train_context, proj;
    long classes, data_seed, batch, stop_after;
    double p_anomalous;
    int resume, twins;
    ClipTrainOpt opt;
} PretrainCfg;

static int read_cfg(const Config *c, PretrainCfg *p) {
    struct { const char *key; long *dst; long min; } ints[] = {
        {"run.seed", &p->seed, 0}, {"run.threads", &p->threads, 0}, {"run.log_every", &p->log_every, 1},
        {"run.checkpoint_every", &p->checkpoint_every, 1}, {"model.image_size", &p->image_size, 8},
        {"model.patch_size", &p->patch_size, 1}, {"model.vision.width", &p->vw, 1}, {"model.vision.layers", &p->vl, 1},
        {"model.vision.heads", &p->vh, 1}, {"model.text.width", &p->tw, 1}, {"model.text.layers", &p->tl, 1},
        {"model.text.heads", &p->th, 1}, {"model.context_length", &p->context, 8},
        {"model.projection_dim", &p->proj, 1}, {"data.classes", &p->classes, 2}, {"data.seed", &p->data_seed, 0},
        {"data.context", &p->train_context, 4}, {"train.batch_size", &p->batch, 2}, {"train.steps", &p->opt.steps, 1},
        {"train.warmup", &p->opt.warmup, 0}, {"train.stop_after", &p->stop_after, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (config_get_int(c, ints[i].key, ints[i].dst) < 0) return -1;
        if (*ints[i].dst < ints[i].min) return err_set("%s: %ld must be at least %ld", ints[i].key, *ints[i].dst, ints[i].min);
    }
    struct { const char *key; double *dst; } floats[] = {
        {"data.p_anomalous", &p->p_anomalous}, {"train.lr", &p->opt.lr}, {"train.lr_min", &p->opt.lr_min},
        {"train.beta1", &p->opt.beta1}, {"train.beta2", &p->opt.beta2}, {"train.eps", &p->opt.eps},
        {"train.weight_decay", &p->opt.weight_decay}, {"train.clip_norm", &p->opt.clip_norm},
    };
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++)
        if (config_get_float(c, floats[i].key, floats[i].dst) < 0) return -1;
    if (config_get_str(c, "out", &p->out) < 0 || config_get_bool(c, "train.resume", &p->resume) < 0 ||
        config_get_bool(c, "data.twins", &p->twins) < 0)
        return -1;
    if (!p->out || !*p->out) return err_set("out: empty (the folder the model is written to)");
    if (p->classes > synth_n_classes())
        return err_set("data.classes: %ld, the generator has %d classes", p->classes, synth_n_classes());
    if (p->train_context > p->context)
        return err_set("data.context: %ld exceeds model.context_length %ld", p->train_context, p->context);
    if (p->vw % p->vh) return err_set("model.vision.width: %ld is not a multiple of model.vision.heads %ld", p->vw, p->vh);
    if (p->tw % p->th) return err_set("model.text.width: %ld is not a multiple of model.text.heads %ld", p->tw, p->th);
    if (p->image_size % p->patch_size) return err_set("model.image_size: %ld is not a multiple of model.patch_size %ld",
                                                      p->image_size, p->patch_size);
    return 0;
}

static ClipConfig clip_shape(const PretrainCfg *p) {
    ClipConfig c = {0};
    c.vision = (TowerShape){(int)p->vw, (int)p->vl, (int)p->vh, (int)(4 * p->vw), 1e-5f, ACT_QUICK_GELU};
    c.text = (TowerShape){(int)p->tw, (int)p->tl, (int)p->th, (int)(4 * p->tw), 1e-5f, ACT_QUICK_GELU};
    c.vocab_size = 49408;  // the CLIP id layout (clip_write_small_vocab): SOT 49406, EOT 49407
    c.context_length = (int)p->context;
    c.eos_token_id = TOKENIZER_EOT;
    c.image_size = (int)p->image_size;
    c.patch_size = (int)p->patch_size;
    c.channels = 3;
    c.projection_dim = (int)p->proj;
    c.logit_scale_init = 2.6592f;  // log(1 / 0.07), CLIP's initial temperature
    return c;
}

static int write_vocab(const char *dir, int n_classes) {
    int n = 0;
    char **words = synth_caption_words(n_classes, &n);
    int rc = clip_write_small_vocab(dir, (const char *const *)words, n);
    for (int i = 0; i < n; i++) free(words[i]);
    free(words);
    return rc;
}

// One batch: pixels (B,3,S,S) normalised as cfg says, ids (B,T) padded with 0, eot (B).
static int make_batch(const PretrainCfg *p, const ClipConfig *cc, Tokenizer *tok, long step, float *pixels,
                      int *ids, int *eot) {
    int B = (int)p->batch, S = (int)p->image_size, T = (int)p->train_context, failed = 0;
    #pragma omp parallel
    {
        uint8_t *img = malloc((size_t)S * S * 3);
        #pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            char caption[256];
            int cls, defect;
            synth_pair((uint64_t)p->data_seed, (uint64_t)step * B + b, (int)p->classes, (float)p->p_anomalous, p->twins,
                       S, img, caption, sizeof caption, &cls, &defect);
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < S * S; i++)
                    pixels[((size_t)b * 3 + c) * S * S + i] = (img[3 * i + c] / 255.0f - cc->image_mean[c]) / cc->image_std[c];
            int *row = ids + (size_t)b * T;
            int n = tokenizer_encode(tok, caption, row, T);
            if (n < 2) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            for (int i = n; i < T; i++) row[i] = 0;
            eot[b] = n - 1;
        }
        free(img);
    }
    return failed ? err_set("pretrain: a caption could not be tokenised (%s)", err_msg()) : 0;
}

static int write_curve(const char *dir, const char *curve) {
    char *path = fs_join(dir, "loss_curve.csv");
    int rc = fs_write_atomic(path, curve, strlen(curve));
    free(path);
    return rc;
}

// The code that trained: the commit (and whether the tree differed from it) when the run started.
typedef struct {
    char commit[64];
    int dirty;
} CodeState;

static int export_model(const ClipTrain *m, const PretrainCfg *p, const Config *cfg, const char *curve, int argc,
                        char **argv, double seconds, double last_loss, const CodeState *code) {
    // written into OUT.partial and renamed, so OUT is either the previous model or the whole new one
    char *tmp = malloc(strlen(p->out) + 16);
    sprintf(tmp, "%s.partial", p->out);
    int rc = fs_mkdirs(tmp);
    if (rc == 0) rc = clip_train_save(m, tmp);
    if (rc == 0) rc = write_vocab(tmp, (int)p->classes);
    if (rc == 0) rc = write_curve(tmp, curve);
    char *yaml = fs_join(tmp, "pretrain.yaml");
    if (rc == 0) rc = config_write_yaml(cfg, yaml);
    free(yaml);
    if (rc == 0) {
        char now[32];
        provenance_now(now);
        StrBuf b = {0};
        strbuf_printf(&b, "# Provenance\n\nA CLIP trained from scratch by `kanoclip pretrain` on synthetic image-caption "
                          "pairs (datasets/synth_pairs.c).\n\n");
        strbuf_printf(&b, "- command: `kanoclip");
        for (int i = 0; i < argc; i++) strbuf_printf(&b, " %s", argv[i]);
        strbuf_printf(&b, "` (reproduce with `make tiny-clip`)\n- config: pretrain.yaml (composed, every key)\n");
        strbuf_printf(&b, "- seed: run.seed %ld (initialisation), data.seed %ld (the image-caption stream)\n", p->seed,
                      p->data_seed);
        strbuf_printf(&b, "- commit: %s%s (when the run started)\n- finished: %s\n", code->commit,
                      code->dirty > 0 ? " with uncommitted changes" : "", now);
        strbuf_printf(&b, "- steps: %ld of %ld pairs each (%ld pairs), %.0f s of wall time on %d thread(s)\n", m->step,
                      p->batch, m->step * p->batch, seconds, omp_get_max_threads());
        strbuf_printf(&b, "- parameters: %zu; final training loss %.4f\n- loss curve: loss_curve.csv (step, loss, "
                          "in-batch image-to-text accuracy, learning rate, gradient norm)\n", m->n_params, last_loss);
        char *path = fs_join(tmp, "PROVENANCE.md");
        rc = fs_write_atomic(path, b.s, b.len);
        free(path);
        free(strbuf_take(&b));
    }
    if (rc == 0) {
        // replace OUT: its files one by one (a folder rename would fail on a non-empty OUT)
        static const char *files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                                      "loss_curve.csv", "pretrain.yaml", "PROVENANCE.md"};
        rc = fs_mkdirs(p->out);
        for (size_t i = 0; rc == 0 && i < sizeof files / sizeof *files; i++) {
            char *from = fs_join(tmp, files[i]), *to = fs_join(p->out, files[i]);
            if (rename(from, to) != 0) rc = err_set("%s: cannot move %s into place", to, from);
            free(from);
            free(to);
        }
        if (rc == 0) remove(tmp);
    }
    free(tmp);
    return rc;
}

int cmd_pretrain(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    // the keys live beside experiments/defaults.yaml, in pretrain-defaults.yaml
    const char *defaults = config_find_defaults();
    if (!defaults) return fail_with_error();
    char defaults_path[4096];
    snprintf(defaults_path, sizeof defaults_path, "%s", defaults);
    char *slash = strrchr(defaults_path, '/');
    snprintf(slash ? slash + 1 : defaults_path, sizeof defaults_path - (slash ? slash + 1 - defaults_path : 0),
             "pretrain-defaults.yaml");
    for (int i = 2; i < argc; i++)
        if (!strchr(argv[i], '=')) {
            fprintf(stderr, "kanoclip pretrain: '%s' is not a key=value override\n", argv[i]);
            return 2;
        }
    Config *cfg = config_load(argv[1], defaults_path, argc - 2, argv + 2);
    if (!cfg) return fail_with_error();
    PretrainCfg p = {0};
    if (read_cfg(cfg, &p) < 0) { config_free(cfg); return fail_with_error(); }
    if (p.threads > 0) omp_set_num_threads((int)p.threads);

    int rc = 1;
    ClipTrain *m = NULL;
    Tokenizer *tok = NULL;
    float *pixels = NULL;
    int *ids = NULL, *eot = NULL;
    StrBuf curve = {0};
    char *state = malloc(strlen(p.out) + 16);
    sprintf(state, "%s.state", p.out);
    char *opt_path = fs_join(state, "optimizer.bin");
    char *curve_path = fs_join(state, "loss_curve.csv");
    ClipConfig shape = clip_shape(&p), cc;
    int resuming = p.resume && fs_exists(opt_path);
    CodeState code = {"", 0};
    provenance_git(code.commit, &code.dirty);
    if (!resuming) {
        log_msg("pretrain: a new CLIP (vision %ldx%ld, text %ldx%ld, %ld px, patch %ld, projection %ld) in %s", p.vl,
                p.vw, p.tl, p.tw, p.image_size, p.patch_size, p.proj, state);
        if (fs_mkdirs(state) < 0 || clip_write_random(state, &shape, (uint64_t)p.seed) < 0) goto done;
    }
    if (write_vocab(state, (int)p.classes) < 0 || clip_config_load(state, &cc) < 0) goto done;
    if (!(tok = tokenizer_load_dir(state)) || !(m = clip_train_load(state, &cc))) goto done;
    if (resuming) {
        if (clip_train_load_state(m, state) < 0) goto done;
        size_t len = 0;
        char *text = fs_read_file(curve_path, &len);
        if (text) strbuf_printf(&curve, "%s", text);
        free(text);
        log_msg("pretrain: resuming %s at step %ld", state, m->step);
    }
    if (!curve.len) strbuf_printf(&curve, "step,loss,accuracy,lr,grad_norm\n");
    int B = (int)p.batch, T = (int)p.train_context, S = (int)p.image_size;
    pixels = malloc(sizeof(float) * B * 3 * S * S);
    ids = malloc(sizeof(int) * B * T);
    eot = malloc(sizeof(int) * B);
    if (!pixels || !ids || !eot) { err_set("pretrain: out of memory for a batch of %d", B); goto done; }
    log_msg("pretrain: %zu parameters, %ld steps of %d pairs from %ld classes, %d threads", m->n_params, p.opt.steps,
            B, p.classes, omp_get_max_threads());
    double t0 = omp_get_wtime(), t_data = 0, loss_sum = 0, acc_sum = 0, last_loss = 0;
    int n_sum = 0;
    long start = m->step;
    while (m->step < p.opt.steps) {
        if (p.stop_after && m->step - start == p.stop_after) {
            log_msg("pretrain: stopped at step %ld of %ld (train.stop_after); run again to resume", m->step, p.opt.steps);
            rc = 0;
            goto done;
        }
        double td = omp_get_wtime();
        if (make_batch(&p, &cc, tok, m->step, pixels, ids, eot) < 0) goto done;
        t_data += omp_get_wtime() - td;
        clip_train_zero_grad(m);
        float loss = clip_train_forward(m, pixels, ids, eot, B, T);
        if (loss < 0 || clip_train_backward(m) < 0) goto done;
        if (!isfinite(loss)) { err_set("pretrain: the loss is %g at step %ld (lower train.lr)", loss, m->step); goto done; }
        // in-batch accuracy: image i's nearest caption is its own
        const float *ie = clip_train_image_embeds(m), *te = clip_train_text_embeds(m);
        int P = cc.projection_dim, right = 0;
        for (int i = 0; i < B; i++) {
            int best = 0;
            float bs = -2;
            for (int j = 0; j < B; j++) {
                float s = 0;
                for (int k = 0; k < P; k++) s += ie[i * P + k] * te[j * P + k];
                if (s > bs) bs = s, best = j;
            }
            right += best == i;
        }
        double lr = clip_train_lr(&p.opt, m->step);
        double gnorm = clip_train_update(m, &p.opt);
        loss_sum += loss, acc_sum += (double)right / B, n_sum++;
        last_loss = loss;
        if (m->step % p.log_every == 0 || m->step == p.opt.steps) {
            strbuf_printf(&curve, "%ld,%.5f,%.4f,%.3g,%.4f\n", m->step, loss_sum / n_sum, acc_sum / n_sum, lr, gnorm);
            log_msg("pretrain: step %ld/%ld loss %.4f accuracy %.3f lr %.2e |g| %.3f scale %.2f (%.0f s, %.0f s "
                    "drawing data)", m->step, p.opt.steps, loss_sum / n_sum, acc_sum / n_sum, lr, gnorm,
                    expf(m->params.logit_scale[0]), omp_get_wtime() - t0, t_data);
            loss_sum = acc_sum = 0, n_sum = 0;
        }
        if (m->step % p.checkpoint_every == 0 || m->step == p.opt.steps || m->step - start == p.stop_after) {
            if (clip_train_save(m, state) < 0 || clip_train_save_state(m, state) < 0 || write_curve(state, curve.s) < 0)
                goto done;
        }
    }
    if (export_model(m, &p, cfg, curve.s, argc, argv, omp_get_wtime() - t0, last_loss, &code) < 0) goto done;
    log_msg("pretrain: wrote %s (%.0f s)", p.out, omp_get_wtime() - t0);
    rc = 0;
done:
    if (rc) fail_with_error();
    free(pixels), free(ids), free(eot), free(state), free(opt_path), free(curve_path);
    free(strbuf_take(&curve));
    clip_train_free(m);
    tokenizer_free(tok);
    config_free(cfg);
    return rc;
}
