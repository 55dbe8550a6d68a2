// `kb build`: asks every question of the plan whose answer is not cached yet and caches each answer as it
// arrives (a killed build resumes where it stopped); a second run sends no request. Offline, it only checks
// the cache and fails naming every missing answer.
#ifndef HARNESS_KB_BUILD_H
#define HARNESS_KB_BUILD_H

#include <stdio.h>

#include "harness/kb/kb_dataset.h"
#include "harness/kb/kb_settings.h"

typedef struct {
    int n_questions;  // in the plan
    int n_llm, n_vqa;
    int n_cached;     // answered before this run
    int n_fetched;    // answered and cached in this run
    int n_failed;
} KbBuildStats;

// progress: where to write one line per answer (NULL: silent). -1 with err_set when a question could not be
// answered (the answers that did arrive are cached) or, offline, when answers are missing.
int kb_build(const KbSettings *s, const KbDataset *d, FILE *progress, KbBuildStats *stats);

#endif
