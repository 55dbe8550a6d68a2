// Procedural anomaly datasets: normal images of textures and simple objects, each class with its own kind, palette
// and frequency, and defects (scratches, cracks, holes, stains, colour shifts, missing pieces, contamination) drawn
// with exact masks: a defect changes exactly the pixels of its mask, each by a visible amount. Every image depends
// only on (seed, class, split, index), so output is the same for a seed whatever the thread count.
#ifndef DATASETS_SYNTH_H
#define DATASETS_SYNTH_H

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
} SynthOptions;

// Writes the dataset (OpenMP over images). 0, or -1 with err_set naming the path at fault.
int synth_write(const SynthOptions *opt);

#endif
