// Opening a Hugging Face CLIP folder: config, weights file, and the towers asked for.
#include "model/clip_model.h"
#include "common/error.h"

#include <stdlib.h>

static const float *checkpoint_source(void *ck, const char *name, const int64_t *shape, int ndim) {
    return checkpoint_tensor_f32(ck, name, shape, ndim);
}

ClipModel *clip_model_load(const char *dir, int towers) {
    ClipModel *m = calloc(1, sizeof *m);
    if (!m) { err_set("%s: out of memory", dir); return NULL; }
    if (clip_config_load(dir, &m->cfg) < 0 || !(m->ck = checkpoint_open(dir))) goto fail;
    if ((towers & CLIP_TEXT) && clip_text_bind(&m->text, &m->cfg, checkpoint_source, m->ck) < 0) goto fail;
    m->towers |= towers & CLIP_TEXT;
    if ((towers & CLIP_VISION) && clip_vision_bind(&m->vision, &m->cfg, checkpoint_source, m->ck) < 0) goto fail;
    m->towers |= towers & CLIP_VISION;
    return m;
fail:
    clip_model_free(m);
    return NULL;
}

void clip_model_free(ClipModel *m) {
    if (!m) return;
    if (m->towers & CLIP_TEXT) clip_text_release(&m->text);
    if (m->towers & CLIP_VISION) clip_vision_release(&m->vision);
    if (m->ck) checkpoint_close(m->ck);
    free(m);
}
