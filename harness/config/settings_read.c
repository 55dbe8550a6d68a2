// Typed, range-checked config reads (see settings_read.h).
#include "harness/config/settings_read.h"
#include "common/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int settings_bad(const Config *cfg, const char *key, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *origin = config_origin(cfg, key);
    if (origin) return err_set("%s: %s: %s", origin, key, msg);
    return err_set("%s: %s", key, msg);
}

int settings_str(const Config *cfg, const char *key, const char **out) {
    if (config_get_str(cfg, key, out) < 0) return -1;
    if (!*out) *out = "";
    return 0;
}

int settings_bool(const Config *cfg, const char *key, int *out) { return config_get_bool(cfg, key, out); }

int settings_long(const Config *cfg, const char *key, long lo, long hi, long *out) {
    if (config_get_int(cfg, key, out) < 0) return -1;
    if (*out < lo) return settings_bad(cfg, key, "%ld: must be >= %ld", *out, lo);
    if (hi >= lo && *out > hi) return settings_bad(cfg, key, "%ld: must be <= %ld", *out, hi);
    return 0;
}

int settings_int(const Config *cfg, const char *key, long lo, long hi, int *out) {
    long v;
    if (settings_long(cfg, key, lo, hi, &v) < 0) return -1;
    *out = (int)v;
    return 0;
}

int settings_float(const Config *cfg, const char *key, double lo, int lo_open, double hi, float *out) {
    double v;
    if (config_get_float(cfg, key, &v) < 0) return -1;
    if (!isfinite(v)) return settings_bad(cfg, key, "%g: must be a finite number", v);
    if (lo_open ? !(v > lo) : !(v >= lo)) return settings_bad(cfg, key, "%g: must be %s %g", v, lo_open ? ">" : ">=", lo);
    if (v > hi) return settings_bad(cfg, key, "%g: must be <= %g", v, hi);
    *out = (float)v;
    return 0;
}

int settings_choice(const Config *cfg, const char *key, const char *choices, int *index, const char **name) {
    const char *v;
    if (settings_str(cfg, key, &v) < 0) return -1;
    size_t n = strlen(v);
    int i = 0;
    for (const char *c = choices; *c; i++) {
        size_t len = strcspn(c, " ");
        if (len == n && n && !strncmp(c, v, n)) {
            *index = i;
            if (name) *name = v;
            return 0;
        }
        c += len;
        while (*c == ' ') c++;
    }
    return settings_bad(cfg, key, "'%s' (valid: %s)", v, choices);
}

int settings_int_list(const Config *cfg, const char *key, int n_min, int n_max, long lo, long hi, int *out, int *n) {
    int len = config_list_len(cfg, key);
    if (len < 0) return -1;
    if (len < n_min || len > n_max)
        return settings_bad(cfg, key, "%d values (give %d to %d)", len, n_min, n_max);
    for (int i = 0; i < len; i++) {
        long v;
        if (config_list_int(cfg, key, i, &v) < 0) return -1;
        if (v < lo || v > hi) return settings_bad(cfg, key, "item %d: %ld: must be in [%ld, %ld]", i, v, lo, hi);
        out[i] = (int)v;
    }
    *n = len;
    return 0;
}

int settings_str_list(const Config *cfg, const char *key, int n, const char **out) {
    int len = config_list_len(cfg, key);
    if (len < 0) return -1;
    if (len != n) return settings_bad(cfg, key, "%d items (give %d)", len, n);
    for (int i = 0; i < n; i++)
        if (!(out[i] = config_list_str(cfg, key, i))) return -1;
    return 0;
}
