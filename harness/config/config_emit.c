// The canonical YAML text of a config tree (libyaml's emitter): keys in defaults order, scalar lists in flow
// style, strings quoted exactly when they would otherwise read back as another type. Same tree, same bytes.
#include "harness/config/config_tree.h"
#include "common/error.h"
#include "common/strbuf.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

// libyaml's output handler: append to a StrBuf.
static int out_write(void *data, unsigned char *bytes, size_t n) {
    strbuf_put(data, (const char *)bytes, n);
    return 1;
}

// Would this text, written plain, read back as something other than a string?
static int needs_quotes(const char *s) {
    if (!*s) return 1;
    static const char *special[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        if (!strcmp(s, special[i])) return 1;
    const char *p = s;
    if (*p == '-' || *p == '+' || *p == '.') p++;
    return (*p >= '0' && *p <= '9') || !strcasecmp(s, ".inf") || !strcasecmp(s, "-.inf") || !strcasecmp(s, ".nan");
}

static int scalar(yaml_emitter_t *em, const char *text, int quote) {
    yaml_event_t ev;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                                 quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    return yaml_emitter_emit(em, &ev);
}

static int is_flat_list(const ConfigNode *n) {
    for (int i = 0; i < n->n_kids; i++)
        if (n->kids[i]->kind == CK_LIST || n->kids[i]->kind == CK_MAP) return 0;
    return 1;
}

static int emit_node(yaml_emitter_t *em, const ConfigNode *n, int flow) {
    yaml_event_t ev;
    switch (n->kind) {
    case CK_MAP:
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, flow || n->n_kids == 0 ? YAML_FLOW_MAPPING_STYLE
                                                                                       : YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev)) return 0;
        for (int i = 0; i < n->n_kids; i++)
            if (!scalar(em, n->kids[i]->key, needs_quotes(n->kids[i]->key)) || !emit_node(em, n->kids[i], flow)) return 0;
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    case CK_LIST: {
        int flat = is_flat_list(n);
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, flow || flat ? YAML_FLOW_SEQUENCE_STYLE
                                                                              : YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev)) return 0;
        // Mapping items of a list are written in flow style: one line per item ({name: visa, type: visa, root: ""}).
        for (int i = 0; i < n->n_kids; i++)
            if (!emit_node(em, n->kids[i], flow || n->kids[i]->kind == CK_MAP)) return 0;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev);
    }
    case CK_STR: return scalar(em, n->text, needs_quotes(n->text));
    case CK_NULL: return scalar(em, "null", 0);
    default: return scalar(em, n->text, 0);
    }
}

char *cfgnode_to_yaml(const ConfigNode *root) {
    yaml_emitter_t em;
    yaml_event_t ev;
    StrBuf o = {0};
    yaml_emitter_initialize(&em);
    yaml_emitter_set_output(&em, out_write, &o);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    int ok = 1;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = ok && yaml_emitter_emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    ok = ok && emit_node(&em, root, 0);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&em, &ev);
    if (!ok) err_set("config: cannot write YAML: %s", em.problem ? em.problem : "emitter error");
    yaml_emitter_delete(&em);
    if (!ok) { free(o.s); return NULL; }
    return strbuf_take(&o);
}
