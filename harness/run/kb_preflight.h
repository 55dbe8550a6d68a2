// Before a KAnoCLIP run with KnPL computes anything: per class of the training set, where its knowledge comes
// from (harness/kb/kb_source.h), into the log and provenance.json (kb_source.<class>, kb_llm_model,
// kb_vqa_model); with kb.require: fetched, a class without its fetched answers stops the run, naming
// `kanoclip kb build`.
#ifndef HARNESS_KB_PREFLIGHT_H
#define HARNESS_KB_PREFLIGHT_H

#include "harness/config/settings.h"
#include "harness/run/exec_dataset.h"
#include "harness/run/run_dir.h"

// 0 when the run may go on; -1 with err_set (kb.require: fetched and an answer missing, or a malformed KB file).
int kb_preflight(Run *run, const Settings *s, const ExecDataset *train);

#endif
