// JSON files: read one object with an error line naming the file (and where the syntax breaks), write one
// atomically with a final newline.
#ifndef COMMON_JSON_FILE_H
#define COMMON_JSON_FILE_H

#include <cjson/cJSON.h>

// Parses the file at path as a JSON object; NULL with err_set() naming the path (and the line of a syntax
// error) when it cannot be read, is not JSON, or holds something other than an object.
cJSON *json_read_object(const char *path);
// Writes doc, indented, with a final newline, atomically (fs_write_atomic); -1 with err_set() on failure.
int json_write_file(const char *path, const cJSON *doc);

#endif
