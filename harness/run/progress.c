#include "harness/run/progress.h"
#include "harness/run/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    char label[128];
    long total, done;
    double t0, last_draw;
    int active, tty;
} P;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_format_time(double s, char *buf, int size) {
    if (s < 0 || s > 1e7) { snprintf(buf, size, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void draw(int final) {
    double el = now_s() - P.t0;
    double rate = el > 0 ? P.done / el : 0;
    char eta[32], elapsed[32];
    progress_format_time(rate > 0 && P.total > 0 ? (P.total - P.done) / rate : -1, eta, sizeof eta);
    progress_format_time(el, elapsed, sizeof elapsed);
    enum { W = 30 };
    char bar[W + 1];
    int fill = P.total > 0 ? (int)((double)P.done / P.total * W) : 0;
    if (fill > W) fill = W;
    memset(bar, '#', fill);
    memset(bar + fill, '.', W - fill);
    bar[W] = '\0';
    if (P.total > 0)
        fprintf(stderr, "\r%s [%s] %ld/%ld %.1f/s %s ETA %s\033[K", P.label, bar, P.done, P.total, rate, elapsed,
                final ? "0:00" : eta);
    else
        fprintf(stderr, "\r%s %ld %.1f/s %s\033[K", P.label, P.done, rate, elapsed);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

void progress_start(const char *label, long total) {
    snprintf(P.label, sizeof P.label, "%s", label);
    P.total = total;
    P.done = 0;
    P.t0 = now_s();
    P.last_draw = 0;
    P.active = 1;
    P.tty = log_echo() && isatty(STDERR_FILENO);
    if (P.tty) draw(0);
}

void progress_step(long n) {
    if (!P.active) return;
    P.done += n;
    if (!P.tty) return;
    double t = now_s();
    if (t - P.last_draw >= 0.1 || P.done >= P.total) {
        P.last_draw = t;
        draw(0);
    }
}

void progress_end(void) {
    if (!P.active) return;
    if (P.tty) draw(1);
    double el = now_s() - P.t0;
    char elapsed[32];
    progress_format_time(el, elapsed, sizeof elapsed);
    // The summary goes to the file only when the bar was on screen (the bar already showed it).
    int echo = log_echo();
    if (P.tty) log_set_echo(0);
    char count[64];
    if (P.total > 0) snprintf(count, sizeof count, "%ld/%ld", P.done, P.total);
    else snprintf(count, sizeof count, "%ld", P.done);
    log_msg("%s: %s done in %s (%.2f/s)", P.label, count, elapsed, el > 0 ? P.done / el : 0.0);
    log_set_echo(echo);
    P.active = 0;
}
