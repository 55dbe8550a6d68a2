// Small helpers the subcommands share for their options.
#ifndef HARNESS_CLI_ARGS_H
#define HARNESS_CLI_ARGS_H

// A whole decimal integer in lo..hi ("12", not "12x", "" or out of range): 0 and *out set, else -1
// (the caller prints its usage line naming the option).
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_int(const char *s, int lo, int hi, int *out);

// 1 when s is one of names[0..n-1] (a command's options that take a value: an unknown option is then
// reported as unknown, not as missing its value).
int cli_is_one_of(const char *s, const char *const *names, int n);
#define CLI_IS_ONE_OF(s, names) cli_is_one_of((s), (names), (int)(sizeof(names) / sizeof *(names)))

// A usage error: the first line of a command's help text (its synopsis) on stderr; returns 2.
int cli_usage_error(const char *help_text);

#endif
