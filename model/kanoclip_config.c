// Defaults and consistency checks of KanoclipConfig (docs/reference/kanoclip-components.md §0, §10).
#include "model/kanoclip_config.h"

#include "common/error.h"

KanoclipConfig kanoclip_config_default(void) {
    KanoclipConfig c = {0};
    c.width = 768; c.text_width = 768; c.heads = 12; c.grid_h = 37; c.grid_w = 37; c.image_size = 518;
    c.n_stages = 4;
    c.clip_vv = 1; c.global_ln_post = 1;
    c.knpl = 1; c.n_ctx = 12; c.ctx_init_std = 0.02f; c.deep_prompts = 0; c.deep_depth = 9; c.deep_tokens = 4;
    c.kd_form = KD_BOUNDED; c.kd_margin = 0.1f; c.kd_tau = 0.07f;
    c.bicmci = 1; c.bicmci_full = 0; c.zero_init_out = 1; c.deform = DEFORM_DAT; c.dat_groups = 3; c.dat_kernel = 5;
    c.dat_offset_range = 2.0f; c.dat_rpe = 1; c.msda_points = 4; c.init_std = 0.02f; c.maps_updated_text = 1;
    c.adapter = 1; c.adapter_ratio = 4; c.adapter_residual = 0;
    c.tau = 0.07f; c.upsample_align_corners = 0; c.gauss_sigma = 4.0f; c.gauss_truncate = 4.0f;
    c.w_kd = 1.0f; c.w_global = 1.0f; c.w_local = 1.0f;
    c.lr = 1e-3f; c.beta1 = 0.5f; c.beta2 = 0.999f; c.adam_eps = 1e-8f; c.seed = 111;
    return c;
}

int kanoclip_config_check(const KanoclipConfig *c) {
    if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
        return err_set("method.width: %d is not a positive multiple of method.heads (%d)", c->width, c->heads);
    if (c->grid_h <= 0 || c->grid_w <= 0) return err_set("method.grid: %dx%d is not a grid", c->grid_h, c->grid_w);
    if (c->image_size <= 0) return err_set("method.image_size: %d must be positive", c->image_size);
    if (c->n_stages < 1 || c->n_stages > 8) return err_set("method.n_stages: %d not in 1..8", c->n_stages);
    if (c->knpl && (c->n_ctx < 1 || c->text_width <= 0))
        return err_set("method.n_ctx: %d must be at least 1 (text width %d)", c->n_ctx, c->text_width);
    if (c->knpl && c->deep_prompts && c->deep_depth < 2)
        return err_set("method.deep_depth: %d must be at least 2 (deep prompts start before text layer 2)", c->deep_depth);
    if (c->knpl && c->deep_prompts && (c->deep_tokens < 1 || c->deep_tokens > c->n_ctx))
        return err_set("method.deep_tokens: %d not in 1..n_ctx (%d): deep prompts overwrite context positions",
                       c->deep_tokens, c->n_ctx);
    if (c->kd_form < KD_BOUNDED || c->kd_form > KD_INFONCE) return err_set("method.kd_form: unknown form %d", c->kd_form);
    if (c->bicmci) {
        if (c->deform != DEFORM_DAT && c->deform != DEFORM_MSDA)
            return err_set("method.deform: unknown flavour %d (dat or msda)", c->deform);
        if (c->deform == DEFORM_MSDA && (c->msda_points < 1 || c->width % 4))
            return err_set("method.msda_points: %d must be positive (and width %d a multiple of 4)", c->msda_points, c->width);
        if (c->deform == DEFORM_DAT && (c->dat_groups <= 0 || c->width % c->dat_groups || c->heads % c->dat_groups))
            return err_set("method.dat_groups: %d must divide width %d and heads %d", c->dat_groups, c->width, c->heads);
        if (c->deform == DEFORM_DAT && (c->dat_kernel < 1 || c->dat_kernel % 2 == 0))
            return err_set("method.dat_kernel: %d must be odd and positive", c->dat_kernel);
    }
    if (c->adapter && (c->adapter_ratio <= 0 || c->width % c->adapter_ratio))
        return err_set("method.adapter_ratio: %d must divide width %d", c->adapter_ratio, c->width);
    if (!(c->tau > 0)) return err_set("method.tau: %g must be positive", c->tau);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        return err_set("method.betas: (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
    if (!(c->lr >= 0)) return err_set("method.lr: %g must be non-negative", c->lr);
    return 0;
}
