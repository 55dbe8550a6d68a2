// Typed, range-checked reads of one config key for settings*.c: each returns 0, or -1 with err_set in the form
// "ORIGIN: KEY: VALUE: what is wrong", ORIGIN being where the value came from (file:line:col or the override).
#ifndef HARNESS_SETTINGS_READ_H
#define HARNESS_SETTINGS_READ_H

#include "harness/config/settings.h"

// -1 with err_set("ORIGIN: KEY: <fmt>"); the message is formatted before err_set, so err_msg() may be an argument.
int settings_bad(const Config *cfg, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int settings_str(const Config *cfg, const char *key, const char **out);                 // NULL value -> ""
int settings_bool(const Config *cfg, const char *key, int *out);
int settings_int(const Config *cfg, const char *key, long lo, long hi, int *out);       // lo <= v <= hi
int settings_long(const Config *cfg, const char *key, long lo, long hi, long *out);     // hi < lo: no upper bound
// Finite, lo <= v (lo < v with lo_open) and v <= hi.
int settings_float(const Config *cfg, const char *key, double lo, int lo_open, double hi, float *out);
// A string among the space-separated choices: *index its position, *name the value.
int settings_choice(const Config *cfg, const char *key, const char *choices, int *index, const char **name);
// A list of n_min..n_max integers, each in [lo, hi].
int settings_int_list(const Config *cfg, const char *key, int n_min, int n_max, long lo, long hi, int *out, int *n);
// A list of exactly n strings.
int settings_str_list(const Config *cfg, const char *key, int n, const char **out);

// The method sections (settings_method.c): method.* (KAnoCLIP) and train.baseline.* (the baselines), kb.*.
int settings_read_method(const Config *cfg, Settings *s);

#endif
