// Where each training class's knowledge comes from, stated before compute (see kb_preflight.h).
#include "harness/run/kb_preflight.h"
#include "harness/kb/kb_source.h"
#include "harness/run/log.h"
#include "harness/run/text_inputs.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>

int kb_preflight(Run *run, const Settings *s, const ExecDataset *train) {
    KbSettings kbs;
    KbClassTexts *t = NULL;
    int n = text_kb_sources(s, train, &kbs, &t);
    if (n < 0) return -1;
    int missing = 0, first = -1, rc = 0;
    char line[512], key[300];
    for (int c = 0; c < n; c++) {
        int complete = kb_source_describe(&kbs, &t[c], line, sizeof line);
        log_msg("kb: class %s: %s", t[c].class_name, line);
        snprintf(key, sizeof key, "kb_source.%s", t[c].class_name);
        if (run && run_set_provenance(run, key, line) < 0) rc = -1;
        if (!complete && first < 0) first = c;
        missing += !complete;
    }
    if (run && rc == 0 &&
        (run_set_provenance(run, "kb_llm_model", kbs.model) < 0 ||
         run_set_provenance(run, "kb_vqa_model", kb_settings_vqa_model(&kbs)) < 0))
        rc = -1;
    if (rc == 0 && missing && kbs.require_fetched) {
        kb_source_describe(&kbs, &t[first], line, sizeof line);
        rc = err_set("kb.require: fetched, but %d of %d classes lack fetched answers (class '%s': %s): run "
                     "`kanoclip kb build` with this config first, or set kb.require: any",
                     missing, n, t[first].class_name, line);
    } else if (missing) {
        log_msg("kb: %d of %d classes train against text that is not the fetched answers (kb.require: any)", missing, n);
    }
    for (int c = 0; c < n; c++) kb_class_texts_free(&t[c]);
    free(t);
    kb_settings_free(&kbs);
    return rc;
}
