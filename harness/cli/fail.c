// The one place a command turns the last error into its message line and exit status.
#include <stdio.h>

#include "common/error.h"
#include "harness/cli/commands.h"

int fail_with_error(void) {
    fprintf(stderr, "kanoclip: %s%s\n", err_msg()[0] ? err_msg() : "failed",
            err_retryable() ? " (resumable: rerun the same command)" : "");
    return 1;
}
