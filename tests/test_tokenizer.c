// The CLIP tokenizer: published text -> id vectors, a few hundred random texts against an independent
// Python SimpleTokenizer (tests/ref_tokenizer.py), the Hugging Face file form, the cleaning steps against
// Python's unicodedata / html / str.lower, truncation, and errors.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fsutil.h"
#include "model/text_clean.h"
#include "model/tokenizer.h"

#define FIXTURES "build/fixtures/tokenizer"

static char *vocab_gz_path(void) {
    const char *shared = getenv("KANOCLIP_SHARED");
    char *base = fs_join(shared && *shared ? shared : "../shared", "data/clip");
    char *p = fs_join(base, "bpe_simple_vocab_16e6.txt.gz");
    free(base);
    return p;
}

static Tokenizer *load_real(void) {
    char *p = vocab_gz_path();
    Tokenizer *t = tokenizer_load_bpe_gz(p);
    cr_assert_not_null(t, "loading %s: %s", p, err_msg());
    free(p);
    return t;
}

static void expect_ids(Tokenizer *t, const char *text, int max_len, const int *want, int n_want) {
    int ids[512];
    int n = tokenizer_encode(t, text, ids, max_len);
    cr_assert_eq(n, n_want, "\"%s\": %d ids, expected %d (%s)", text, n, n_want, n < 0 ? err_msg() : "");
    for (int i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "\"%s\": id %d is %d, expected %d", text, i, ids[i], want[i]);
}

#define EXPECT(t, text, ...) do { \
    static const int want_[] = {__VA_ARGS__}; \
    expect_ids(t, text, 512, want_, (int)(sizeof want_ / sizeof want_[0])); } while (0)

// engine-anchors §4: the rows that are OpenAI / Hugging Face behaviour; for the rows marked there as
// divergent, the OpenAI-pattern expectation given beside them.
Test(tokenizer, published_vectors) {
    Tokenizer *t = load_real();
    EXPECT(t, "a photo of a cat", 49406, 320, 1125, 539, 320, 2368, 49407);
    EXPECT(t, "a photo of a dog", 49406, 320, 1125, 539, 320, 1929, 49407);
    EXPECT(t, "", 49406, 49407);
    EXPECT(t, "    \t\n", 49406, 49407);
    EXPECT(t, "    a    photo  of  a cat    ", 49406, 320, 1125, 539, 320, 2368, 49407);
    EXPECT(t, "A pHotO of a CaT", 49406, 320, 1125, 539, 320, 2368, 49407);
    static const int five[] = {49406, 320, 1125, 539, 49407};
    expect_ids(t, "a photo of a cat", 5, five, 5);
    EXPECT(t, "Hello, world!", 49406, 3306, 267, 1002, 256, 49407);
    EXPECT(t, "don't stop", 49406, 847, 713, 1691, 49407);
    EXPECT(t, "A PHOTO of  a Cat!", 49406, 320, 1125, 539, 320, 2368, 256, 49407);
    EXPECT(t, "caf\u00e9 \u00fcber na\u00efve", 49406, 15304, 6522, 1516, 1097, 35689, 563, 49407);
    EXPECT(t, "  spaced   out  ", 49406, 10336, 538, 620, 49407);
    EXPECT(t, "\U0001F600 red car", 49406, 7334, 736, 1615, 49407);
    EXPECT(t, "\U0001F600 \U0001F603 \U0001F604", 49406, 7334, 8520, 7624, 49407);
    EXPECT(t, "你好世界", 49406, 47466, 254, 29290, 121, 19759, 244, 163, 243, 490, 49407);
    EXPECT(t, "A very long sentence that goes on and on and should definitely exceed the normal context length to "
              "see how the tokenizer handles truncation when we have way too many tokens",
           49406, 320, 1070, 1538, 12737, 682, 2635, 525, 537, 525, 537, 1535, 4824, 32521, 518, 5967, 13089, 10130,
           531, 862, 829, 518, 32634, 23895, 22124, 16163, 21367, 827, 649, 720, 923, 1256, 1346, 23562, 49407);
    // ≠ rows: the OpenAI pattern keeps a \p{L} run together and maps literal specials to their ids.
    EXPECT(t, "日本の石灯籠", 49406, 39121, 44353, 21575, 163, 253, 111, 163, 223, 107, 163, 109, 510, 49407);
    EXPECT(t, "<|endoftext|>", 49406, 49407, 49407);
    EXPECT(t, "text with <|startoftext|> in the middle", 49406, 4160, 593, 49406, 530, 518, 3694, 49407);
    // NFC: the decomposed and the precomposed a-tilde tokenize alike (ftfy normalises; engine-anchors §3.6).
    EXPECT(t, "xa\u0303y x\u00e3y", 49406, 87, 19339, 344, 87, 19339, 344, 49407);
    // Digits are single pre-tokens.
    EXPECT(t, "42", 49406, 275, 273, 49407);
    tokenizer_free(t);
}

Test(tokenizer, vocabulary_layout) {
    Tokenizer *t = load_real();
    cr_assert_eq(tokenizer_vocab_size(t), 49408);
    cr_assert_eq(tokenizer_token_id(t, "!"), 0);
    cr_assert_eq(tokenizer_token_id(t, "a"), 64);
    cr_assert_eq(tokenizer_token_id(t, "a</w>"), 320);
    cr_assert_eq(tokenizer_token_id(t, "\u0100"), 188); // byte 0x00
    cr_assert_eq(tokenizer_token_id(t, "<|startoftext|>"), TOKENIZER_SOT);
    cr_assert_eq(tokenizer_token_id(t, "<|endoftext|>"), TOKENIZER_EOT);
    cr_assert_str_eq(tokenizer_token_str(t, 2368), "cat</w>");
    cr_assert_null(tokenizer_token_str(t, 49408));
    int ids[77];
    int n = tokenizer_encode(t, "A Photo of a damaged bottle, 42!", ids, 77);
    char *text = tokenizer_decode(t, ids, n);
    cr_assert_str_eq(text, "a photo of a damaged bottle , 4 2 ! ");
    free(text);
    tokenizer_free(t);
}

static cJSON *load_cases(void) {
    size_t size;
    char *text = fs_read_file(FIXTURES "/cases.json", &size);
    cr_assert_not_null(text, "%s (run `make fixtures`)", err_msg());
    cJSON *root = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(root, "cases.json does not parse");
    return root;
}

static void check_random_texts(Tokenizer *t, const char *what) {
    cJSON *root = load_cases();
    cJSON *cases = cJSON_GetObjectItem(root, "encode");
    int n_cases = cJSON_GetArraySize(cases), total_ids = 0;
    cr_assert_gt(n_cases, 400);
    for (int c = 0; c < n_cases; c++) {
        cJSON *e = cJSON_GetArrayItem(cases, c);
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        cJSON *want = cJSON_GetObjectItem(e, "ids");
        int n = 0;
        int *ids = tokenizer_encode_all(t, text, &n);
        cr_assert_not_null(ids, "%s: case %d: %s", what, c, err_msg());
        cr_assert_eq(n, cJSON_GetArraySize(want), "%s: case %d \"%s\": %d ids, Python %d", what, c, text, n,
                     cJSON_GetArraySize(want));
        for (int i = 0; i < n; i++)
            cr_assert_eq(ids[i], cJSON_GetArrayItem(want, i)->valueint, "%s: case %d \"%s\": id %d: %d vs Python %d",
                         what, c, text, i, ids[i], cJSON_GetArrayItem(want, i)->valueint);
        total_ids += n;
        free(ids);
    }
    cr_assert_gt(total_ids, 5000);
    cJSON_Delete(root);
}

Test(tokenizer, random_texts_match_python_simple_tokenizer) {
    Tokenizer *t = load_real();
    check_random_texts(t, "bpe gz");
    check_random_texts(t, "bpe gz, cached words"); // second pass: every word from the cache
    tokenizer_free(t);
}

// One tokenizer shared by threads (its word cache is locked): the same ids as serially.
Test(tokenizer, threads_share_one_tokenizer) {
    Tokenizer *t = load_real();
    cJSON *root = load_cases();
    cJSON *cases = cJSON_GetObjectItem(root, "encode");
    int n_cases = cJSON_GetArraySize(cases), wrong = 0;
    const char **texts = malloc(sizeof(char *) * n_cases);
    for (int c = 0; c < n_cases; c++) texts[c] = cJSON_GetObjectItem(cJSON_GetArrayItem(cases, c), "text")->valuestring;
#pragma omp parallel for num_threads(4) reduction(+ : wrong) schedule(dynamic)
    for (int r = 0; r < 4 * n_cases; r++) {
        int c = r % n_cases, n = 0;
        int *ids = tokenizer_encode_all(t, texts[c], &n);
        cJSON *want = cJSON_GetObjectItem(cJSON_GetArrayItem(cases, c), "ids");
        if (!ids || n != cJSON_GetArraySize(want)) { wrong++; free(ids); continue; }
        for (int i = 0; i < n; i++) wrong += ids[i] != cJSON_GetArrayItem(want, i)->valueint;
        free(ids);
    }
    cr_assert_eq(wrong, 0, "%d ids differ when encoding from 4 threads", wrong);
    free(texts);
    cJSON_Delete(root);
    tokenizer_free(t);
}

Test(tokenizer, hugging_face_files_give_same_ids) {
    Tokenizer *t = tokenizer_load_dir(FIXTURES "/hf");
    cr_assert_not_null(t, "%s", err_msg());
    cr_assert_eq(tokenizer_vocab_size(t), 49408);
    check_random_texts(t, "vocab.json + merges.txt");
    tokenizer_free(t);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = fs_join(dir, name);
    cr_assert_eq(fs_write_atomic(p, text, strlen(text)), 0, "%s", err_msg());
    free(p);
}

// Hugging Face's toy vocabulary (tests/models/clip/test_tokenization_clip.py::test_full_tokenizer):
// "lower newer" -> lo w er</w> n e w er</w>.
Test(tokenizer, toy_vocabulary_merge_loop) {
    char dir[] = "/tmp/kanoclip-tok-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    write_text(dir, "vocab.json",
               "{\"l\":0,\"o\":1,\"w\":2,\"e\":3,\"r\":4,\"s\":5,\"t\":6,\"i\":7,\"d\":8,\"n\":9,\"lo\":10,\"l</w>\":11,"
               "\"w</w>\":12,\"r</w>\":13,\"t</w>\":14,\"low</w>\":15,\"er</w>\":16,\"lowest</w>\":17,\"newer</w>\":18,"
               "\"wider\":19,\"<unk>\":20,\"<|startoftext|>\":21,\"<|endoftext|>\":22}");
    write_text(dir, "merges.txt", "#version: 0.2\nl o\nlo w</w>\ne r</w>\n");
    Tokenizer *t = tokenizer_load_dir(dir);
    cr_assert_not_null(t, "%s", err_msg());
    int ids[16];
    int n = tokenizer_encode(t, "lower newer", ids, 16);
    static const int want[] = {21, 10, 2, 16, 9, 3, 2, 16, 22};
    cr_assert_eq(n, 9);
    for (int i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "id %d: %d vs %d", i, ids[i], want[i]);
    n = tokenizer_encode(t, "low", ids, 16); // 'lo w</w>' -> 'low</w>'
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[1], 15);
    tokenizer_free(t);
}

Test(tokenizer, truncation_keeps_eot) {
    Tokenizer *t = load_real();
    char text[4000] = "";
    for (int i = 0; i < 120; i++) strcat(text, i % 3 ? "metal " : "screw, ");
    int n_all = 0;
    int *all = tokenizer_encode_all(t, text, &n_all);
    cr_assert_gt(n_all, 77);
    int ids[77];
    int n = tokenizer_encode(t, text, ids, TOKENIZER_CONTEXT);
    cr_assert_eq(n, 77);
    for (int i = 0; i < 76; i++) cr_assert_eq(ids[i], all[i]);
    cr_assert_eq(ids[76], TOKENIZER_EOT);
    cr_assert_eq(tokenizer_encode(t, "a", ids, 1), -1);
    free(all);
    tokenizer_free(t);
}

Test(tokenizer, invalid_utf8_is_an_error) {
    Tokenizer *t = load_real();
    int ids[77];
    cr_assert_eq(tokenizer_encode(t, "caf\xe9 au lait", ids, 77), -1);
    cr_assert(strstr(err_msg(), "UTF-8") && strstr(err_msg(), "offset 3"), "%s", err_msg());
    cr_assert_eq(tokenizer_encode(t, "\xed\xa0\x80", ids, 77), -1);       // a surrogate
    cr_assert_eq(tokenizer_encode(t, "\xc0\xaf", ids, 77), -1);           // overlong '/'
    cr_assert_eq(tokenizer_encode(t, "ok \xf4\x90\x80\x80", ids, 77), -1); // above U+10FFFF
    cr_assert_eq(tokenizer_encode(t, "\xe2\x82", ids, 77), -1);           // truncated
    tokenizer_free(t);
}

Test(tokenizer, load_errors_name_the_file) {
    char dir[] = "/tmp/kanoclip-tok-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_null(tokenizer_load_dir(dir));
    cr_assert(strstr(err_msg(), dir) && strstr(err_msg(), "vocab.json"), "%s", err_msg());
    write_text(dir, "bpe_simple_vocab_16e6.txt.gz", "#version: 0.2\na b\n");
    cr_assert_null(tokenizer_load_dir(dir));
    cr_assert(strstr(err_msg(), "bpe_simple_vocab_16e6.txt.gz"), "%s", err_msg());
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 7}");
    write_text(dir, "merges.txt", "#version: 0.2\n");
    cr_assert_null(tokenizer_load_dir(dir));
    cr_assert(strstr(err_msg(), "vocab.json") && strstr(err_msg(), "\"b\""), "%s", err_msg());
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"<unk>\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}");
    write_text(dir, "merges.txt", "#version: 0.2\na c\n");
    cr_assert_null(tokenizer_load_dir(dir));
    cr_assert(strstr(err_msg(), "merges.txt: line 2") && strstr(err_msg(), "'c'"), "%s", err_msg());
    char *vj = fs_join(dir, "vocab.json");
    cr_assert_null(tokenizer_load(vj));
    cr_assert(strstr(err_msg(), "give the folder"), "%s", err_msg());
    free(vj);
    cr_assert_null(tokenizer_load("/nonexistent/vocab.txt.gz"));
    cr_assert(strstr(err_msg(), "/nonexistent/vocab.txt.gz"), "%s", err_msg());
}

// The cleaning steps, each against the Python function it reproduces, on random code-point strings
// (combining marks in any order, Hangul jamo, Greek capital sigma, entities).
static void expect_cps(const CpBuf *got, const char *want_utf8, const char *what, int c) {
    CpBuf want = {0};
    cr_assert_eq(utf8_decode(want_utf8, strlen(want_utf8), &want), 0);
    cr_assert_eq(got->n, want.n, "%s: case %d: %zu code points, Python %zu", what, c, got->n, want.n);
    for (size_t i = 0; i < want.n; i++)
        cr_assert_eq(got->cp[i], want.cp[i], "%s: case %d: code point %zu: U+%04X, Python U+%04X", what, c, i,
                     got->cp[i], want.cp[i]);
    cpbuf_free(&want);
}

Test(tokenizer, cleaning_steps_match_python) {
    cJSON *root = load_cases();
    cJSON *cases = cJSON_GetObjectItem(root, "clean");
    int n_cases = cJSON_GetArraySize(cases), changed_nfc = 0, changed_lower = 0, changed_html = 0;
    cr_assert_gt(n_cases, 100);
    for (int c = 0; c < n_cases; c++) {
        cJSON *e = cJSON_GetArrayItem(cases, c);
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        CpBuf in = {0}, out = {0};
        cr_assert_eq(utf8_decode(text, strlen(text), &in), 0);
        cr_assert_eq(text_nfc(in.cp, in.n, &out), 0);
        expect_cps(&out, cJSON_GetObjectItem(e, "nfc")->valuestring, "NFC", c);
        changed_nfc += strcmp(text, cJSON_GetObjectItem(e, "nfc")->valuestring) != 0;
        cr_assert_eq(text_html_unescape(in.cp, in.n, &out), 0);
        expect_cps(&out, cJSON_GetObjectItem(e, "unescape")->valuestring, "html.unescape", c);
        changed_html += strcmp(text, cJSON_GetObjectItem(e, "unescape")->valuestring) != 0;
        cr_assert_eq(text_lower(in.cp, in.n, &out), 0);
        expect_cps(&out, cJSON_GetObjectItem(e, "lower")->valuestring, "lower", c);
        changed_lower += strcmp(text, cJSON_GetObjectItem(e, "lower")->valuestring) != 0;
        cpbuf_free(&in);
        cpbuf_free(&out);
    }
    // The cases must exercise each step, not pass through unchanged.
    cr_assert_gt(changed_nfc, 50);
    cr_assert_gt(changed_html, 30);
    cr_assert_gt(changed_lower, 100);
    cJSON_Delete(root);
}

Test(tokenizer, html_unescape_rules) {
    static const struct { const char *in, *out; } cases[] = {
        {"&amp;amp;", "&amp;"}, {"&lt;b&gt;", "<b>"}, {"&ampx", "&x"}, {"&notit;", "\u00acit;"},
        {"&#65;&#x42;&#X43", "ABC"}, {"&#128;", "\u20ac"}, {"&#0;", "\ufffd"}, {"&#xD800;", "\ufffd"},
        {"&#1;x", "x"}, {"&#;", "&#;"}, {"&bogus;", "&bogus;"}, {"a & b", "a & b"}, {"&NotNestedGreaterGreater;", "\u2aa2\u0338"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CpBuf in = {0}, out = {0};
        cr_assert_eq(utf8_decode(cases[i].in, strlen(cases[i].in), &in), 0);
        cr_assert_eq(text_html_unescape(in.cp, in.n, &out), 0);
        expect_cps(&out, cases[i].out, cases[i].in, (int)i);
        cpbuf_free(&in);
        cpbuf_free(&out);
    }
}

// kanoclip tokenize: one line of ids per text (design §5).
#include "harness/cli/commands.h"

Test(tokenizer, command_prints_one_line_per_text, .init = cr_redirect_stdout) {
    char *vocab = vocab_gz_path();
    char *argv[] = {"tokenize", "--model", vocab, "a photo of a cat", "", "Hello, world!", NULL};
    cr_assert_eq(cmd_tokenize(6, argv), 0, "%s", err_msg());
    fflush(stdout);
    cr_assert_stdout_eq_str("49406 320 1125 539 320 2368 49407\n49406 49407\n49406 3306 267 1002 256 49407\n");
    free(vocab);
}

Test(tokenizer, command_context_and_hf_folder, .init = cr_redirect_stdout) {
    char *argv[] = {"tokenize", "--context", "5", "--model", FIXTURES "/hf", "--", "a photo of a cat", NULL};
    cr_assert_eq(cmd_tokenize(7, argv), 0, "%s", err_msg());
    fflush(stdout);
    cr_assert_stdout_eq_str("49406 320 1125 539 49407\n");
}

static void redirect_all(void) {
    cr_redirect_stdout();
    cr_redirect_stderr();
}

Test(tokenizer, command_errors, .init = redirect_all) {
    char *no_model[] = {"tokenize", "x", NULL};
    cr_assert_eq(cmd_tokenize(2, no_model), 2);
    char *bad_context[] = {"tokenize", "--model", FIXTURES "/hf", "--context", "1", "x", NULL};
    cr_assert_eq(cmd_tokenize(6, bad_context), 2);
    char *missing[] = {"tokenize", "--model", "/nonexistent/model", "x", NULL};
    cr_assert_eq(cmd_tokenize(4, missing), 1);
    cr_assert(strstr(err_msg(), "/nonexistent/model"), "%s", err_msg());
    char *bad_text[] = {"tokenize", "--model", FIXTURES "/hf", "ok", "caf\xe9", NULL};
    cr_assert_eq(cmd_tokenize(5, bad_text), 1);
    cr_assert(strstr(err_msg(), "text 2") && strstr(err_msg(), "UTF-8"), "%s", err_msg());
}
