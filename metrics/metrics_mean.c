// The unweighted mean over classes that every table reports (per class first, then the mean).
#include "metrics/metrics.h"

#include <math.h>

void metric_mean_add(metric_mean *m, metric_value v) {
    m->n_total++;
    if (!v.defined) return;
    m->sum += v.value;
    m->n_defined++;
}

metric_value metric_mean_value(const metric_mean *m) {
    if (m->n_defined == 0)
        return (metric_value){.value = NAN, .defined = 0,
                              .why_null = m->n_total ? "undefined in every class" : "no classes"};
    return (metric_value){.value = m->sum / m->n_defined, .defined = 1, .why_null = NULL};
}

void image_metrics_mean_add(image_metrics_mean *m, const image_metrics *x) {
    metric_mean_add(&m->auroc, x->auroc);
    metric_mean_add(&m->ap, x->ap);
    metric_mean_add(&m->f1_max, x->f1_max);
    m->n_pos += x->n_pos;
    m->n_neg += x->n_neg;
}

void pixel_metrics_mean_add(pixel_metrics_mean *m, const pixel_metrics *x) {
    metric_mean_add(&m->auroc, x->auroc);
    metric_mean_add(&m->ap, x->ap);
    metric_mean_add(&m->f1_max, x->f1_max);
    metric_mean_add(&m->aupro, x->aupro);
    metric_mean_add(&m->aupro_ac200, x->aupro_ac200);
    metric_mean_add(&m->aupro_ac200_f32, x->aupro_ac200_f32);
    m->n_pos += x->n_pos;
    m->n_neg += x->n_neg;
    m->n_regions += x->n_regions;
    m->n_images += x->n_images;
}
