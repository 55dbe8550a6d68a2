#include "harness/run/log.h"
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static FILE *log_fp;
static int echo = 1;

int log_open(const char *path) {
    log_close();
    log_fp = fopen(path, "a");
    if (!log_fp) return err_set("%s: cannot open log: %s", path, strerror(errno));
    setvbuf(log_fp, NULL, _IOLBF, 0);
    return 0;
}

void log_close(void) {
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
