// AnomalyCLIP / April-GAN / AdaCLIP meta.json: {"train": {cls: [record...]}, "test": {...}} with records
// {img_path, mask_path, cls_name, specie_name, anomaly}; AnomalyCLIP's DAGM.py writes "Train"/"Test". Paths are
// relative to the folder of meta.json unless absolute. As in AnomalyCLIP's loader, a normal record's mask is
// ignored and an anomalous record with mask_path "" (or naming a folder) has no mask; a named mask file that is
// missing is an error. --root is the folder holding meta.json, or the json file itself.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/json_file.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static char *resolve(const char *dir, const char *p) { return p[0] == '/' ? strdup(p) : fs_join(dir, p); }

static int read_record(DatasetBuilder *b, const char *json, const char *dir, const char *phase, const char *cls,
                       int idx, const cJSON *rec, int *n_masks) {
    if (!cJSON_IsObject(rec)) return err_set("%s: %s.%s[%d]: not an object", json, phase, cls, idx);
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(rec, "img_path");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(rec, "mask_path");
    const cJSON *specie = cJSON_GetObjectItemCaseSensitive(rec, "specie_name");
    const cJSON *anomaly = cJSON_GetObjectItemCaseSensitive(rec, "anomaly");
    if (!cJSON_IsString(img) || !img->valuestring[0])
        return err_set("%s: %s.%s[%d].img_path: missing or not a string", json, phase, cls, idx);
    if (mask && !cJSON_IsString(mask) && !cJSON_IsNull(mask))
        return err_set("%s: %s.%s[%d].mask_path: not a string", json, phase, cls, idx);
    int label;
    if (cJSON_IsBool(anomaly)) label = cJSON_IsTrue(anomaly);
    else if (cJSON_IsNumber(anomaly) && (anomaly->valuedouble == 0 || anomaly->valuedouble == 1))
        label = (int)anomaly->valuedouble;
    else return err_set("%s: %s.%s[%d].anomaly: missing or not 0/1", json, phase, cls, idx);
    char *img_path = resolve(dir, img->valuestring);
    if (!fs_exists(img_path)) {
        int rc = err_set("%s: %s.%s[%d].img_path: %s not found", json, phase, cls, idx, img_path);
        free(img_path);
        return rc;
    }
    char *mask_path = NULL;
    if (label && cJSON_IsString(mask) && mask->valuestring[0]) {
        mask_path = resolve(dir, mask->valuestring);
        if (fs_is_dir(mask_path)) { free(mask_path); mask_path = NULL; }
        else if (!fs_exists(mask_path)) {
            int rc = err_set("%s: %s.%s[%d].mask_path: %s not found", json, phase, cls, idx, mask_path);
            free(mask_path);
            free(img_path);
            return rc;
        }
    }
    *n_masks += mask_path != NULL;
    builder_add(b, cls, NULL, img_path, mask_path, cJSON_IsString(specie) ? specie->valuestring : "", label);
    free(img_path);
    free(mask_path);
    return 0;
}

int read_meta(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    char *json = fs_is_dir(root) ? fs_join(root, "meta.json") : strdup(root);
    char *dir;
    if (fs_is_dir(root)) dir = strdup(root);
    else { // the folder of the json file
        dir = strdup(root);
        char *slash = strrchr(dir, '/');
        if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
        else strcpy(dir, ".");
        free(b->ds->root);
        b->ds->root = strdup(dir);
    }
    cJSON *doc = json_read_object(json);
    if (!doc) { free(json); free(dir); return -1; }
    int rc = 0;
    { // the split's phase: {class: [records]}
        const char *names[2][2] = {{"test", "Test"}, {"train", "Train"}};
        const char *const *pn = names[split == SPLIT_TRAIN];
        const cJSON *phase = cJSON_GetObjectItemCaseSensitive(doc, pn[0]);
        const char *phase_name = pn[0];
        if (!phase) { phase = cJSON_GetObjectItemCaseSensitive(doc, pn[1]); phase_name = pn[1]; }
        if (!phase) rc = err_set("%s: no \"%s\" key", json, pn[0]);
        else if (!cJSON_IsObject(phase)) rc = err_set("%s: \"%s\" is not an object of classes", json, phase_name);
        int n_masks = 0;
        for (const cJSON *cls = phase ? phase->child : NULL; cls && rc == 0; cls = cls->next) {
            if (!cJSON_IsArray(cls)) { rc = err_set("%s: %s.%s: not a list", json, phase_name, cls->string); break; }
            int idx = 0;
            for (const cJSON *rec = cls->child; rec && rc == 0; rec = rec->next, idx++)
                rc = read_record(b, json, dir, phase_name, cls->string, idx, rec, &n_masks);
        }
        b->ds->image_level_only = n_masks == 0;
    }
    cJSON_Delete(doc);
    free(json);
    free(dir);
    return rc;
}
