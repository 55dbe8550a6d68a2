// Bootstrap intervals of an evaluation (see eval_bootstrap.h).
#include "harness/run/eval_bootstrap.h"
#include "common/strbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int eval_boot_init(EvalBoot *b, const Settings *st) {
    memset(b, 0, sizeof *b);
    if (st->eval.bootstrap <= 0) return 0;
    b->n_resamples = st->eval.bootstrap;
    b->seed = st->eval.bootstrap_seed;
    b->aupro_as = st->eval.aupro_ac200 == 2   ? BOOT_PIXEL_AUPRO_AC200_F32
                  : st->eval.aupro_ac200 == 1 ? BOOT_PIXEL_AUPRO_AC200
                                              : BOOT_PIXEL_AUPRO;
    return boot_mean_init(&b->mean, b->n_resamples, b->seed);
}

int eval_boot_class(EvalBoot *b, cJSON *co, int c, const double *scores, const uint8_t *labels, int n,
                    const pixel_acc *acc, const int64_t *acc_image) {
    if (!b->n_resamples) return 0;
    boot_class bc = {.scores = scores, .labels = labels, .n = (size_t)n, .acc = acc, .acc_image = acc_image};
    boot_samples s;
    if (boot_class_resample(&s, &bc, b->n_resamples, b->seed, c) < 0) return -1;
    cJSON_AddItemToObject(co, "ci", boot_ci_json(&s, b->aupro_as));
    boot_mean_add(&b->mean, &s);
    boot_samples_free(&s);
    return 0;
}

int eval_boot_finish(EvalBoot *b, cJSON *o, char **csv) {
    *csv = NULL;
    if (!b->n_resamples) return 0;
    boot_samples s;
    if (boot_mean_samples(&b->mean, &s) < 0) return -1;
    cJSON_AddItemToObject(o, "ci", boot_ci_json(&s, b->aupro_as));
    cJSON_AddItemToObject(o, "bootstrap", boot_info_json(&s, b->aupro_as));
    const int cols[7] = {BOOT_IMAGE_AUROC, BOOT_IMAGE_AP, BOOT_IMAGE_F1_MAX, BOOT_PIXEL_AUROC, b->aupro_as,
                         BOOT_PIXEL_AP, BOOT_PIXEL_F1_MAX};
    StrBuf t = {0};
    strbuf_printf(&t, "%s\n", EVAL_BOOT_CSV_HEADER);
    for (int r = 0; r < s.n_resamples; r++) {
        strbuf_printf(&t, "%d", r);
        for (int k = 0; k < 7; k++) {
            double v = s.v[(size_t)cols[k] * s.n_resamples + r];
            if (isnan(v)) strbuf_printf(&t, ",");
            else strbuf_printf(&t, ",%.17g", v);
        }
        strbuf_printf(&t, "\n");
    }
    boot_samples_free(&s);
    *csv = strbuf_take(&t);
    return 0;
}

void eval_boot_free(EvalBoot *b) {
    if (b->n_resamples) boot_mean_free(&b->mean);
    memset(b, 0, sizeof *b);
}
