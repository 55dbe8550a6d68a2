#include "harness/run/log.h"
#include "common/error.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static FILE *log_fp;
static int echo = 1;

// Ctrl-C (SIGINT) and a scheduler's SIGTERM leave a last line "interrupted (SIGINT)" in the log, then the signal's
// default action runs (the exit status still says which signal). The handler only calls async-signal-safe
// functions: the time stamp is computed by hand from clock_gettime, the line goes out with write(2).
static const int log_signals[] = {SIGINT, SIGTERM};
enum { N_LOG_SIGNALS = sizeof log_signals / sizeof log_signals[0] };
static struct sigaction saved[N_LOG_SIGNALS];
static int installed[N_LOG_SIGNALS];
static volatile int log_fd = -1;

static char *put_digits(char *p, long v, int width) {
    for (int i = width - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
    return p + width;
}

// "YYYY-MM-DD HH:MM:SS" (UTC, as log_msg's strftime) of t; days to a civil date as in H. Hinnant's days_from_civil
// inverse, valid for any date after 1970.
static char *put_stamp(char *p, time_t t) {
    long days = (long)(t / 86400), sec = (long)(t % 86400);
    long z = days + 719468, era = z / 146097, doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long y = yoe + era * 400 + (m <= 2);
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = ' ';
    p = put_digits(p, sec / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sec / 60 % 60, 2);
    *p++ = ':';
    return put_digits(p, sec % 60, 2);
}

static void on_signal(int sig) {
    int saved_errno = errno;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
    char line[96], *p = line;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p = put_stamp(p, ts.tv_sec);
    const char *what = " interrupted (";
    for (const char *q = what; *q; q++) *p++ = *q;
    for (const char *q = name; *q; q++) *p++ = *q;
    *p++ = ')';
    *p++ = '\n';
    if (log_fd >= 0 && write(log_fd, line, (size_t)(p - line)) < 0) {}
    if (echo && write(STDERR_FILENO, line + 20, (size_t)(p - line - 20)) < 0) {}
    errno = saved_errno;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_LOG_SIGNALS; i++) {
        struct sigaction old;
        // a signal the caller ignores (nohup) or handles itself is left to it
        if (installed[i] || sigaction(log_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL) continue;
        if (sigaction(log_signals[i], &sa, &saved[i]) == 0) installed[i] = 1;
    }
}

static void signals_restore(void) {
    for (int i = 0; i < N_LOG_SIGNALS; i++)
        if (installed[i]) {
            sigaction(log_signals[i], &saved[i], NULL);
            installed[i] = 0;
        }
}

int log_open(const char *path) {
    log_close();
    log_fp = fopen(path, "a");
    if (!log_fp) return err_set("%s: cannot open log: %s", path, strerror(errno));
    setvbuf(log_fp, NULL, _IOLBF, 0);
    log_fd = fileno(log_fp);
    signals_install();
    return 0;
}

void log_close(void) {
    signals_restore();
    log_fd = -1;
    if (log_fp) fclose(log_fp);
    log_fp = NULL;
}

void log_set_echo(int on) { echo = on; }
FILE *log_file(void) { return log_fp; }
int log_echo(void) { return echo; }

void log_msg(const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_fp) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(log_fp, "%s %s\n", stamp, line);
    }
    if (echo) fprintf(stderr, "%s\n", line);
}
