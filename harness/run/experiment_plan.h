// What a run would do, for `kanoclip experiment --dry-run`: the datasets and their image counts, the epochs and
// steps, and a rough time from FLOP counts of the frozen towers and the heads over this machine's measured
// SGEMM rate (a lower bound: memory-bound parts are not counted).
#ifndef HARNESS_EXPERIMENT_PLAN_H
#define HARNESS_EXPERIMENT_PLAN_H

#include <stdio.h>

#include "harness/config/settings.h"

// Prints the plan to out. Missing weights or data are skipped with a note (the checks report them).
void experiment_plan(const Settings *s, FILE *out);

#endif
