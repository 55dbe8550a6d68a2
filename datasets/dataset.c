// The table of dataset types, the sample builder every reader fills, and the final sort into a Dataset.
#include "datasets/dataset.h"
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

// The registry (dataset_types.def) as a table indexed by DatasetType.
static const struct {
    const char *name;
    ReaderFn read;
    MaskRule mask_rule;
} dataset_types[DATASET_N_TYPES] = {
#define DATASET(e, name, reader, rule) [DATASET_##e] = {#name, reader, rule},
#include "datasets/dataset_types.def"
#undef DATASET
};

const char *dataset_type_names(void) {
    static char names[256];
    if (!names[0])
        for (int t = 0; t < DATASET_N_TYPES; t++) {
            if (t) strcat(names, " ");
            strcat(names, dataset_types[t].name);
        }
    return names;
}

int dataset_type_from_name(const char *name, DatasetType *out) {
    for (int t = 0; t < DATASET_N_TYPES; t++)
        if (!strcmp(name, dataset_types[t].name)) { *out = (DatasetType)t; return 0; }
    return err_set("unknown dataset type '%s' (valid: %s)", name, dataset_type_names());
}

const char *dataset_type_name(DatasetType type) {
    return (type >= 0 && type < DATASET_N_TYPES) ? dataset_types[type].name : "?";
}

char *dataset_prompt_from_name(const char *name) {
    char *p = strdup(name);
    for (char *c = p; *c; c++)
        if (*c == '_') *c = ' ';
    return p;
}

void builder_add(DatasetBuilder *b, const char *cls, const char *prompt, const char *image, const char *mask,
                 const char *defect, int label) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->items = realloc(b->items, (size_t)b->cap * sizeof *b->items);
    }
    struct BuiltSample *s = &b->items[b->n++];
    s->cls = strdup(cls);
    s->prompt = prompt ? strdup(prompt) : dataset_prompt_from_name(cls);
    s->image = strdup(image);
    s->mask = (mask && *mask) ? strdup(mask) : NULL;
    s->defect = strdup(defect ? defect : "");
    s->label = label;
}

static int cmp_built(const void *a, const void *b) {
    const struct BuiltSample *x = a, *y = b;
    int c = strcmp(x->cls, y->cls);
    return c ? c : strcmp(x->image, y->image);
}

static void builder_discard(DatasetBuilder *b) {
    for (int i = 0; i < b->n; i++) {
        struct BuiltSample *s = &b->items[i];
        free(s->cls); free(s->prompt); free(s->image); free(s->mask); free(s->defect);
    }
    free(b->items);
}

// Sorts the samples, builds the class table (one entry per distinct class name) and moves the strings over.
static void builder_finish(DatasetBuilder *b) {
    Dataset *ds = b->ds;
    qsort(b->items, b->n, sizeof *b->items, cmp_built);
    ds->samples = calloc(b->n ? b->n : 1, sizeof *ds->samples);
    ds->classes = calloc(b->n ? b->n : 1, sizeof *ds->classes);
    for (int i = 0; i < b->n; i++) {
        struct BuiltSample *s = &b->items[i];
        if (ds->n_classes == 0 || strcmp(ds->classes[ds->n_classes - 1].name, s->cls) != 0) {
            DatasetClass *c = &ds->classes[ds->n_classes++];
            c->name = s->cls;
            c->prompt_name = s->prompt;
        } else {
            free(s->cls);
            free(s->prompt);
        }
        DatasetClass *c = &ds->classes[ds->n_classes - 1];
        Sample *o = &ds->samples[ds->n_samples++];
        o->image_path = s->image;
        o->mask_path = s->mask;
        o->defect = s->defect;
        o->label = s->label;
        o->class_index = ds->n_classes - 1;
        if (s->label) {
            c->n_anomalous++;
            if (s->mask) c->n_masks++;
        } else {
            c->n_normal++;
        }
    }
    free(b->items);
    b->items = NULL;
}

Dataset *dataset_open(DatasetType type, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (type < 0 || type >= DATASET_N_TYPES) {
        err_set("unknown dataset type %d (valid: %s)", (int)type, dataset_type_names());
        return NULL;
    }
    if (!root || !*root) { err_set("%s: no dataset root given", dataset_types[type].name); return NULL; }
    if (!fs_exists(root)) { err_set("%s: dataset root not found", root); return NULL; }
    static const DatasetOptions no_options = {0};
    Dataset *ds = calloc(1, sizeof *ds);
    ds->type = type;
    ds->split = split;
    ds->root = strdup(root);
    ds->mask_rule = dataset_types[type].mask_rule;
    DatasetBuilder b = {.ds = ds};
    if (dataset_types[type].read(&b, root, split, opts ? opts : &no_options) != 0) {
        builder_discard(&b);
        dataset_free(ds);
        return NULL;
    }
    if (b.n == 0) { // a tree that matched a layout's folders but holds no images is a wrong root, not a dataset
        err_set("%s: no %s images found for a %s dataset", root, split == SPLIT_TRAIN ? "train" : "test",
                dataset_types[type].name);
        builder_discard(&b);
        dataset_free(ds);
        return NULL;
    }
    if (!ds->layout) ds->layout = strdup(dataset_types[type].name);
    builder_finish(&b);
    return ds;
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_samples; i++) {
        free(ds->samples[i].image_path);
        free(ds->samples[i].mask_path);
        free(ds->samples[i].defect);
    }
    for (int i = 0; i < ds->n_classes; i++) {
        free(ds->classes[i].name);
        free(ds->classes[i].prompt_name);
    }
    free(ds->samples);
    free(ds->classes);
    free(ds->root);
    free(ds->layout);
    free(ds);
}
