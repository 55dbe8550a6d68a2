// The one place a command turns the last error into its message line and exit status.
#include <stdio.h>

#include "common/error.h"
#include "harness/commands.h"

int fail_with_error(void) {
    fprintf(stderr, "kanoclip: %s\n", err_msg()[0] ? err_msg() : "failed");
    return 1;
}
