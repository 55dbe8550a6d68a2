#include "harness/cli/cli_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int lo, int hi, int *out) {
    long v = 0;
    if (cli_parse_long(s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

int cli_is_one_of(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

int cli_usage_error(const char *help_text) {
    const char *eol = strchr(help_text, '\n');
    int len = eol ? (int)(eol - help_text) : (int)strlen(help_text);
    fprintf(stderr, "%.*s (see --help)\n", len, help_text);
    return 2;
}
