// Knowledge-base text without a network: answer splitting and cleaning, prompt filling, cache keys, image data
// URLs, the shipped description files, the loader's fallbacks and the embedding order, and the defaults file.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <jpeglib.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "harness/config/config.h"
#include "harness/kb/kb_cache.h"
#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_loader.h"
#include "harness/kb/kb_request.h"
#include "harness/kb/kb_settings.h"
#include "harness/kb/kb_shipped.h"
#include "harness/kb/kb_text.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

static char **split(const char *text, int max, int *n) {
    char **items = NULL;
    *n = kb_split_answer(text, max, &items);
    return items;
}

Test(kb_text, splits_numbered_list_and_cleans_items) {
    const char *answer =
        "Sure! Here are five descriptions of an abnormal bottle:\n"
        "\n"
        "1. \"A thin dark crack across the neck.\"\n"
        "2) **A brown stain** near the   centre.\r\n"
        "- A small round hole at the rim.\n"
        "  *  “A bent, misshapen base on the left side.”\n"
        "(5) Scratches along the lower rim.\n"
        "6. An extra line beyond the five asked for.\n";
    int n;
    char **d = split(answer, 5, &n);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(d[0], "A thin dark crack across the neck.");
    cr_assert_str_eq(d[1], "A brown stain near the centre.");
    cr_assert_str_eq(d[2], "A small round hole at the rim.");
    cr_assert_str_eq(d[3], "A bent, misshapen base on the left side.");
    cr_assert_str_eq(d[4], "Scratches along the lower rim.");
    kb_free_strings(d, n);
}

Test(kb_text, keeps_numbers_that_are_not_list_markers_and_inner_quotes) {
    int n;
    char **d = split("1.5 mm scratch near the \"logo\" area\n3 small dents on the cap", 5, &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(d[0], "1.5 mm scratch near the \"logo\" area");
    cr_assert_str_eq(d[1], "3 small dents on the cap");
    kb_free_strings(d, n);
}

Test(kb_text, single_paragraph_is_split_into_sentences) {
    int n;
    char **d = split("A crack on the rim. A dark stain at the bottom! Is there a hole? Yes, a 2 mm hole.", 5, &n);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(d[0], "A crack on the rim.");
    cr_assert_str_eq(d[1], "A dark stain at the bottom!");
    cr_assert_str_eq(d[3], "Yes, a 2 mm hole.");
    kb_free_strings(d, n);
}

Test(kb_text, vqa_answer_over_several_lines_stays_one_description) {
    int n;
    char **d = split("Location: top left corner\nColour: dark brown\nShape: elongated\nSize: small.", 1, &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(d[0], "Location: top left corner; Colour: dark brown; Shape: elongated; Size: small.");
    kb_free_strings(d, n);
    d = split("   \n\n", 1, &n);
    cr_assert_eq(n, 0);
    kb_free_strings(d, n);
}

Test(kb_text, prompt_fill_and_class_words) {
    char *p = kb_prompt_fill("Describe {class}? Give {n}; {class}.", "metal nut", 5);
    cr_assert_str_eq(p, "Describe metal nut? Give 5; metal nut.");
    free(p);
    char *w = kb_class_words("pipe_fryum");
    cr_assert_str_eq(w, "pipe fryum");
    free(w);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

// Removes a temporary test folder and everything in it.
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

// A JPEG through libjpeg (stb's writer trips UBSan's shift check).
static int write_jpeg(const char *path, const unsigned char *px, int w, int h) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    return 1;
}

// Writes a w x h RGB image with a seeded pattern in the given format ("png", "bmp", "jpg").
static void write_image(const char *path, const char *fmt, int w, int h, unsigned seed) {
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (unsigned char)(rand_r(&seed) & 0xff);
    int ok = !strcmp(fmt, "png") ? stbi_write_png(path, w, h, 3, px, w * 3)
           : !strcmp(fmt, "bmp") ? stbi_write_bmp(path, w, h, 3, px)
                                 : write_jpeg(path, px, w, h);
    cr_assert(ok, "writing %s", path);
    free(px);
}

static char *tmpdir(void) {
    char *d = strdup("/tmp/kanoclip-kbtext-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

Test(kb_request, key_follows_model_prompt_params_and_image_only) {
    char *dir = tmpdir();
    char *a = fs_join(dir, "a.png"), *b = fs_join(dir, "b.png");
    write_image(a, "png", 8, 8, 1);
    write_image(b, "png", 8, 8, 2);
    KbSettings s;
    kb_settings_defaults(&s);
    KbQuestion q0, q;
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", a, "bottle/a.png", &q0), 0, "%s", err_msg());
    cr_assert_eq(strlen(q0.key), 64);
    cr_assert_null(strstr(q0.canonical, "base64"), "the canonical request holds the image hash, not the image");
    cr_assert(strstr(q0.canonical, q0.image_sha256));

    // Same question, another URL, key variable and image path: same key.
    kb_settings_set(&s.base_url, "http://other-host:9999/v1");
    kb_settings_set(&s.api_key_env, "SOME_OTHER_VAR");
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", a, "elsewhere/a.png", &q), 0);
    cr_assert_str_eq(q.key, q0.key);
    kb_question_free(&q);
    // Each of these changes the key.
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", b, "bottle/a.png", &q), 0);
    cr_assert_str_neq(q.key, q0.key, "image content");
    kb_question_free(&q);
    s.seed = 7;
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", a, "bottle/a.png", &q), 0);
    cr_assert_str_neq(q.key, q0.key, "seed");
    kb_question_free(&q);
    s.seed = 1234;
    s.temperature = 0.5;
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", a, "bottle/a.png", &q), 0);
    cr_assert_str_neq(q.key, q0.key, "temperature");
    kb_question_free(&q);
    s.temperature = 0;
    kb_settings_set(&s.vqa_model, "another-model");
    cr_assert_eq(kb_question_vqa(&s, "bottle", "bottle", a, "bottle/a.png", &q), 0);
    cr_assert_str_neq(q.key, q0.key, "model");
    kb_question_free(&q);
    kb_settings_set(&s.vqa_model, "");
    cr_assert_eq(kb_question_vqa(&s, "bottle", "glass bottle", a, "bottle/a.png", &q), 0);
    cr_assert_str_neq(q.key, q0.key, "prompt");
    kb_question_free(&q);
    kb_question_free(&q0);
    kb_settings_free(&s);
    unlink(a), unlink(b), rmdir(dir);
    free(a), free(b), free(dir);
}

// Decodes the base64 payload of a data URL and returns the bytes (malloc'd).
static unsigned char *data_url_bytes(const char *url, size_t *n) {
    const char *p = strstr(url, ";base64,");
    cr_assert_not_null(p);
    p += 8;
    size_t len = strlen(p);
    unsigned char *out = malloc(len);
    int k = EVP_DecodeBlock(out, (const unsigned char *)p, (int)len);
    cr_assert(k > 0);
    while (len > 0 && p[len - 1] == '=') len--, k--;
    *n = (size_t)k;
    return out;
}

Test(kb_request, image_data_urls_by_content_not_extension) {
    char *dir = tmpdir();
    char *png = fs_join(dir, "x.png"), *jpg = fs_join(dir, "x.JPG"), *bmp = fs_join(dir, "x.bmp"),
         *fake = fs_join(dir, "fake.png");
    write_image(png, "png", 16, 12, 3);
    write_image(jpg, "jpg", 16, 12, 3);
    write_image(bmp, "bmp", 16, 12, 3);
    fs_write_atomic(fake, "not an image at all", 19);

    char *u = kb_image_data_url(png);
    cr_assert(!strncmp(u, "data:image/png;base64,", 22), "%.40s", u);
    size_t n, m;
    unsigned char *bytes = data_url_bytes(u, &n);
    char *orig = fs_read_file(png, &m);
    cr_assert_eq(n, m);
    cr_assert(!memcmp(bytes, orig, n), "PNG is sent byte for byte");
    free(bytes), free(orig), free(u);

    u = kb_image_data_url(jpg);
    cr_assert(!strncmp(u, "data:image/jpeg;base64,", 23), "%.40s", u);
    free(u);

    // BMP (BTAD) becomes PNG with the same pixels.
    u = kb_image_data_url(bmp);
    cr_assert(!strncmp(u, "data:image/png;base64,", 22), "%.40s", u);
    bytes = data_url_bytes(u, &n);
    int w, h, c, w2, h2, c2;
    unsigned char *a = stbi_load_from_memory(bytes, (int)n, &w, &h, &c, 3);
    unsigned char *b = stbi_load(bmp, &w2, &h2, &c2, 3);
    cr_assert(a && b);
    cr_assert(w == 16 && h == 12 && w2 == 16 && h2 == 12);
    cr_assert(!memcmp(a, b, 16 * 12 * 3), "pixels survive the re-encoding");
    stbi_image_free(a), stbi_image_free(b), free(bytes), free(u);

    cr_assert_null(kb_image_data_url(fake));
    cr_assert(strstr(err_msg(), "fake.png") && strstr(err_msg(), "not a PNG or JPEG"), "%s", err_msg());
    unlink(png), unlink(jpg), unlink(bmp), unlink(fake), rmdir(dir);
    free(png), free(jpg), free(bmp), free(fake), free(dir);
}

// The class counts of the 12 datasets (docs/reference/datasets.md, summary table).
static const struct { const char *type; int classes; } shipped_datasets[] = {
    {"mvtec", 15}, {"visa", 12}, {"mpdd", 6}, {"btad", 3}, {"sdd", 1}, {"dagm", 10}, {"brainmri", 1},
    {"liverct", 1}, {"resc", 1}, {"br35h", 1}, {"covid19", 1}, {"headct", 1}, {"generic", 1},
};

Test(kb_shipped, every_dataset_has_five_labelled_descriptions_per_class) {
    int total = 0;
    for (size_t i = 0; i < sizeof shipped_datasets / sizeof shipped_datasets[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "kb-cache/shipped/%s.jsonl", shipped_datasets[i].type);
        KbShippedEntry *e = NULL;
        int n = kb_shipped_read_file(path, &e);
        cr_assert_eq(n, shipped_datasets[i].classes, "%s: %d classes, expected %d (%s)", path, n,
                     shipped_datasets[i].classes, err_msg());
        for (int k = 0; k < n; k++) {
            cr_assert_str_eq(e[k].dataset, shipped_datasets[i].type, "%s", e[k].where);
            cr_assert_eq(e[k].n, 5, "%s: %d descriptions", e[k].where, e[k].n);
            cr_assert(strstr(e[k].source, "hand-written") && strstr(e[k].source, "not model output"), "%s", e[k].where);
            for (int d = 0; d < e[k].n; d++) {
                // Short enough for CLIP's 77 tokens with room to spare: at most 30 words, no duplicates.
                int words = 1;
                for (const char *p = e[k].descriptions[d]; *p; p++) words += *p == ' ';
                cr_assert(words <= 30, "%s: description %d has %d words", e[k].where, d, words);
                for (int d2 = 0; d2 < d; d2++)
                    cr_assert_str_neq(e[k].descriptions[d], e[k].descriptions[d2], "%s: duplicate", e[k].where);
                char *clean = kb_clean_description(e[k].descriptions[d]);
                cr_assert_str_eq(clean, e[k].descriptions[d], "%s: description %d is not clean", e[k].where, d);
                free(clean);
            }
            total++;
            kb_shipped_entry_free(&e[k]);
        }
        free(e);
    }
    cr_assert_eq(total, 54);
}

Test(kb_shipped, finds_by_class_alias_single_class_and_any_file) {
    KbShippedEntry e;
    cr_assert_eq(kb_shipped_find("kb-cache/shipped", "mvtec", "metal_nut", &e), 1);
    cr_assert_str_eq(e.prompt_name, "metal nut");
    kb_shipped_entry_free(&e);
    cr_assert_eq(kb_shipped_find("kb-cache/shipped", "visa", "chewing gum", &e), 1);
    cr_assert_str_eq(e.class_name, "chewinggum");
    kb_shipped_entry_free(&e);
    // A one-class dataset matches whatever its reader calls the class.
    cr_assert_eq(kb_shipped_find("kb-cache/shipped", "liverct", "Liver_AD_whatever", &e), 1);
    cr_assert_str_eq(e.prompt_name, "liver CT scan");
    kb_shipped_entry_free(&e);
    // No type (a meta.json dataset): any file, by class.
    cr_assert_eq(kb_shipped_find("kb-cache/shipped", "", "pcb3", &e), 1);
    cr_assert_str_eq(e.dataset, "visa");
    kb_shipped_entry_free(&e);
    cr_assert_eq(kb_shipped_find("kb-cache/shipped", "mvtec", "synthetic_widget", &e), 0);
    cr_assert_eq(kb_shipped_generic("kb-cache/shipped", &e), 1);
    cr_assert_str_eq(e.class_name, "object");
    cr_assert_eq(e.n, 5);
    kb_shipped_entry_free(&e);
}

Test(kb_shipped, malformed_line_is_named) {
    char *dir = tmpdir();
    char *p = fs_join(dir, "mvtec.jsonl");
    const char *text = "{\"dataset\":\"mvtec\",\"class\":\"a\",\"descriptions\":[\"x\"],\"source\":\"s\"}\n"
                       "\n"
                       "{\"dataset\":\"mvtec\",\"class\":\"b\",\"descriptions\":[],\"source\":\"s\"}\n";
    fs_write_atomic(p, text, strlen(text));
    KbShippedEntry e;
    cr_assert_eq(kb_shipped_find(dir, "mvtec", "zzz", &e), -1);
    cr_assert(strstr(err_msg(), "mvtec.jsonl:3") && strstr(err_msg(), "descriptions"), "%s", err_msg());
    unlink(p), rmdir(dir);
    free(p), free(dir);
}

// A loader over a temporary answer cache: shipped first, then fetched answers once they are cached.
Test(kb_loader, prefers_fetched_answers_over_shipped_and_orders_for_embedding) {
    char *dir = tmpdir();
    char *imgs = fs_join(dir, "images"), *cls = fs_join(imgs, "bottle/test/broken"), *good = fs_join(imgs, "bottle/test/good");
    cr_assert_eq(fs_mkdirs(cls), 0);
    cr_assert_eq(fs_mkdirs(good), 0);
    char *i0 = fs_join(cls, "000.png"), *i1 = fs_join(cls, "001.png"), *g0 = fs_join(good, "000.png");
    write_image(i0, "png", 8, 8, 10);
    write_image(i1, "png", 8, 8, 11);
    write_image(g0, "png", 8, 8, 12);
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(imgs, "bottle,widget", &d), 0, "%s", err_msg());
    free(d.type);
    d.type = strdup("mvtec");
    cr_assert_eq(d.n_images, 2, "the good image is not anomalous");
    cr_assert_str_eq(d.images[0].rel, "bottle/test/broken/000.png");

    KbSettings s;
    kb_settings_defaults(&s);
    kb_settings_set(&s.cache_dir, dir);
    KbClassTexts *t;
    cr_assert_eq(kb_load_all(&s, &d, &t), 0, "%s", err_msg());
    cr_assert_str_eq(t[0].llm_source, "shipped");
    cr_assert_eq(t[0].n, 5);
    cr_assert_eq(t[0].n_vqa, 0);
    cr_assert_eq(t[0].n_vqa_asked, 2);
    cr_assert_str_eq(t[1].llm_source, "generic", "an unknown class falls back to the generic descriptions");
    for (int c = 0; c < 2; c++) kb_class_texts_free(&t[c]);
    free(t);

    // Cache an LLM answer for bottle and a VQA answer for its second image, as kb build would.
    KbQuestion q;
    char *words = kb_class_prompt_name(s.shipped_dir, "mvtec", "bottle");
    cr_assert_eq(kb_question_llm(&s, "bottle", words, &q), 0);
    char *llm[] = {"Fetched one.", "Fetched two.", "Fetched one."};
    KbCallResult r = {.ok = 1, .content = "1. Fetched one.\n2. Fetched two.\n3. Fetched one."};
    cr_assert_eq(kb_cache_write(&s, &q, &r, llm, 3), 0, "%s", err_msg());
    kb_question_free(&q);
    cr_assert_eq(kb_question_vqa(&s, "bottle", words, i1, "bottle/test/broken/001.png", &q), 0);
    char *vqa[] = {"A dark crack at the top left."};
    r.content = "A dark crack at the top left.";
    cr_assert_eq(kb_cache_write(&s, &q, &r, vqa, 1), 0);
    kb_question_free(&q);
    free(words);

    cr_assert_eq(kb_load_all(&s, &d, &t), 0, "%s", err_msg());
    cr_assert_str_eq(t[0].llm_source, "fetched");
    cr_assert_eq(t[0].n, 4);
    cr_assert_eq(t[0].n_vqa, 1);
    cr_assert_str_eq(t[0].texts[3], "A dark crack at the top left.");
    KbEmbedList list;
    kb_embed_order(t, 2, &list);
    cr_assert_eq(list.n_classes, 2);
    cr_assert_eq(list.class_start[0], 0);
    cr_assert_eq(list.class_start[1], 3, "the duplicate is embedded once");
    cr_assert_str_eq(list.texts[0], "Fetched one.");
    cr_assert_str_eq(list.texts[1], "Fetched two.");
    cr_assert_str_eq(list.texts[2], "A dark crack at the top left.");
    cr_assert_eq(list.class_start[2], 8);
    kb_embed_list_free(&list);
    for (int c = 0; c < 2; c++) kb_class_texts_free(&t[c]);
    free(t);

    // A damaged cache file is an error naming it, not a silent fallback.
    char *answers = fs_join(dir, "answers");
    DIR *ad = opendir(answers);
    free(answers);
    struct dirent *ent;
    char *victim = NULL;
    while ((ent = readdir(ad)))
        if (strstr(ent->d_name, ".json") && !victim) {
            char *a = fs_join(dir, "answers");
            victim = fs_join(a, ent->d_name);
            free(a);
        }
    closedir(ad);
    fs_write_atomic(victim, "{\"key\": 1", 9);
    cr_assert_eq(kb_load_all(&s, &d, &t), -1);
    cr_assert(strstr(err_msg(), victim), "%s", err_msg());
    free(victim);
    kb_settings_free(&s);
    kb_dataset_free(&d);
    remove_tree(dir);
    free(i0), free(i1), free(g0), free(cls), free(good), free(imgs), free(dir);
}

Test(kb_dataset, walk_errors_and_class_order) {
    KbDataset d;
    cr_assert_eq(kb_dataset_walk(NULL, "b,a,,b", &d), 0);
    cr_assert_eq(d.n_classes, 2);
    cr_assert_str_eq(d.classes[0], "b");
    cr_assert_str_eq(d.classes[1], "a");
    kb_dataset_free(&d);
    cr_assert_eq(kb_dataset_walk("/nonexistent/kb-images", NULL, &d), -1);
    cr_assert(strstr(err_msg(), "/nonexistent/kb-images"), "%s", err_msg());
    char *dir = tmpdir();
    char *top = fs_join(dir, "loose.png");
    write_image(top, "png", 4, 4, 5);
    cr_assert_eq(kb_dataset_walk(dir, "a,b", &d), -1);
    cr_assert(strstr(err_msg(), "loose.png"), "%s", err_msg());
    cr_assert_eq(kb_dataset_walk(dir, "only", &d), 0, "%s", err_msg());
    cr_assert_eq(d.n_images, 1);
    cr_assert_str_eq(d.images[0].class_name, "only");
    kb_dataset_free(&d);
    unlink(top), rmdir(dir);
    free(top), free(dir);
}

// The kb: section of experiments/defaults.yaml and kb_settings_defaults must say the same thing.
Test(kb_settings, defaults_file_matches_the_code) {
    FILE *f = fopen("experiments/defaults.yaml", "rb");
    cr_assert_not_null(f);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    yaml_document_t doc;
    cr_assert(yaml_parser_load(&p, &doc), "YAML error: %s", p.problem);
    yaml_node_t *top = yaml_document_get_root_node(&doc), *kb = NULL;
    cr_assert(top && top->type == YAML_MAPPING_NODE);
    for (yaml_node_pair_t *q = top->data.mapping.pairs.start; q < top->data.mapping.pairs.top; q++) {
        yaml_node_t *k = yaml_document_get_node(&doc, q->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, "kb"))
            kb = yaml_document_get_node(&doc, q->value);
    }
    cr_assert(kb && kb->type == YAML_MAPPING_NODE, "defaults.yaml has no kb: section");
    int n_keys = 0;
    KbSettings s;
    kb_settings_defaults(&s);
    for (yaml_node_pair_t *q = kb->data.mapping.pairs.start; q < kb->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, q->key), *vn = yaml_document_get_node(&doc, q->value);
        cr_assert(kn->type == YAML_SCALAR_NODE && vn->type == YAML_SCALAR_NODE);
        const char *key = (const char *)kn->data.scalar.value, *v = (const char *)vn->data.scalar.value;
        n_keys++;
        char got[1024];
        const char *want = NULL;
        if (!strcmp(key, "base_url")) want = s.base_url;
        else if (!strcmp(key, "model")) want = s.model;
        else if (!strcmp(key, "vqa_model")) want = s.vqa_model;
        else if (!strcmp(key, "api_key_env")) want = s.api_key_env;
        else if (!strcmp(key, "system_prompt")) want = s.system_prompt;
        else if (!strcmp(key, "llm_prompt")) want = s.llm_prompt;
        else if (!strcmp(key, "vqa_prompt")) want = s.vqa_prompt;
        else if (!strcmp(key, "cache_dir")) want = s.cache_dir;
        else if (!strcmp(key, "shipped_dir")) want = s.shipped_dir;
        else if (!strcmp(key, "dataset")) want = s.dataset_type;
        else if (!strcmp(key, "dataset_root")) want = s.dataset_root;
        else {
            if (!strcmp(key, "temperature")) snprintf(got, sizeof got, "%.1f", s.temperature);
            else if (!strcmp(key, "top_p")) snprintf(got, sizeof got, "%.1f", s.top_p);
            else if (!strcmp(key, "seed")) snprintf(got, sizeof got, "%ld", s.seed);
            else if (!strcmp(key, "max_tokens")) snprintf(got, sizeof got, "%ld", s.max_tokens);
            else if (!strcmp(key, "llm_n")) snprintf(got, sizeof got, "%d", s.llm_n);
            else if (!strcmp(key, "vqa")) snprintf(got, sizeof got, "%s", s.vqa ? "true" : "false");
            else if (!strcmp(key, "vqa_m")) snprintf(got, sizeof got, "%d", s.vqa_m);
            else if (!strcmp(key, "vqa_max_images_per_class")) snprintf(got, sizeof got, "%d", s.vqa_max_images_per_class);
            else if (!strcmp(key, "concurrency")) snprintf(got, sizeof got, "%d", s.concurrency);
            else if (!strcmp(key, "connect_timeout_s")) snprintf(got, sizeof got, "%.1f", s.connect_timeout_s);
            else if (!strcmp(key, "low_speed_limit_bps")) snprintf(got, sizeof got, "%ld", s.low_speed_limit_bps);
            else if (!strcmp(key, "low_speed_time_s")) snprintf(got, sizeof got, "%.1f", s.low_speed_time_s);
            else if (!strcmp(key, "timeout_s")) snprintf(got, sizeof got, "%.1f", s.timeout_s);
            else if (!strcmp(key, "max_retries")) snprintf(got, sizeof got, "%d", s.max_retries);
            else if (!strcmp(key, "backoff_initial_s")) snprintf(got, sizeof got, "%.1f", s.backoff_initial_s);
            else if (!strcmp(key, "backoff_max_s")) snprintf(got, sizeof got, "%.1f", s.backoff_max_s);
            else if (!strcmp(key, "offline")) snprintf(got, sizeof got, "%s", s.offline ? "true" : "false");
            else if (!strcmp(key, "embed_batch")) snprintf(got, sizeof got, "%d", s.embed_batch);
            else if (!strcmp(key, "require")) snprintf(got, sizeof got, "%s", s.require_fetched ? "fetched" : "any");
            else cr_assert_fail("defaults.yaml: kb.%s is not a setting the code reads", key);
            want = got;
        }
        cr_assert_str_eq(v, want, "kb.%s: file says '%s', code says '%s'", key, v, want);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    fclose(f);
    cr_assert_eq(n_keys, 30, "every KbSettings field has a key");
    cr_assert_eq(kb_settings_check(&s), 0, "%s", err_msg());
    kb_settings_free(&s);
}

Test(kb_settings, range_checks_name_the_key) {
    KbSettings s;
    kb_settings_defaults(&s);
    s.top_p = 1.5;
    cr_assert_eq(kb_settings_check(&s), -1);
    cr_assert(strstr(err_msg(), "kb.top_p"), "%s", err_msg());
    s.top_p = 1;
    s.concurrency = 0;
    cr_assert_eq(kb_settings_check(&s), -1);
    cr_assert(strstr(err_msg(), "kb.concurrency"), "%s", err_msg());
    s.concurrency = 4;
    kb_settings_set(&s.base_url, "ftp://x");
    cr_assert_eq(kb_settings_check(&s), -1);
    cr_assert(strstr(err_msg(), "kb.base_url"), "%s", err_msg());
    kb_settings_free(&s);
}

// Once the config layer is linked in: the kb section of a config reaches KbSettings.
Test(kb_settings, from_config_reads_the_kb_section) {
    char *dir = tmpdir();
    char *p = fs_join(dir, "exp.yaml");
    const char *text = "kb:\n  model: \"from-config\"\n  concurrency: 7\n  vqa: false\n  top_p: 0.5\n";
    fs_write_atomic(p, text, strlen(text));
    Config *cfg = config_load(p, "experiments/defaults.yaml", 0, NULL);
    cr_assert_not_null(cfg, "%s", err_msg());
    KbSettings s;
    kb_settings_defaults(&s);
    cr_assert_eq(kb_settings_from_config(cfg, &s), 0, "%s", err_msg());
    cr_assert_str_eq(s.model, "from-config");
    cr_assert_eq(s.concurrency, 7);
    cr_assert_eq(s.vqa, 0);
    cr_assert_float_eq(s.top_p, 0.5, 1e-12);
    kb_settings_free(&s);
    config_free(cfg);
    unlink(p), rmdir(dir);
    free(p), free(dir);
}

// Which dataset the knowledge base is about when the kb: section does not say: the training dataset
// (data.train.type, with data.train.root or else data.roots.<type>); kb.dataset alone takes data.roots.<kb.dataset>.
Test(kb_settings, dataset_defaults_to_the_training_dataset) {
    char *dir = tmpdir();
    char *p = fs_join(dir, "exp.yaml");
    struct { const char *yaml, *type, *root; } cases[] = {
        {"run:\n  seed: 1\n", "mvtec", "data/mvtec_anomaly_detection"},
        {"data:\n  train:\n    type: visa\n", "visa", "data/visa"},
        {"data:\n  train:\n    type: visa\n    root: /d/visa_pytorch\n", "visa", "/d/visa_pytorch"},
        {"kb:\n  dataset: mpdd\n", "mpdd", "data/mpdd"},
        {"kb:\n  dataset: mpdd\n  dataset_root: /d/m\ndata:\n  train:\n    root: /d/x\n", "mpdd", "/d/m"},
        {"kb:\n  dataset_root: /d/own\n", "mvtec", "/d/own"},
        {"kb:\n  dataset: meta\n", "meta", ""},  // no data.roots.meta: left to --dataset-root
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fs_write_atomic(p, cases[i].yaml, strlen(cases[i].yaml));
        Config *cfg = config_load(p, "experiments/defaults.yaml", 0, NULL);
        cr_assert_not_null(cfg, "case %zu: %s", i, err_msg());
        KbSettings s;
        kb_settings_defaults(&s);
        cr_assert_eq(kb_settings_from_config(cfg, &s), 0, "case %zu: %s", i, err_msg());
        cr_assert_str_eq(s.dataset_type, cases[i].type, "case %zu", i);
        cr_assert_str_eq(s.dataset_root, cases[i].root, "case %zu", i);
        kb_settings_free(&s);
        config_free(cfg);
    }
    // A type error in the kb section names the key.
    const char *bad = "kb:\n  embed_batch: many\n";
    fs_write_atomic(p, bad, strlen(bad));
    Config *cfg = config_load(p, "experiments/defaults.yaml", 0, NULL);
    if (cfg) {
        KbSettings s;
        kb_settings_defaults(&s);
        cr_assert_eq(kb_settings_from_config(cfg, &s), -1);
        kb_settings_free(&s);
        config_free(cfg);
    }
    cr_assert(strstr(err_msg(), "kb.embed_batch"), "%s", err_msg());
    unlink(p), rmdir(dir);
    free(p), free(dir);
}
