// The chat-completions client against a real HTTP server on the loopback interface (tests/kb_test_server.h):
// success, retries (429 with Retry-After, 503), timeouts (stall, low speed), malformed answers, refused
// connections, a several-MB image body without an Expect stall, and the bound on requests in flight.
#include "tests/kb_test_server.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "harness/kb/kb_client.h"
#include "harness/kb/kb_request.h"
#include "harness/kb/kb_settings.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image_write.h>

// Outcomes collected by the done callback.
typedef struct {
    const char *body;  // the same body for every request
    int n_done;
    int ok[16];
    int attempts[16];
    long http_code[16];
    char content[16][512];
    char error[16][1024];
    char fingerprint[16][64];
} Outcomes;

static int prepare_fixed(void *ctx, int i, char **body, size_t *len) {
    Outcomes *o = ctx;
    *body = strdup(o->body);
    *len = strlen(*body);
    return 0;
}

static void record(void *ctx, int i, const KbCallResult *r) {
    Outcomes *o = ctx;
    o->n_done++;
    o->ok[i] = r->ok;
    o->attempts[i] = r->attempts;
    o->http_code[i] = r->http_code;
    if (r->content) snprintf(o->content[i], sizeof o->content[i], "%s", r->content);
    if (r->error) snprintf(o->error[i], sizeof o->error[i], "%s", r->error);
    if (r->system_fingerprint) snprintf(o->fingerprint[i], sizeof o->fingerprint[i], "%s", r->system_fingerprint);
}

static char url[128];

static KbClientOptions options(const KbServer *s) {
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", s->port);
    KbClientOptions o = {.url = url, .api_key = "sk-loopback-test", .concurrency = 2, .connect_timeout_s = 2,
                         .low_speed_limit_bps = 1, .low_speed_time_s = 5, .timeout_s = 5, .max_retries = 3,
                         .backoff_initial_s = 0.05, .backoff_max_s = 2};
    return o;
}

static const char *body = "{\"model\":\"m\",\"temperature\":0,\"top_p\":1,\"seed\":1,\"max_tokens\":8,\"messages\":[]}";

static void setup(void) {
    // The loopback server must be reached directly, whatever the environment says about proxies.
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
}

TestSuite(kb_client, .init = setup, .timeout = 20);

Test(kb_client, success_reads_content_and_sends_key_and_sampling) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.default_content = "1. A crack.\n2. A stain.";
    KbSettings st;
    kb_settings_defaults(&st);
    KbQuestion q;
    cr_assert_eq(kb_question_llm(&st, "bottle", "bottle", &q), 0);
    char *b;
    size_t n;
    cr_assert_eq(kb_question_body(&st, &q, &b, &n), 0);
    Outcomes o = {.body = b};
    KbClientOptions opt = options(&s);
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 0);
    cr_assert_eq(o.n_done, 1);
    cr_assert(o.ok[0], "%s", o.error[0]);
    cr_assert_str_eq(o.content[0], "1. A crack.\n2. A stain.");
    cr_assert_str_eq(o.fingerprint[0], "fp_loopback");
    cr_assert_eq(kbs_requests(&s), 1);
    cr_assert_str_eq(s.last_path, "/v1/chat/completions");
    cr_assert_str_eq(s.last_auth, "Bearer sk-loopback-test");
    // Sampling parameters always go out (server defaults differ), with the model and the question.
    for (const char *k = "temperature\0top_p\0seed\0max_tokens\0model\0messages\0"; *k; k += strlen(k) + 1) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"%s\":", k);
        cr_assert(strstr(s.last_body, needle), "request lacks %s: %s", k, s.last_body);
    }
    cr_assert(strstr(s.last_body, "Describe what an abnormal image of bottle looks like?"));
    free(b);
    kb_question_free(&q);
    kb_settings_free(&st);
    kbs_stop(&s);
}

Test(kb_client, honours_retry_after_on_429) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.script[0] = (KbsReply){.status = 429, .retry_after = 1};
    s.n_script = 1;
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 0);
    cr_assert(o.ok[0], "%s", o.error[0]);
    cr_assert_eq(o.attempts[0], 2);
    cr_assert_eq(kbs_requests(&s), 2);
    // The backoff alone would have waited ~0.05 s; Retry-After asked for 1 s.
    double gap = s.request_time[1] - s.request_time[0];
    cr_assert(gap >= 0.95 && gap < 1.8, "gap between tries %.3f s, expected about 1 s", gap);
    kbs_stop(&s);
}

Test(kb_client, retries_503_then_succeeds) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.script[0] = (KbsReply){.status = 503};
    s.script[1] = (KbsReply){.status = 503};
    s.n_script = 2;
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 0);
    cr_assert(o.ok[0], "%s", o.error[0]);
    cr_assert_eq(o.attempts[0], 3);
    cr_assert_eq(kbs_requests(&s), 3);
    // Exponential: the second wait (0.1 s step, at least half of it) is not shorter than half the first step.
    double g1 = s.request_time[1] - s.request_time[0], g2 = s.request_time[2] - s.request_time[1];
    cr_assert(g1 >= 0.025 && g2 >= 0.05, "waits %.3f then %.3f s", g1, g2);
    kbs_stop(&s);
}

Test(kb_client, gives_up_after_max_retries_with_the_error_body) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.status = 503};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.max_retries = 2;
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    cr_assert_not(o.ok[0]);
    cr_assert_eq(kbs_requests(&s), 3);
    cr_assert(strstr(o.error[0], "HTTP 503"), "%s", o.error[0]);
    cr_assert(strstr(o.error[0], "the loopback server says no"), "%s", o.error[0]);
    cr_assert(strstr(o.error[0], "after 3 attempts"), "%s", o.error[0]);
    cr_assert(strstr(o.error[0], "127.0.0.1"), "%s", o.error[0]);
    kbs_stop(&s);
}

Test(kb_client, client_error_is_not_retried) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.status = 400, .raw_body = "{\"error\":{\"message\":\"model 'x' not found\"}}"};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    cr_assert_eq(kbs_requests(&s), 1);
    cr_assert_eq(o.http_code[0], 400);
    cr_assert(strstr(o.error[0], "HTTP 400: model 'x' not found"), "%s", o.error[0]);
    kbs_stop(&s);
}

Test(kb_client, stalled_response_hits_the_timeout) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.stall = 1};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.timeout_s = 0.3;
    opt.max_retries = 1;
    double t0 = kbs_now();
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    double took = kbs_now() - t0;
    cr_assert(strstr(o.error[0], "timed out"), "%s", o.error[0]);
    cr_assert_eq(kbs_requests(&s), 2, "a timeout is transient: one retry");
    cr_assert(took >= 0.6 && took < 2.0, "took %.2f s", took);
    kbs_stop(&s);
}

Test(kb_client, low_speed_limit_aborts_a_silent_server) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.stall = 1};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.timeout_s = 0;  // no total cap: only the low-speed rule can end it
    opt.low_speed_limit_bps = 1000;  // above the request bytes averaged over curl's speed window
    opt.low_speed_time_s = 1;
    opt.max_retries = 0;
    double t0 = kbs_now();
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    double took = kbs_now() - t0;
    cr_assert(strstr(o.error[0], "timed out"), "%s", o.error[0]);
    cr_assert(took >= 0.9 && took < 3.0, "took %.2f s", took);
    kbs_stop(&s);
}

Test(kb_client, malformed_json_and_missing_choices_are_clear_errors) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.script[0] = (KbsReply){.raw_body = "{\"choices\": [ {\"message\": "};
    s.script[1] = (KbsReply){.raw_body = "{\"id\": \"x\", \"object\": \"chat.completion\"}"};
    s.script[2] = (KbsReply){.raw_body = "{\"choices\": [{\"message\": {\"role\": \"assistant\"}, \"finish_reason\": \"length\"}]}"};
    s.n_script = 3;
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.concurrency = 1;  // request i meets script entry i
    cr_assert_eq(kb_client_run(&opt, 3, prepare_fixed, record, &o), 3);
    cr_assert_eq(kbs_requests(&s), 3, "bad answers are not retried");
    cr_assert(strstr(o.error[0], "bad JSON in the response"), "%s", o.error[0]);
    cr_assert(strstr(o.error[1], "has no choices"), "%s", o.error[1]);
    cr_assert(strstr(o.error[2], "content is missing") && strstr(o.error[2], "length"), "%s", o.error[2]);
    kbs_stop(&s);
}

// A misbehaving server's bytes are quoted escaped: terminal escape sequences (ESC, 8-bit CSI), BEL, DEL and
// malformed UTF-8 as \xNN, newlines as \n; well-formed UTF-8 text stays readable.
Test(kb_client, server_bytes_are_escaped_in_errors) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.script[0] = (KbsReply){.status = 400, .raw_body = "\x1b]0;owned\x07\x1b[2J caf\xc3\xa9 \xc2\x9b\x7f\xff\nend"};
    s.script[1] = (KbsReply){.raw_body = "{\"choices\": [{\"message\": {}, \"finish_reason\": \"\\u001b[31mstop\"}]}"};
    s.n_script = 2;
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.concurrency = 1;
    cr_assert_eq(kb_client_run(&opt, 2, prepare_fixed, record, &o), 2);
    for (int i = 0; i < 2; i++) {
        const unsigned char *e = (const unsigned char *)o.error[i];
        cr_assert_not_null(e);
        for (const unsigned char *p = e; *p; p++)
            cr_assert(*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) && *p != 0xff,
                      "raw byte 0x%02x at %zu in: %s", *p, (size_t)(p - e), (const char *)e);
    }
    cr_assert(strstr(o.error[0], "\\x1b]0;owned\\x07\\x1b[2J caf\xc3\xa9 \\xc2\\x9b\\x7f\\xff\\nend"), "%s", o.error[0]);
    cr_assert(strstr(o.error[1], "finish_reason \\x1b[31mstop"), "%s", o.error[1]);
    kbs_stop(&s);
}

Test(kb_client, refused_connection_says_so) {
    int port = kbs_closed_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    KbClientOptions opt = {.url = url, .concurrency = 1, .connect_timeout_s = 2, .timeout_s = 2, .max_retries = 3,
                           .backoff_initial_s = 0.05, .backoff_max_s = 1};
    Outcomes o = {.body = body};
    double t0 = kbs_now();
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    cr_assert(kbs_now() - t0 < 1.0, "a refused connection is not retried");
    cr_assert(strstr(o.error[0], "cannot connect"), "%s", o.error[0]);
    cr_assert(strstr(o.error[0], "is the server running?"), "%s", o.error[0]);
    char port_text[16];
    snprintf(port_text, sizeof port_text, ":%d", port);
    cr_assert(strstr(o.error[0], port_text), "%s", o.error[0]);
}

// A noise image (incompressible) of several MB, sent as a base64 data URL.
Test(kb_client, large_image_body_has_no_expect_stall) {
    char dir[] = "/tmp/kanoclip-kb-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/noise.png", dir);
    int w = 1400, h = 1000;
    unsigned char *px = malloc((size_t)w * h * 3);
    unsigned int r = 12345;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) px[i] = (unsigned char)(rand_r(&r) >> 7);
    stbi_write_png_compression_level = 1;
    cr_assert(stbi_write_png(path, w, h, 3, px, w * 3));
    free(px);

    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    KbSettings st;
    kb_settings_defaults(&st);
    KbQuestion q;
    cr_assert_eq(kb_question_vqa(&st, "bottle", "bottle", path, "noise.png", &q), 0, "%s", err_msg());
    char *b;
    size_t n;
    cr_assert_eq(kb_question_body(&st, &q, &b, &n), 0, "%s", err_msg());
    cr_assert(n > 4000000, "body only %zu bytes", n);
    Outcomes o = {.body = b};
    KbClientOptions opt = options(&s);
    double t0 = kbs_now();
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 0, "%s", o.error[0]);
    double took = kbs_now() - t0;
    cr_assert_not(s.saw_expect, "the client sent an Expect header");
    cr_assert_eq(s.max_body, n, "server got %zu of %zu bytes", s.max_body, n);
    cr_assert(strstr(s.last_body, "\"url\":\"data:image/png;base64,iVBORw0KGgo"), "no PNG data URL in the body");
    // libcurl's Expect wait is 1 s; the whole exchange on loopback takes a fraction of that.
    cr_assert(took < 0.9, "took %.2f s", took);
    free(b);
    kb_question_free(&q);
    kb_settings_free(&st);
    kbs_stop(&s);
    unlink(path);
    rmdir(dir);
}

Test(kb_client, bounds_requests_in_flight) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.delay_ms = 80};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    opt.concurrency = 3;
    cr_assert_eq(kb_client_run(&opt, 9, prepare_fixed, record, &o), 0);
    cr_assert_eq(o.n_done, 9);
    cr_assert_eq(kbs_requests(&s), 9);
    cr_assert_eq(s.max_in_flight, 3, "max in flight %d, concurrency 3", s.max_in_flight);
    kbs_stop(&s);
}

Test(kb_client, public_url_drops_credentials_and_query) {
    char *u = kb_url_public("https://user:secret@example.org:8443/v1/chat/completions?api-key=abc");
    cr_assert_str_eq(u, "https://example.org:8443/v1/chat/completions");
    free(u);
    u = kb_url_public("http://127.0.0.1:11434/v1");
    cr_assert_str_eq(u, "http://127.0.0.1:11434/v1");
    free(u);
}

Test(kb_client, retry_after_beyond_the_cap_fails_at_once) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.status = 429, .retry_after = 30};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    double t0 = kbs_now();
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    cr_assert(kbs_now() - t0 < 1.0);
    cr_assert_eq(kbs_requests(&s), 1);
    cr_assert(strstr(o.error[0], "HTTP 429") && strstr(o.error[0], "retry after 30 s"), "%s", o.error[0]);
    kbs_stop(&s);
}

Test(kb_client, api_key_echoed_by_the_server_is_redacted) {
    KbServer s;
    cr_assert_eq(kbs_start(&s), 0);
    s.fallback = (KbsReply){.status = 401, .raw_body = "{\"error\":{\"message\":\"invalid key sk-loopback-test\"}}"};
    Outcomes o = {.body = body};
    KbClientOptions opt = options(&s);
    cr_assert_eq(kb_client_run(&opt, 1, prepare_fixed, record, &o), 1);
    cr_assert_str_eq(s.last_auth, "Bearer sk-loopback-test");
    cr_assert(strstr(o.error[0], "HTTP 401: invalid key ***"), "%s", o.error[0]);
    cr_assert_null(strstr(o.error[0], "sk-loopback-test"));
    kbs_stop(&s);
}
