// One question to the endpoint: the per-class LLM question or the per-image VQA question, its request body
// (OpenAI chat-completions JSON, the image as a base64 data URL) and its cache key: the SHA-256 of the
// canonical request, i.e. the same JSON with the image replaced by the SHA-256 of the image file. The key
// holds the model, the messages, every sampling parameter and a format version; never the API key or the URL.
#ifndef HARNESS_KB_REQUEST_H
#define HARNESS_KB_REQUEST_H

#include <stddef.h>

#include "harness/kb/kb_settings.h"

typedef enum { KB_LLM = 0, KB_VQA = 1 } KbKind;

typedef struct {
    KbKind kind;
    char *class_name;     // the class as the dataset names it ("metal_nut", "01")
    char *image_path;     // VQA: the file to send; NULL for LLM
    char *image_rel;      // VQA: the path as recorded (relative to the dataset root); NULL for LLM
    char image_sha256[65];  // VQA: hash of the image file's bytes; "" for LLM
    char *model;
    char *prompt;         // the question, placeholders filled
    char *canonical;      // canonical request JSON (the key's input)
    char key[65];
} KbQuestion;

// The question for a class (class_words: the readable name put into the prompt).
int kb_question_llm(const KbSettings *s, const char *class_name, const char *class_words, KbQuestion *q);
// The question for one anomalous image of a class; reads the image once to hash it.
int kb_question_vqa(const KbSettings *s, const char *class_name, const char *class_words, const char *image_path,
                    const char *image_rel, KbQuestion *q);
void kb_question_free(KbQuestion *q);
// The body to POST (malloc'd): for VQA the image is read again and sent as data:image/png or image/jpeg;
// other formats stb_image decodes (BMP, TGA, GIF, PNM) are re-encoded as PNG first.
int kb_question_body(const KbSettings *s, const KbQuestion *q, char **body, size_t *len);
// The image file as a data URL (malloc'd), for tests and the body above.
char *kb_image_data_url(const char *path);

#endif
