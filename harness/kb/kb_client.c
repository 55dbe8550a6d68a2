#define _GNU_SOURCE  // memmem
#include "harness/kb/kb_client.h"
#include "common/error.h"
#include "common/strbuf.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// A response bigger than this is not a chat answer; stop reading instead of growing without bound.
#define KB_MAX_RESPONSE_BYTES (64u << 20)
// Longest excerpt of a response body quoted in an error line.
#define KB_BODY_EXCERPT 300

enum { CALL_PENDING, CALL_WAITING, CALL_RUNNING, CALL_DONE };

typedef struct {
    int state;
    int attempts;
    double first_start;  // monotonic seconds of the first attempt
    double ready_at;     // CALL_WAITING: when the retry may start
    char *body;
    size_t body_len;
    char *last_error;    // the transient error that caused the pending retry
} Call;

typedef struct {
    char *data;
    size_t n, cap;
    int overflow;
} Response;

typedef struct {
    CURL *easy;
    int call;  // index of the call in flight, -1 when free
    Response resp;
    char errbuf[CURL_ERROR_SIZE];
} Slot;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    Response *r = userdata;
    size_t n = size * nmemb;
    if (r->n + n > KB_MAX_RESPONSE_BYTES) { r->overflow = 1; return 0; }
    if (r->n + n + 1 > r->cap) {
        r->cap = (r->n + n + 1) * 2;
        r->data = realloc(r->data, r->cap);
    }
    memcpy(r->data + r->n, ptr, n);
    r->n += n;
    r->data[r->n] = '\0';
    return n;
}

char *kb_url_public(const char *url) {
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', path - host);
    size_t query = strcspn(url, "?#");
    size_t n = strlen(url);
    char *out = malloc(n + 1);
    size_t k = 0;
    memcpy(out, url, host - url);
    k = host - url;
    const char *from = at ? at + 1 : host;
    size_t upto = query;
    memcpy(out + k, from, url + upto - from);
    k += url + upto - from;
    out[k] = '\0';
    return out;
}

// Replaces every occurrence of secret in s by "***" (in place; s shrinks or keeps its size only when the
// secret is at least 3 bytes, which any API key is).
static void redact(char *s, const char *secret) {
    if (!secret || strlen(secret) < 3) return;
    size_t k = strlen(secret);
    char *p;
    while ((p = strstr(s, secret))) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + k, strlen(p + k) + 1);
    }
}

// A one-line excerpt of a body, escaped (common/strbuf.h): a misbehaving server's bytes never reach the
// terminal raw; long bodies end in "...".
static char *excerpt(const char *data, size_t n) { return str_escaped(data, n, KB_BODY_EXCERPT); }

static int is_transient_status(long code) {
    return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 || code == 504;
}

// Equal jitter: half the exponential step, plus a random share of the other half, so that many clients told
// to back off at once do not come back at once.
static double backoff_delay(const KbClientOptions *o, int retry, uint64_t *rng) {
    double d = o->backoff_initial_s * pow(2.0, retry - 1);
    if (d > o->backoff_max_s) d = o->backoff_max_s;
    *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
    return d * 0.5 + d * 0.5 * (double)(*rng >> 11) / (double)(1ull << 53);
}

// The outcome of a finished attempt.
typedef struct {
    int ok;
    int transient;
    double retry_after;  // seconds the server asked for (-1: none)
    char *error;
    cJSON *json;         // parsed response on success
} Attempt;

static Attempt judge(const KbClientOptions *o, const char *url, Slot *slot, CURLcode rc) {
    Attempt a = {.retry_after = -1};
    char msg[1024];
    long code = 0;
    curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK) {
        const char *detail = slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(rc);
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            a.transient = 1;
            snprintf(msg, sizeof msg, "%s: timed out (%s)", url, detail);
        } else if (rc == CURLE_COULDNT_CONNECT) {
            snprintf(msg, sizeof msg, "%s: cannot connect (%s); is the server running?", url, detail);
        } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
            snprintf(msg, sizeof msg, "%s: cannot resolve host (%s)", url, detail);
        } else if (rc == CURLE_WRITE_ERROR && slot->resp.overflow) {
            snprintf(msg, sizeof msg, "%s: response larger than %u MiB", url, KB_MAX_RESPONSE_BYTES >> 20);
        } else if (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
                   rc == CURLE_PARTIAL_FILE) {
            a.transient = 1;  // the server dropped the connection (restart, overload); worth another try
            snprintf(msg, sizeof msg, "%s: connection dropped (%s)", url, detail);
        } else {
            snprintf(msg, sizeof msg, "%s: %s", url, detail);
        }
        a.error = strdup(msg);
        return a;
    }
    Response *r = &slot->resp;
    const char *body = r->data ? r->data : "";
    if (code < 200 || code > 299) {
        a.transient = is_transient_status(code);
        if (a.transient) {
            curl_off_t wait = -1;
            if (curl_easy_getinfo(slot->easy, CURLINFO_RETRY_AFTER, &wait) == CURLE_OK && wait > 0)
                a.retry_after = (double)wait;
        }
        // OpenAI-style {"error": {"message": ...}} reads better than the raw body.
        cJSON *j = cJSON_ParseWithLength(body, r->n);
        cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
        cJSON *m = e ? (cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "message")) : NULL;
        char *ex = cJSON_IsString(m) ? excerpt(m->valuestring, strlen(m->valuestring)) : excerpt(body, r->n);
        snprintf(msg, sizeof msg, "%s: HTTP %ld: %s", url, code, ex[0] ? ex : "(empty body)");
        free(ex);
        cJSON_Delete(j);
        a.error = strdup(msg);
        return a;
    }
    cJSON *j = cJSON_ParseWithLength(body, r->n);
    if (!j) {
        char *ex = excerpt(body, r->n);
        snprintf(msg, sizeof msg, "%s: bad JSON in the response: %s", url, ex[0] ? ex : "(empty body)");
        free(ex);
        a.error = strdup(msg);
        return a;
    }
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (!c0) {
        char *ex = excerpt(body, r->n);
        snprintf(msg, sizeof msg, "%s: the response has no choices: %s", url, ex);
        free(ex);
        cJSON_Delete(j);
        a.error = strdup(msg);
        return a;
    }
    cJSON *message = cJSON_GetObjectItemCaseSensitive(c0, "message");
    cJSON *content = message ? cJSON_GetObjectItemCaseSensitive(message, "content") : NULL;
    if (!cJSON_IsString(content)) {
        cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
        char *why = cJSON_IsString(fr) ? excerpt(fr->valuestring, strlen(fr->valuestring)) : strdup("absent");
        snprintf(msg, sizeof msg, "%s: choices[0].message.content is missing or not text (finish_reason %s)", url,
                 why);
        free(why);
        cJSON_Delete(j);
        a.error = strdup(msg);
        return a;
    }
    a.ok = 1;
    a.json = j;
    return a;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void configure(const KbClientOptions *o, Slot *slot, Call *call, struct curl_slist *headers) {
    CURL *e = slot->easy;
    curl_easy_reset(e);
    slot->errbuf[0] = '\0';
    slot->resp.n = 0;
    slot->resp.overflow = 0;
    if (slot->resp.data) slot->resp.data[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &slot->resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, slot->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "kanoclip-kb/1");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (o->connect_timeout_s > 0) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(o->connect_timeout_s * 1000));
    if (o->timeout_s > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ceil(o->timeout_s * 1000));
    if (o->low_speed_limit_bps > 0 && o->low_speed_time_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit_bps);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)ceil(o->low_speed_time_s));
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, slot);
}

int kb_client_run(const KbClientOptions *o, int n, KbPrepareFn prepare, KbDoneFn done, void *ctx) {
    static int global_ready = 0;
    if (!global_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return err_set("kb: libcurl initialisation failed");
        global_ready = 1;
    }
    if (n <= 0) return 0;
    char *url = kb_url_public(o->url);
    int width = o->concurrency < 1 ? 1 : o->concurrency;
    if (width > n) width = n;

    // Headers shared by every request. "Expect:" stops libcurl from announcing bodies over 1 MB with
    // `Expect: 100-continue` and then waiting up to a second for a "100 Continue" most servers never send.
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (o->api_key && o->api_key[0]) {
        size_t k = strlen(o->api_key) + 32;
        char *h = malloc(k);
        snprintf(h, k, "Authorization: Bearer %s", o->api_key);
        headers = curl_slist_append(headers, h);
        memset(h, 0, k);
        free(h);
    }

    CURLM *multi = curl_multi_init();
    Call *calls = calloc(n, sizeof *calls);
    Slot *slots = calloc(width, sizeof *slots);
    for (int s = 0; s < width; s++) { slots[s].easy = curl_easy_init(); slots[s].call = -1; }
    uint64_t rng = (uint64_t)(now_s() * 1e9) | 1;
    int next_fresh = 0, finished = 0, failed = 0, running = 0;

    while (finished < n) {
        double t = now_s();
        // Fill free slots: due retries first (they have waited), then new requests in order.
        for (int s = 0; s < width; s++) {
            if (slots[s].call >= 0) continue;
            int pick = -1;
            double best = INFINITY;
            for (int i = 0; i < next_fresh; i++)
                if (calls[i].state == CALL_WAITING && calls[i].ready_at <= t && calls[i].ready_at < best)
                    best = calls[i].ready_at, pick = i;
            while (pick < 0 && next_fresh < n) {
                int i = next_fresh++;
                char *body = NULL;
                size_t len = 0;
                err_clear();
                if (prepare(ctx, i, &body, &len) != 0) {
                    char *m = strdup(err_msg()[0] ? err_msg() : "preparing the request failed");
                    redact(m, o->api_key);
                    KbCallResult r = {.ok = 0, .error = m};
                    calls[i].state = CALL_DONE;
                    finished++, failed++;
                    done(ctx, i, &r);
                    free(m);
                    continue;
                }
                calls[i].body = body;
                calls[i].body_len = len;
                calls[i].first_start = t;
                pick = i;
            }
            if (pick < 0) break;
            Call *c = &calls[pick];
            c->state = CALL_RUNNING;
            c->attempts++;
            slots[s].call = pick;
            configure(o, &slots[s], c, headers);
            curl_multi_add_handle(multi, slots[s].easy);
        }
        if (finished >= n) break;

        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            Slot *slot = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, slot->easy);
            int i = slot->call;
            Call *c = &calls[i];
            slot->call = -1;
            Attempt a = judge(o, url, slot, rc);
            long code = 0;
            curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &code);
            if (!a.ok && a.transient && c->attempts <= o->max_retries) {
                double wait = a.retry_after >= 0 ? a.retry_after : backoff_delay(o, c->attempts, &rng);
                if (a.retry_after > o->backoff_max_s) {
                    char m[1400];
                    snprintf(m, sizeof m, "%s; the server asks to retry after %.0f s, more than backoff_max_s %g",
                             a.error, a.retry_after, o->backoff_max_s);
                    free(a.error);
                    a.error = strdup(m);
                } else {
                    free(c->last_error);
                    c->last_error = a.error;
                    c->state = CALL_WAITING;
                    c->ready_at = now_s() + wait;
                    continue;
                }
            }
            KbCallResult r = {.ok = a.ok, .http_code = code, .attempts = c->attempts,
                              .seconds = now_s() - c->first_start};
            char *errline = NULL;
            if (a.ok) {
                cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a.json, "choices"), 0);
                r.content = json_str(cJSON_GetObjectItemCaseSensitive(c0, "message"), "content");
                r.finish_reason = json_str(c0, "finish_reason");
                r.system_fingerprint = json_str(a.json, "system_fingerprint");
                r.response_model = json_str(a.json, "model");
            } else {
                size_t k = strlen(a.error) + 64;
                errline = malloc(k);
                if (c->attempts > 1) snprintf(errline, k, "%s (after %d attempts)", a.error, c->attempts);
                else snprintf(errline, k, "%s", a.error);
                redact(errline, o->api_key);
                r.error = errline;
                failed++;
            }
            c->state = CALL_DONE;
            finished++;
            done(ctx, i, &r);
            free(errline);
            free(a.error);
            cJSON_Delete(a.json);
            free(c->body);
            c->body = NULL;
            free(c->last_error);
            c->last_error = NULL;
        }
        if (finished >= n) break;

        // Sleep until a socket is ready, a retry is due, or 100 ms pass (the next new request may start).
        int busy = 0;
        for (int s = 0; s < width; s++) busy |= slots[s].call >= 0;
        double until = busy ? 0.1 : 1.0;
        t = now_s();
        for (int i = 0; i < next_fresh; i++)
            if (calls[i].state == CALL_WAITING) {
                double d = calls[i].ready_at - t;
                if (d < until) until = d;
            }
        if (!busy && next_fresh < n) until = 0;
        if (until > 0) curl_multi_poll(multi, NULL, 0, (int)ceil(until * 1000), NULL);
    }

    for (int s = 0; s < width; s++) {
        if (slots[s].call >= 0) curl_multi_remove_handle(multi, slots[s].easy);
        curl_easy_cleanup(slots[s].easy);
        free(slots[s].resp.data);
    }
    for (int i = 0; i < n; i++) { free(calls[i].body); free(calls[i].last_error); }
    free(slots);
    free(calls);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    free(url);
    return failed;
}
