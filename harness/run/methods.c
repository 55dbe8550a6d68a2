// The method table: every method the harness runs (method.h). Adding one is its file, a line here, its config
// and its tests.
#include "harness/run/method.h"

#include <string.h>

extern const Method METHOD_KANOCLIP, METHOD_CLIP, METHOD_CLIP_AC, METHOD_WINCLIP, METHOD_APRIL_GAN, METHOD_ANOMALYCLIP,
    METHOD_MVFA_AD;

static const Method *const METHODS[] = {
    &METHOD_KANOCLIP, &METHOD_CLIP, &METHOD_CLIP_AC, &METHOD_WINCLIP, &METHOD_APRIL_GAN, &METHOD_ANOMALYCLIP,
    &METHOD_MVFA_AD,
};
#define N_METHODS (sizeof METHODS / sizeof *METHODS)

const Method *method_find(const char *name) {
    for (size_t i = 0; name && i < N_METHODS; i++)
        if (!strcmp(METHODS[i]->name, name)) return METHODS[i];
    return NULL;
}

const char *method_names(void) {
    static char names[256];
    if (!names[0])
        for (size_t i = 0; i < N_METHODS; i++) {
            if (i) strcat(names, " ");
            strcat(names, METHODS[i]->name);
        }
    return names;
}
