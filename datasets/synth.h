// Procedural anomaly datasets: normal images of textures and simple objects, each class with its own kind, palette
// and frequency, and defects (scratches, cracks, holes, stains, colour shifts, missing pieces, contamination) drawn
// with exact masks: a defect changes exactly the pixels of its mask, each by a visible amount. Every image depends
// only on (seed, class, split, index), so output is the same for a seed whatever the thread count.
#ifndef DATASETS_SYNTH_H
#define DATASETS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DEFECT_SCRATCH,
    DEFECT_CRACK,
    DEFECT_HOLE,
    DEFECT_STAIN,
    DEFECT_COLOR,
    DEFECT_MISSING,
    DEFECT_CONTAMINATION,
    DEFECT_N_KINDS
} SynthDefect;

// Classes of the built-in table, in a fixed order that alternates textures and objects.
int synth_n_classes(void);
const char *synth_class_name(int cls);          // "woven_fabric", "brass_disc", ...
int synth_class_n_defects(int cls);
SynthDefect synth_class_defect(int cls, int k);  // the class's k-th defect kind
const char *synth_defect_name(SynthDefect d);    // folder name: "scratch", "crack", "hole", ...

// Renders one size x size image of class cls from seed. defect < 0: a normal image, mask all 0. Otherwise the
// defect is drawn on the normal image; clean (may be NULL) gets the image before the defect.
// img, clean (size, size, 3) RGB; mask (size, size), 255 inside the defect, 0 elsewhere.
void synth_render(int cls, uint64_t seed, int size, int defect, uint8_t *img, uint8_t *clean, uint8_t *mask);

// What a caption says about a drawn defect, measured on its mask: place ("top left", "centre", ...), size
// ("small" < 1.5 % of the image, "medium" < 5 %, "large"), colour (nearest name to the mean of its pixels) and
// shade ("dark"/"bright" when it changed the brightness by more than 0.12, else NULL).
typedef struct {
    char place[16];
    const char *size, *colour, *shade;
} SynthCaptionAttrs;

// Measures a defect from the image, its clean version and the mask (as synth_render writes them). -1: empty mask.
int synth_caption_attrs(int size, const uint8_t *img, const uint8_t *clean, const uint8_t *mask, SynthCaptionAttrs *a);
// A caption of an image of class cls: normal (defect < 0) or with the defect that attrs describes, in one of
// several phrasings chosen by seed ("a photo of a flawless oak wood.", "oak wood with a small dark crack near the
// top left."). 0, or -1 when it does not fit in cap bytes.
int synth_caption(int cls, int defect, const SynthCaptionAttrs *attrs, uint64_t seed, char *out, size_t cap);

// One image-caption pair of the pretraining stream (datasets/synth_pairs.c): pair number i of seed, a class drawn
// uniformly from classes 0..n_classes-1, anomalous with probability p_anomalous (one of the class's defect kinds),
// rendered at size px, captioned by synth_caption. twins: pairs 2k and 2k+1 share the class and take opposite
// states (hard negatives for the contrastive loss). img (size, size, 3) RGB; caption gets at most cap bytes;
// *cls and *defect (kind, or -1 when normal) say what was drawn. Depends only on the arguments.
void synth_pair(uint64_t seed, uint64_t i, int n_classes, float p_anomalous, int twins, int size, uint8_t *img,
                char *caption, size_t cap, int *cls, int *defect);
// Every distinct lowercase word the captions of classes 0..n_classes-1 can use, for a vocabulary: *n_words gets
// their count; a malloc'd array of malloc'd strings (free each, then the array).
char **synth_caption_words(int n_classes, int *n_words);

typedef struct {
    const char *out;       // output folder (created)
    const char *layout;    // "mvtec" or "visa"
    int n_classes;         // classes taken from the table, starting at class_offset
    int class_offset;      // so that two datasets can have disjoint classes (train on some, test on others)
    uint64_t seed;
    int size;              // image side in pixels
    int n_test_normal;     // per class
    int n_test_anomalous;  // per class, spread round-robin over the class's defect kinds
    int n_train_normal;    // per class
    int write_meta;        // also write <out>/meta.json (AnomalyCLIP schema)
    int write_captions;    // also write <out>/captions.csv: image path (relative to out),caption (synth_caption)
} SynthOptions;

// Writes the dataset (OpenMP over images). 0, or -1 with err_set naming the path at fault.
int synth_write(const SynthOptions *opt);

#endif
