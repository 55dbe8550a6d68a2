#include "common/json_file.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

cJSON *json_read_object(const char *path) {
    size_t n = 0;
    char *text = fs_read_file(path, &n);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!doc) {
        int line = 1;
        for (const char *p = text; end && p < end && p < text + n; p++) line += *p == '\n';
        err_set("%s:%d: not valid JSON", path, line);
    } else if (!cJSON_IsObject(doc)) {
        err_set("%s: expected a JSON object", path);
        cJSON_Delete(doc);
        doc = NULL;
    }
    free(text);
    return doc;
}

int json_write_file(const char *path, const cJSON *doc) {
    char *text = cJSON_Print(doc);
    if (!text) return err_set("%s: out of memory formatting JSON", path);
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (!line) { free(text); return err_set("%s: out of memory formatting JSON", path); }
    line[len] = '\n';
    line[len + 1] = '\0';
    int rc = fs_write_atomic(path, line, len + 1);
    free(line);
    return rc;
}
