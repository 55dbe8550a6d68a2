// The run log: plain timestamped lines appended to a file (the run folder's log.txt) and echoed on stderr.
#ifndef HARNESS_LOG_H
#define HARNESS_LOG_H

#include <stdio.h>

// Appends to path from now on (closes a previous log file). -1 with err_set if it cannot be opened. While a log
// is open, SIGINT (Ctrl-C) and SIGTERM write "interrupted (SIGINT)" as its last line, then take their default
// action (signals the process ignores or handles itself are left alone).
int log_open(const char *path);
void log_close(void);
// Echo lines on stderr (default 1). Tests and `--quiet` turn it off; the file still gets every line.
void log_set_echo(int echo);
// One line: "YYYY-MM-DD HH:MM:SS message" in the file, "message" on stderr. No trailing newline needed.
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The open log file (NULL if none), for progress.c.
FILE *log_file(void);
int log_echo(void);

#endif
