// Shared by datasets/synth_*.c: the class table entry and the canvas a defect is drawn on.
#ifndef DATASETS_SYNTH_INTERNAL_H
#define DATASETS_SYNTH_INTERNAL_H

#include "datasets/synth.h"
#include "datasets/synth_rng.h"

typedef enum {
    KIND_WOVEN, KIND_GRAINED, KIND_SPECKLED, KIND_BRUSHED, KIND_MESH, KIND_TILED, KIND_CELLULAR, // textures
    KIND_DISC, KIND_RING, KIND_ROUNDED_BOX, KIND_HEX_NUT, KIND_CAPSULE, KIND_BUTTON,            // objects
} SynthKind;

#define KIND_IS_OBJECT(k) ((k) >= KIND_DISC)

typedef struct {
    const char *name;
    SynthKind kind;
    float c0[3];      // texture: dark / thread / wire colour; object: the object's colour
    float c1[3];      // texture: light / ground colour; object: the background
    float freq;       // pattern cycles per image side (textures), surface noise frequency (objects)
    SynthDefect defects[3];
} SynthClass;

typedef struct {
    int size;
    float *rgb;          // (size, size, 3) the image being drawn, values in [0, 1]
    const float *bg;     // (size, size, 3) background without the object (objects), else NULL
    const float *cover;  // (size, size) object coverage in [0, 1] (objects), else NULL
    uint8_t *mask;       // (size, size) 1 where the defect changed the image
    const SynthClass *cls;
} Canvas;

const SynthClass *synth_class(int cls);
// Draws one defect: sets mask to its region and changes exactly those pixels of rgb, each by >= 0.1 in some
// channel. Returns the number of mask pixels.
int synth_draw_defect(Canvas *cv, SynthDefect d, Rng *r);

#endif
