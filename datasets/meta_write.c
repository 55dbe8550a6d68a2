// Writes an AnomalyCLIP-compatible meta.json for any dataset the readers can open.
#include "datasets/dataset.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

// path relative to root when it lies under it, else as is.
static const char *relative_to(const char *path, const char *root) {
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    if (!strncmp(path, root, n) && path[n] == '/') return path + n + 1;
    return path;
}

static cJSON *phase_json(const Dataset *ds) {
    cJSON *phase = cJSON_CreateObject();
    if (!ds) return phase;
    for (int c = 0; c < ds->n_classes; c++) {
        cJSON *list = cJSON_AddArrayToObject(phase, ds->classes[c].name);
        for (int i = 0; i < ds->n_samples; i++) {
            const Sample *s = &ds->samples[i];
            if (s->class_index != c) continue;
            cJSON *rec = cJSON_CreateObject();
            cJSON_AddStringToObject(rec, "img_path", relative_to(s->image_path, ds->root));
            cJSON_AddStringToObject(rec, "mask_path", s->mask_path ? relative_to(s->mask_path, ds->root) : "");
            cJSON_AddStringToObject(rec, "cls_name", ds->classes[c].name);
            cJSON_AddStringToObject(rec, "specie_name", s->defect);
            cJSON_AddNumberToObject(rec, "anomaly", s->label);
            cJSON_AddItemToArray(list, rec);
        }
    }
    return phase;
}

int dataset_write_meta(const Dataset *test, const Dataset *train, const char *path) {
    if (!test) return err_set("%s: no test split to write", path);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "train", phase_json(train));
    cJSON_AddItemToObject(doc, "test", phase_json(test));
    int rc = json_write_file(path, doc);
    cJSON_Delete(doc);
    return rc;
}
