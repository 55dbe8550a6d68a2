#include "harness/kb/kb_request.h"
#include "harness/kb/kb_text.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

// stb_image compiled into this file only (static), for the rare image that must be re-encoded as PNG; its
// unused static functions are expected.
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

// Bumped when the request layout changes, so that old cache entries are never read as new ones.
#define KB_REQUEST_FORMAT 1

// The request JSON for q with image_url standing for the image (a data URL to send, "sha256:<hex>" to hash).
static cJSON *request_json(const KbSettings *s, const KbQuestion *q, const char *image_url, int canonical) {
    cJSON *root = cJSON_CreateObject();
    if (canonical) cJSON_AddNumberToObject(root, "kanoclip_kb_format", KB_REQUEST_FORMAT);
    cJSON_AddStringToObject(root, "model", q->model);
    cJSON_AddNumberToObject(root, "temperature", s->temperature);
    cJSON_AddNumberToObject(root, "top_p", s->top_p);
    cJSON_AddNumberToObject(root, "seed", (double)s->seed);
    cJSON_AddNumberToObject(root, "max_tokens", (double)s->max_tokens);
    cJSON_AddBoolToObject(root, "stream", 0);
    cJSON *messages = cJSON_AddArrayToObject(root, "messages");
    if (s->system_prompt[0]) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", s->system_prompt);
        cJSON_AddItemToArray(messages, m);
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    if (q->kind == KB_LLM) {
        cJSON_AddStringToObject(m, "content", q->prompt);
    } else {
        cJSON *parts = cJSON_AddArrayToObject(m, "content");
        cJSON *text = cJSON_CreateObject();
        cJSON_AddStringToObject(text, "type", "text");
        cJSON_AddStringToObject(text, "text", q->prompt);
        cJSON_AddItemToArray(parts, text);
        cJSON *img = cJSON_CreateObject();
        cJSON_AddStringToObject(img, "type", "image_url");
        cJSON *u = cJSON_AddObjectToObject(img, "image_url");
        cJSON_AddStringToObject(u, "url", image_url);
        cJSON_AddItemToArray(parts, img);
    }
    cJSON_AddItemToArray(messages, m);
    return root;
}

static int finish_question(const KbSettings *s, KbQuestion *q) {
    char url[80];
    snprintf(url, sizeof url, "sha256:%s", q->image_sha256);
    cJSON *j = request_json(s, q, url, 1);
    q->canonical = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    sha256_hex(q->canonical, strlen(q->canonical), q->key);
    return 0;
}

int kb_question_llm(const KbSettings *s, const char *class_name, const char *class_words, KbQuestion *q) {
    memset(q, 0, sizeof *q);
    q->kind = KB_LLM;
    q->class_name = strdup(class_name);
    q->model = strdup(s->model);
    q->prompt = kb_prompt_fill(s->llm_prompt, class_words, s->llm_n);
    return finish_question(s, q);
}

int kb_question_vqa(const KbSettings *s, const char *class_name, const char *class_words, const char *image_path,
                    const char *image_rel, KbQuestion *q) {
    memset(q, 0, sizeof *q);
    q->kind = KB_VQA;
    q->class_name = strdup(class_name);
    q->image_path = strdup(image_path);
    q->image_rel = strdup(image_rel);
    q->model = strdup(kb_settings_vqa_model(s));
    q->prompt = kb_prompt_fill(s->vqa_prompt, class_words, s->vqa_m);
    if (sha256_file_hex(image_path, q->image_sha256) != 0) { kb_question_free(q); return -1; }
    return finish_question(s, q);
}

void kb_question_free(KbQuestion *q) {
    free(q->class_name);
    free(q->image_path);
    free(q->image_rel);
    free(q->model);
    free(q->prompt);
    free(q->canonical);
    memset(q, 0, sizeof *q);
}

static void png_to_buf(void *ctx, void *data, int size) {
    unsigned char **bufs = ctx;  // bufs[0]: data, bufs[1]: (size_t*) length
    size_t *len = (size_t *)bufs[1];
    bufs[0] = realloc(bufs[0], *len + size);
    memcpy(bufs[0] + *len, data, size);
    *len += size;
}

char *kb_image_data_url(const char *path) {
    size_t n = 0;
    char *bytes = fs_read_file(path, &n);
    if (!bytes) return NULL;
    const unsigned char *u = (const unsigned char *)bytes;
    const char *mime = NULL;
    unsigned char *data = (unsigned char *)bytes;
    size_t len = n;
    unsigned char *converted = NULL;
    if (n >= 8 && !memcmp(u, "\x89PNG\r\n\x1a\n", 8)) mime = "image/png";
    else if (n >= 3 && u[0] == 0xFF && u[1] == 0xD8 && u[2] == 0xFF) mime = "image/jpeg";
    else {
        // Chat servers take PNG and JPEG (Ollama: jpeg, png, webp); BMP (BTAD) and the like are re-encoded.
        int w, h, c;
        unsigned char *px = stbi_load_from_memory(u, (int)n, &w, &h, &c, 0);
        if (!px) {
            free(bytes);
            err_set("%s: not a PNG or JPEG, and not decodable (%s)", path, stbi_failure_reason());
            return NULL;
        }
        size_t clen = 0;
        unsigned char *bufs[2] = {NULL, (unsigned char *)&clen};
        int ok = stbi_write_png_to_func(png_to_buf, bufs, w, h, c, px, w * c);
        stbi_image_free(px);
        if (!ok) { free(bytes); free(bufs[0]); err_set("%s: re-encoding as PNG failed", path); return NULL; }
        converted = bufs[0];
        data = converted;
        len = clen;
        mime = "image/png";
    }
    const char *prefix_fmt = "data:%s;base64,";
    size_t prefix = strlen("data:;base64,") + strlen(mime);
    size_t b64 = 4 * ((len + 2) / 3);
    char *url = malloc(prefix + b64 + 1);
    snprintf(url, prefix + 1, prefix_fmt, mime);
    EVP_EncodeBlock((unsigned char *)url + prefix, data, (int)len);
    url[prefix + b64] = '\0';
    free(converted);
    free(bytes);
    return url;
}

int kb_question_body(const KbSettings *s, const KbQuestion *q, char **body, size_t *len) {
    char *url = NULL;
    if (q->kind == KB_VQA) {
        url = kb_image_data_url(q->image_path);
        if (!url) return -1;
    }
    cJSON *j = request_json(s, q, url, 0);
    *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(url);
    if (!*body) return err_set("%s: building the request failed (out of memory?)", q->image_path ? q->image_path : q->class_name);
    *len = strlen(*body);
    return 0;
}
