// A tiny HTTP/1.1 server on 127.0.0.1 (a random free port) that speaks the OpenAI chat-completions protocol,
// for the knowledge-base client tests. One thread accepts, one thread serves each connection (keep-alive), and
// a script says how to answer request 0, 1, 2, ... (status, Retry-After, a raw body, or a stall). It counts
// requests and records what it saw (Expect header, Authorization, body size), so tests can assert on it.
// Header-only: each test binary is a single C file.
#ifndef TESTS_KB_TEST_SERVER_H
#define TESTS_KB_TEST_SERVER_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KBS_MAX_SCRIPT 16
#define KBS_MAX_CONN 64

typedef struct {
    int status;            // 0 = 200
    int retry_after;       // > 0: a Retry-After header with this many seconds
    const char *raw_body;  // sent as is (e.g. malformed JSON); NULL: a chat completion with `content`
    const char *content;   // the answer text (NULL: the server's default content)
    int stall;             // read the request, then send nothing until the server stops
    int delay_ms;          // wait this long before answering
} KbsReply;

typedef struct {
    int listen_fd;
    int port;
    int stop_pipe[2];
    pthread_t accept_thread;
    pthread_mutex_t mu;
    pthread_t conn_threads[KBS_MAX_CONN];
    int conn_fds[KBS_MAX_CONN];
    int n_conns;
    // Script: reply i answers request i; later requests get `fallback`.
    KbsReply script[KBS_MAX_SCRIPT];
    int n_script;
    KbsReply fallback;
    const char *default_content;
    // What the server saw.
    int n_requests;
    int saw_expect;        // some request carried an Expect header
    size_t max_body;       // largest request body received, bytes
    int in_flight, max_in_flight;  // requests received and not yet answered
    char *last_body;
    char last_auth[512];
    char last_path[256];
    double request_time[64];  // monotonic seconds of each request's arrival
} KbServer;

static double kbs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    KbServer *srv;
    int fd;
} KbsConn;

// Waits until fd is readable or the server stops; 1 readable, 0 stopping.
static int kbs_wait_readable(KbServer *s, int fd) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR) continue;
        if (p[1].revents) return 0;
        if (p[0].revents) return 1;
    }
}

static int kbs_write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        buf += w;
        n -= w;
    }
    return 0;
}

static char *kbs_completion_json(const char *content) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", "chatcmpl-test");
    cJSON_AddStringToObject(r, "object", "chat.completion");
    cJSON_AddStringToObject(r, "model", "test-model");
    cJSON_AddStringToObject(r, "system_fingerprint", "fp_loopback");
    cJSON *choices = cJSON_AddArrayToObject(r, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *m = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddStringToObject(c, "finish_reason", "stop");
    cJSON_AddItemToArray(choices, c);
    char *out = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return out;
}

static const char *kbs_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void *kbs_serve(void *arg) {
    KbsConn *c = arg;
    KbServer *s = c->srv;
    int fd = c->fd;
    free(c);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        // Headers.
        char *end = NULL;
        while (!(end = (n ? memmem(buf, n, "\r\n\r\n", 4) : NULL))) {
            if (!kbs_wait_readable(s, fd)) goto out;
            if (n == cap) { cap *= 2; buf = realloc(buf, cap + 1); }
            ssize_t r = recv(fd, buf + n, cap - n, 0);
            if (r <= 0) goto out;
            n += r;
        }
        size_t head = end + 4 - buf;
        buf[head - 1] = '\0';
        size_t content_length = 0;
        int expect = 0;
        char auth[512] = "", path[256] = "";
        sscanf(buf, "%*s %255s", path);
        for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
            const char *h = line + 2;
            if (!strncasecmp(h, "Content-Length:", 15)) content_length = strtoul(h + 15, NULL, 10);
            if (!strncasecmp(h, "Expect:", 7)) expect = 1;
            if (!strncasecmp(h, "Authorization:", 14)) {
                const char *v = h + 14;
                while (*v == ' ') v++;
                size_t k = strcspn(v, "\r\n");
                snprintf(auth, sizeof auth, "%.*s", (int)k, v);
            }
        }
        // Body. Never "100 Continue": a client that waits for it stalls, which the tests detect.
        while (n - head < content_length) {
            if (head + content_length > cap) { cap = head + content_length; buf = realloc(buf, cap + 1); }
            if (!kbs_wait_readable(s, fd)) goto out;
            ssize_t r = recv(fd, buf + n, cap - n, 0);
            if (r <= 0) goto out;
            n += r;
        }
        pthread_mutex_lock(&s->mu);
        int idx = s->n_requests++;
        if (idx < 64) s->request_time[idx] = kbs_now();
        s->saw_expect |= expect;
        if (content_length > s->max_body) s->max_body = content_length;
        free(s->last_body);
        s->last_body = strndup(buf + head, content_length);
        snprintf(s->last_auth, sizeof s->last_auth, "%s", auth);
        snprintf(s->last_path, sizeof s->last_path, "%s", path);
        KbsReply reply = idx < s->n_script ? s->script[idx] : s->fallback;
        if (++s->in_flight > s->max_in_flight) s->max_in_flight = s->in_flight;
        const char *def = s->default_content;
        pthread_mutex_unlock(&s->mu);
        // Keep bytes of a pipelined next request.
        size_t used = head + content_length;
        memmove(buf, buf + used, n - used);
        n -= used;

        if (reply.delay_ms > 0) {
            struct timespec d = {reply.delay_ms / 1000, (reply.delay_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
        }
        if (reply.stall) {
            kbs_wait_readable(s, s->stop_pipe[0]);
            goto out;
        }
        int status = reply.status ? reply.status : 200;
        char *body = reply.raw_body ? strdup(reply.raw_body)
                                    : kbs_completion_json(reply.content ? reply.content : def ? def : "A defect.");
        if (status != 200 && !reply.raw_body) {
            free(body);
            body = strdup("{\"error\":{\"message\":\"the loopback server says no\",\"type\":\"test\"}}");
        }
        char header[512];
        int k = snprintf(header, sizeof header,
                         "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n", status,
                         kbs_reason(status), strlen(body));
        if (reply.retry_after > 0) k += snprintf(header + k, sizeof header - k, "Retry-After: %d\r\n", reply.retry_after);
        k += snprintf(header + k, sizeof header - k, "\r\n");
        pthread_mutex_lock(&s->mu);
        s->in_flight--;
        pthread_mutex_unlock(&s->mu);
        int bad = kbs_write_all(fd, header, k) || kbs_write_all(fd, body, strlen(body));
        free(body);
        if (bad) goto out;
    }
out:
    free(buf);
    return NULL;
}

static void *kbs_accept(void *arg) {
    KbServer *s = arg;
    for (;;) {
        if (!kbs_wait_readable(s, s->listen_fd)) return NULL;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&s->mu);
        if (s->n_conns == KBS_MAX_CONN) { pthread_mutex_unlock(&s->mu); close(fd); continue; }
        KbsConn *c = malloc(sizeof *c);
        c->srv = s;
        c->fd = fd;
        s->conn_fds[s->n_conns] = fd;
        pthread_create(&s->conn_threads[s->n_conns], NULL, kbs_serve, c);
        s->n_conns++;
        pthread_mutex_unlock(&s->mu);
    }
}

// Starts the server; its port is s->port. Set the script before the first request.
static int kbs_start(KbServer *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    if (pipe(s->stop_pipe) != 0) return -1;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->listen_fd, 64) != 0) return -1;
    socklen_t len = sizeof a;
    getsockname(s->listen_fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->accept_thread, NULL, kbs_accept, s);
}

static int kbs_requests(KbServer *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->n_requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void kbs_stop(KbServer *s) {
    if (write(s->stop_pipe[1], "x", 1) != 1) return;
    pthread_join(s->accept_thread, NULL);
    for (int i = 0; i < s->n_conns; i++) {
        shutdown(s->conn_fds[i], SHUT_RDWR);
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s->last_body);
    pthread_mutex_destroy(&s->mu);
}

// A port on 127.0.0.1 with nothing listening (bound, then closed), for refused connections.
__attribute__((unused)) static int kbs_closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
