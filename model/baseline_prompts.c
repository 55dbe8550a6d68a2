// Prompt data of the baselines, as strings from the public code (docs/reference/zsad-anchors.md §1.2, §1.6, §1.7), and the
// text features of a prompt ensemble.
#include "model/baselines.h"
#include "common/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// OpenAI CLIP's ImageNet ensemble (open_clip zero_shot_metadata.py OPENAI_IMAGENET_TEMPLATES), 80 entries.
static const char *const TPL_IMAGENET80[] = {
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
    "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.",
    "a photo of a {}.", "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
    "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
    "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.", "a sketch of the {}.",
    "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
    "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.",
    "itap of a {}.", "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "a tattoo of the {}.",
};

// anomalib winclip/prompting.py TEMPLATES (= zqhang prompt_order): 21 entries, the jpeg line listed twice.
static const char *const TPL_WINCLIP21[] = {
    "a cropped photo of the {}.", "a close-up photo of a {}.", "a close-up photo of the {}.",
    "a bright photo of a {}.", "a bright photo of the {}.", "a dark photo of the {}.", "a dark photo of a {}.",
    "a jpeg corrupted photo of the {}.", "a jpeg corrupted photo of the {}.", "a blurry photo of the {}.",
    "a blurry photo of a {}.", "a photo of a {}.", "a photo of the {}.", "a photo of a small {}.",
    "a photo of the small {}.", "a photo of a large {}.", "a photo of the large {}.",
    "a photo of the {} for visual inspection.", "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.", "a photo of a {} for anomaly detection.",
};

// caoyunkang/WinClip ad_prompts.py (as described in docs/reference/zsad-anchors.md §1.6): 22 unique, no trailing period.
static const char *const TPL_WINCLIP22[] = {
    "a cropped photo of the {}", "a cropped photo of a {}", "a close-up photo of a {}",
    "a close-up photo of the {}", "a bright photo of a {}", "a bright photo of the {}", "a dark photo of the {}",
    "a dark photo of a {}", "a jpeg corrupted photo of a {}", "a jpeg corrupted photo of the {}",
    "a blurry photo of the {}", "a blurry photo of a {}", "a photo of a {}", "a photo of the {}",
    "a photo of a small {}", "a photo of the small {}", "a photo of a large {}", "a photo of the large {}",
    "a photo of the {} for visual inspection", "a photo of a {} for visual inspection",
    "a photo of the {} for anomaly detection", "a photo of a {} for anomaly detection",
};

// ByChelsea/VAND-APRIL-GAN prompt_ensemble.py prompt_templates, 35 entries.
static const char *const TPL_APRILGAN35[] = {
    "a bad photo of a {}.", "a low resolution photo of the {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a bright photo of a {}.", "a dark photo of the {}.", "a photo of my {}.",
    "a photo of the cool {}.", "a close-up photo of a {}.", "a black and white photo of the {}.",
    "a bright photo of the {}.", "a cropped photo of a {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a photo of one {}.",
    "a close-up photo of the {}.", "a photo of a {}.", "a low resolution photo of a {}.",
    "a photo of a large {}.", "a blurry photo of a {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a photo of the small {}.", "a photo of the large {}.",
    "a black and white photo of a {}.", "a dark photo of a {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "there is a {} in the scene.", "there is the {} in the scene.",
    "this is a {} in the scene.", "this is the {} in the scene.", "this is one {} in the scene.",
};

// State words. WinCLIP (anomalib NORMAL_STATES / ANOMALOUS_STATES) has no "broken"; APRIL-GAN has it.
static const char *const NORMAL_STATES[] = {"{}", "flawless {}", "perfect {}", "unblemished {}",
                                            "{} without flaw", "{} without defect", "{} without damage"};
static const char *const WINCLIP_ABNORMAL[] = {"damaged {}", "{} with flaw", "{} with defect", "{} with damage"};
static const char *const APRILGAN_ABNORMAL[] = {"damaged {}", "broken {}", "{} with flaw", "{} with defect",
                                                "{} with damage"};
// CLIP (AnomalyCLIP issue #25/#76): two sentences; CLIP-AC (WinCLIP §4): two states under a template ensemble.
static const char *const CLIP_NORMAL[] = {"a photo of a normal {}."};
static const char *const CLIP_ABNORMAL[] = {"a photo of an anomalous {}."};
static const char *const CLIPAC_NORMAL[] = {"normal {}"};
static const char *const CLIPAC_ABNORMAL[] = {"anomalous {}"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int baseline_template_count(BaselineTemplates t) {
    switch (t) {
    case BL_TPL_NONE: return 1;
    case BL_TPL_IMAGENET80: return COUNT(TPL_IMAGENET80);
    case BL_TPL_WINCLIP21: return COUNT(TPL_WINCLIP21);
    case BL_TPL_WINCLIP22: return COUNT(TPL_WINCLIP22);
    case BL_TPL_APRILGAN35: return COUNT(TPL_APRILGAN35);
    }
    return 0;
}

const char *baseline_template(BaselineTemplates t, int i) {
    if (i < 0 || i >= baseline_template_count(t)) return NULL;
    switch (t) {
    case BL_TPL_NONE: return "{}";
    case BL_TPL_IMAGENET80: return TPL_IMAGENET80[i];
    case BL_TPL_WINCLIP21: return TPL_WINCLIP21[i];
    case BL_TPL_WINCLIP22: return TPL_WINCLIP22[i];
    case BL_TPL_APRILGAN35: return TPL_APRILGAN35[i];
    }
    return NULL;
}

const char *baseline_class_arg(const BaselineConfig *cfg, const char *folder_name, const char *prompt_name) {
    return cfg->class_name == BL_CLASS_RAW || !prompt_name ? folder_name : prompt_name;
}

char *baseline_class_word(BaselineClassName mode, const char *cls) {
    char *s = strdup(mode == BL_CLASS_OBJECT ? "object" : cls);
    if (s && mode == BL_CLASS_SPACES)
        for (char *p = s; *p; p++)
            if (*p == '_') *p = ' ';
    return s;
}

// Python's fmt.format(arg) for a format holding one "{}": malloc'd.
static char *format1(const char *fmt, const char *arg) {
    const char *at = strstr(fmt, "{}");
    size_t n = strlen(fmt) + strlen(arg) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    if (!at) { memcpy(s, fmt, strlen(fmt) + 1); return s; }
    snprintf(s, n, "%.*s%s%s", (int)(at - fmt), fmt, arg, at + 2);
    return s;
}

void baseline_free_strings(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

int baseline_prompt_sentences(const BaselineConfig *cfg, const char *cls, int which, char ***out) {
    const char *const *states;
    int ns;
    switch (cfg->method) {
    case BL_CLIP: states = which ? CLIP_ABNORMAL : CLIP_NORMAL, ns = 1; break;
    case BL_CLIP_AC: states = which ? CLIPAC_ABNORMAL : CLIPAC_NORMAL, ns = 1; break;
    case BL_WINCLIP:
        states = which ? WINCLIP_ABNORMAL : NORMAL_STATES, ns = which ? COUNT(WINCLIP_ABNORMAL) : COUNT(NORMAL_STATES);
        break;
    case BL_APRILGAN: case BL_MVFA:  // MVFA-AD's utils.py: APRIL-GAN's states and templates
        states = which ? APRILGAN_ABNORMAL : NORMAL_STATES;
        ns = which ? COUNT(APRILGAN_ABNORMAL) : COUNT(NORMAL_STATES);
        break;
    default: return err_set("baseline %s: no fixed prompt ensemble", baseline_method_name(cfg->method));
    }
    int nt = baseline_template_count(cfg->templates);
    if (nt <= 0) return err_set("baseline: unknown template set %d", (int)cfg->templates);
    char *word = baseline_class_word(cfg->class_name, cls);
    char **s = calloc((size_t)ns * nt, sizeof *s);
    if (!word || !s) { free(word); free(s); return err_set("baseline prompts: out of memory"); }
    for (int i = 0; i < ns; i++) {
        char *state = format1(states[i], word);
        for (int j = 0; j < nt && state; j++) s[i * nt + j] = format1(baseline_template(cfg->templates, j), state);
        free(state);
        for (int j = 0; j < nt; j++)
            if (!s[i * nt + j]) { baseline_free_strings(s, ns * nt); free(word); return err_set("baseline prompts: out of memory"); }
    }
    free(word);
    *out = s;
    return ns * nt;
}

#define TEXT_BATCH 32

int baseline_text_features(const ClipText *t, Tokenizer *tok, const BaselineConfig *cfg, const char *cls,
                           float *text) {
    int P = t->proj_dim, T = t->context_length, rc = -1;
    ClipTextRun *run = clip_text_run_new(t, 0);
    int *ids = malloc(sizeof(int) * TEXT_BATCH * T);
    float *emb = malloc(sizeof(float) * TEXT_BATCH * P);
    if (!run || !ids || !emb) { err_set("baseline text: out of memory"); goto done; }
    for (int which = 0; which < 2; which++) {
        char **s = NULL;
        int n = baseline_prompt_sentences(cfg, cls, which, &s);
        if (n < 0) goto done;
        double acc[P];
        memset(acc, 0, sizeof acc);
        for (int i0 = 0; i0 < n; i0 += TEXT_BATCH) {
            int nb = n - i0 < TEXT_BATCH ? n - i0 : TEXT_BATCH;
            memset(ids, 0, sizeof(int) * nb * T);
            for (int i = 0; i < nb; i++)
                if (tokenizer_encode(tok, s[i0 + i], ids + (size_t)i * T, T) < 0) {
                    baseline_free_strings(s, n);
                    goto done;
                }
            if (clip_text_forward_ids(run, ids, nb, T, emb) < 0) { baseline_free_strings(s, n); goto done; }
            for (int i = 0; i < nb; i++) {
                const float *e = emb + (size_t)i * P;
                double nrm = 0;
                for (int p = 0; p < P; p++) nrm += (double)e[p] * e[p];
                nrm = cfg->text_pool == BL_POOL_MEAN_UNIT ? fmax(sqrt(nrm), 1e-12) : 1.0;
                for (int p = 0; p < P; p++) acc[p] += e[p] / nrm;
            }
        }
        baseline_free_strings(s, n);
        double nrm = 0;
        for (int p = 0; p < P; p++) { acc[p] /= n; nrm += acc[p] * acc[p]; }
        nrm = cfg->text_pool == BL_POOL_MEAN_UNIT ? fmax(sqrt(nrm), 1e-12) : 1.0;
        for (int p = 0; p < P; p++) text[which * P + p] = (float)(acc[p] / nrm);
    }
    rc = 0;
done:
    clip_text_run_free(run);
    free(ids);
    free(emb);
    return rc;
}
