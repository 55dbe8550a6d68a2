// An OpenAI-compatible chat-completions client on libcurl's multi interface: a bounded number of requests in
// flight, connect / low-speed / total timeouts, retries with exponential backoff (and jitter) on timeouts and
// HTTP 408, 429, 500, 502, 503, 504 that honour Retry-After, no `Expect: 100-continue` wait on large bodies,
// and one clear error per failed request (refused connection, timeout, HTTP error with its body, bad JSON,
// missing choices). The API key goes only into the Authorization header; error texts have it redacted.
#ifndef HARNESS_KB_CLIENT_H
#define HARNESS_KB_CLIENT_H

#include <stddef.h>

typedef struct {
    const char *url;          // full endpoint, e.g. "http://127.0.0.1:11434/v1/chat/completions"
    const char *api_key;      // NULL or "" = no Authorization header
    int concurrency;          // requests in flight at once (>= 1)
    double connect_timeout_s; // 0 = libcurl's default
    long low_speed_limit_bps; // abort a transfer slower than this ...
    double low_speed_time_s;  // ... for this many seconds (rounded up to whole seconds; 0 = off)
    double timeout_s;         // cap on one attempt (0 = none)
    int max_retries;          // retries after the first attempt
    double backoff_initial_s; // wait before the first retry; doubles each time, with jitter
    double backoff_max_s;     // cap on one wait; a Retry-After above it fails the request
} KbClientOptions;

// The outcome of one request, handed to the done callback (the client frees it afterwards).
typedef struct {
    int ok;                   // 1: content holds the answer; 0: error says why
    long http_code;           // last HTTP status (0 if none came)
    int attempts;             // tries made, retries included
    double seconds;           // wall time from the first try to the outcome
    const char *content;      // choices[0].message.content
    const char *finish_reason;       // or NULL
    const char *system_fingerprint;  // or NULL
    const char *response_model;      // "model" of the response, or NULL
    const char *error;        // one line: what failed, with the URL
} KbCallResult;

// Called when request i is about to be sent for the first time: set *body (malloc'd; the client frees it)
// and *len. Returning -1 (with err_set) fails request i with that message, without sending it.
typedef int (*KbPrepareFn)(void *ctx, int i, char **body, size_t *len);
// Called once per request with its outcome, in completion order.
typedef void (*KbDoneFn)(void *ctx, int i, const KbCallResult *result);

// Sends requests 0..n-1 and returns how many failed (their errors went to done), or -1 with err_set when the
// client itself could not start (libcurl initialisation).
int kb_client_run(const KbClientOptions *opt, int n, KbPrepareFn prepare, KbDoneFn done, void *ctx);

// url without "user:password@" and without its query string (for messages and cache records; malloc'd).
char *kb_url_public(const char *url);

#endif
