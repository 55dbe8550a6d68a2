// Progress of a long loop: a bar with rate and ETA redrawn on stderr when it is a terminal (at most 10 times a
// second), and one summary line in the log when the loop ends. One loop at a time; not thread-safe (call
// progress_step from the thread that owns the loop).
#ifndef HARNESS_PROGRESS_H
#define HARNESS_PROGRESS_H

void progress_start(const char *label, long total);
void progress_step(long n);  // n more items done
void progress_end(void);
// Formats seconds as H:MM:SS (or M:SS under an hour) into buf; for messages.
void progress_format_time(double seconds, char *buf, int size);

#endif
