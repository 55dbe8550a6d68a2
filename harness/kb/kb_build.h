// `kb build`: asks every question of the plan whose answer is not cached yet and caches each answer as it
// arrives (a killed build resumes where it stopped); a second run sends no request. Offline, it only checks
// the cache and fails naming every missing or unreadable answer. Answers with fewer descriptions than asked are
// kept, and named in the progress output.
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
    int n_damaged;    // cached files that do not read (truncated, edited): asked again, or named offline
    int n_short;      // answers (cached or fetched) with fewer descriptions than kb.llm_n / kb.vqa_m
} KbBuildStats;

// progress: where to write one line per answer (NULL: silent). -1 with err_set when a question could not be
// answered (the answers that did arrive are cached) or, offline, when answers are missing.
int kb_build(const KbSettings *s, const KbDataset *d, FILE *progress, KbBuildStats *stats);

#endif
