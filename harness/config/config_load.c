// Loading and composing configs: defaults.yaml (the schema), `base:` chains, the file, key=value overrides.
// Every value is checked against the schema as it is applied, so errors point at the text that caused them.
#include "harness/config/config.h"
#include "harness/config/config_tree.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

// Where the values being applied come from: a parsed file, or one override.
typedef struct {
    const char *file;      // file name as given (for file:line:col)
    const char *override;  // "K=V" when applying an override, else NULL
    yaml_document_t *doc;
    const ConfigNode *schema_root;
    char where[1200];      // scratch for where()
} Source;

static const char *where(Source *s, const yaml_node_t *n) {
    if (s->override) snprintf(s->where, sizeof s->where, "override '%s'", s->override);
    else snprintf(s->where, sizeof s->where, "%s:%zu:%zu", s->file, n->start_mark.line + 1, n->start_mark.column + 1);
    return s->where;
}

// ---- YAML 1.2 core-schema resolution of plain scalars ----

static int all_of(const char *s, const char *set) { return *s && strspn(s, set) == strlen(s); }

static int is_int_text(const char *s) {
    if (!strncmp(s, "0o", 2)) return all_of(s + 2, "01234567");
    if (!strncmp(s, "0x", 2)) return all_of(s + 2, "0123456789abcdefABCDEF");
    if (*s == '-' || *s == '+') s++;
    return all_of(s, "0123456789");
}

static int is_float_text(const char *s) {
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) return 1;
    if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) return 1;
    // [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )?
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    return *p == '\0';
}

static ConfigKind resolve_plain(const char *s) {
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) return CK_NULL;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "false") ||
        !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return CK_BOOL;
    if (is_int_text(s)) return CK_INT;
    if (is_float_text(s)) return CK_FLOAT;
    return CK_STR;
}

static int parse_int_text(const char *s, long *out) {
    errno = 0;
    char *end;
    long v;
    if (!strncmp(s, "0o", 2)) v = strtol(s + 2, &end, 8);
    else if (!strncmp(s, "0x", 2)) v = strtol(s + 2, &end, 16);
    else v = strtol(s, &end, 10);
    if (errno == ERANGE || *end) return -1;
    *out = v;
    return 0;
}

static double parse_float_text(const char *s) {
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = (*p++ == '-');
    if (!strcasecmp(p, ".inf")) return neg ? -INFINITY : INFINITY;
    if (!strcasecmp(p, ".nan")) return NAN;
    return strtod(s, NULL);
}

// Shortest text that reads back as the same double, always marked as a float.
static char *canonical_float(double v) {
    char buf[64];
    if (isnan(v)) return strdup(".nan");
    if (isinf(v)) return strdup(v > 0 ? ".inf" : "-.inf");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    return strdup(buf);
}

// Sets n to the scalar `text` of kind k (canonical text for numbers and booleans).
static void set_scalar(ConfigNode *n, ConfigKind k, const char *text) {
    free(n->text);
    for (int i = 0; i < n->n_kids; i++) cfgnode_free(n->kids[i]);
    free(n->kids);
    n->kids = NULL;
    n->n_kids = 0;
    n->open = 0;
    n->kind = k;
    char buf[32];
    if (k == CK_INT) {
        long v = 0;
        parse_int_text(text, &v);
        snprintf(buf, sizeof buf, "%ld", v);
        n->text = strdup(buf);
    } else if (k == CK_FLOAT) {
        n->text = canonical_float(parse_float_text(text));
    } else if (k == CK_BOOL) {
        n->text = strdup(text[0] == 't' || text[0] == 'T' ? "true" : "false");
    } else if (k == CK_NULL) {
        n->text = strdup("");
    } else {
        n->text = strdup(text);
    }
}

static void set_origin(ConfigNode *n, const char *origin) {
    free(n->origin);
    n->origin = strdup(origin);
}

// ---- nearest valid key (optimal string alignment distance: edits and adjacent swaps cost 1) ----

static int osa_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    int *d = malloc(sizeof(int) * (size_t)(n + 1) * (size_t)(m + 1));
#define D(i, j) d[(i) * (m + 1) + (j)]
    for (int i = 0; i <= n; i++) D(i, 0) = i;
    for (int j = 0; j <= m; j++) D(0, j) = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = D(i - 1, j) + 1;
            if (D(i, j - 1) + 1 < v) v = D(i, j - 1) + 1;
            if (D(i - 1, j - 1) + cost < v) v = D(i - 1, j - 1) + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && D(i - 2, j - 2) + 1 < v)
                v = D(i - 2, j - 2) + 1;
            D(i, j) = v;
        }
    int r = D(n, m);
#undef D
    free(d);
    return r;
}

typedef struct { const char *query; char best[512]; int best_d; } Nearest;

static void nearest_walk(const ConfigNode *n, const char *prefix, Nearest *acc) {
    for (int i = 0; i < n->n_kids; i++) {
        const ConfigNode *k = n->kids[i];
        char path[512];
        if (n->kind == CK_MAP) snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k->key);
        else if (i == 0) snprintf(path, sizeof path, "%s[]", prefix);
        else break;  // a list's item schema is its first item
        if (n->kind == CK_MAP) {
            int d = osa_distance(acc->query, path);
            if (d < acc->best_d) { acc->best_d = d; snprintf(acc->best, sizeof acc->best, "%s", path); }
        }
        if (k->kind == CK_MAP || k->kind == CK_LIST) nearest_walk(k, path, acc);
    }
}

// " (did you mean 'x'?)" or "" when nothing is close.
static const char *suggestion(const ConfigNode *schema_root, const char *path) {
    static _Thread_local char out[600];
    Nearest acc = {.query = path, .best_d = INT_MAX};
    nearest_walk(schema_root, "", &acc);
    int len = (int)strlen(path);
    if (acc.best_d == INT_MAX || (acc.best_d > 2 && acc.best_d > len / 3)) return "";
    snprintf(out, sizeof out, " (did you mean '%s'?)", acc.best);
    return out;
}

// ---- applying parsed YAML onto the value tree ----

static int apply(Source *s, yaml_node_t *raw, ConfigNode *target, const ConfigNode *schema, const char *path);

static const char *raw_kind(const yaml_node_t *raw) {
    if (raw->type == YAML_MAPPING_NODE) return "a mapping";
    if (raw->type == YAML_SEQUENCE_NODE) return "a list";
    return "a scalar";
}

static int check_duplicates(Source *s, yaml_node_t *map, const char *path) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(s->doc, p->key);
        if (k->type != YAML_SCALAR_NODE) return err_set("%s: %s: a key must be a plain name", where(s, k), path);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(s->doc, q->key);
            if (k2->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, (char *)k2->data.scalar.value))
                return err_set("%s: duplicate key '%s%s%s' (first at line %zu)", where(s, k), path, *path ? "." : "",
                               (char *)k->data.scalar.value, k2->start_mark.line + 1);
        }
    }
    return 0;
}

// A node built from YAML with no schema: scalars resolved by the core schema, mappings open.
static ConfigNode *from_raw(Source *s, yaml_node_t *raw, const char *key, const char *path) {
    ConfigNode *n = cfgnode_new(key, CK_NULL);
    set_origin(n, where(s, raw));
    if (raw->type == YAML_SCALAR_NODE) {
        const char *text = (char *)raw->data.scalar.value;
        set_scalar(n, raw->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(text) : CK_STR, text);
    } else if (raw->type == YAML_SEQUENCE_NODE) {
        n->kind = CK_LIST;
        for (yaml_node_item_t *it = raw->data.sequence.items.start; it < raw->data.sequence.items.top; it++) {
            char sub[600];
            snprintf(sub, sizeof sub, "%s[]", path);
            ConfigNode *k = from_raw(s, yaml_document_get_node(s->doc, *it), NULL, sub);
            if (!k) { cfgnode_free(n); return NULL; }
            cfgnode_add(n, k);
        }
    } else if (raw->type == YAML_MAPPING_NODE) {
        n->kind = CK_MAP;
        n->open = raw->data.mapping.pairs.top == raw->data.mapping.pairs.start;
        if (check_duplicates(s, raw, path) < 0) { cfgnode_free(n); return NULL; }
        for (yaml_node_pair_t *p = raw->data.mapping.pairs.start; p < raw->data.mapping.pairs.top; p++) {
            const char *k = (char *)yaml_document_get_node(s->doc, p->key)->data.scalar.value;
            char sub[600];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            ConfigNode *kid = from_raw(s, yaml_document_get_node(s->doc, p->value), k, sub);
            if (!kid) { cfgnode_free(n); return NULL; }
            cfgnode_add(n, kid);
        }
    } else {
        cfgnode_free(n);
        err_set("%s: %s: unsupported YAML node", where(s, raw), path);
        return NULL;
    }
    return n;
}

static void replace_with(ConfigNode *target, ConfigNode *src) {
    for (int i = 0; i < target->n_kids; i++) cfgnode_free(target->kids[i]);
    free(target->kids);
    free(target->text);
    free(target->origin);
    target->kind = src->kind;
    target->text = src->text;
    target->kids = src->kids;
    target->n_kids = src->n_kids;
    target->open = src->open;
    target->origin = src->origin;
    free(src->key);
    free(src);
}

// Open maps keep their keys sorted, so the composed text does not depend on the order keys were given in.
static ConfigNode *open_map_child(ConfigNode *map, const char *key) {
    ConfigNode *c = cfgnode_child(map, key);
    if (c) return c;
    c = cfgnode_new(key, CK_NULL);
    c->text = strdup("");
    cfgnode_add(map, c);
    for (int i = map->n_kids - 1; i > 0 && strcmp(map->kids[i - 1]->key, key) > 0; i--) {
        map->kids[i] = map->kids[i - 1];
        map->kids[i - 1] = c;
    }
    return c;
}

static int apply_scalar(Source *s, yaml_node_t *raw, ConfigNode *target, ConfigKind want, const char *path) {
    if (raw->type != YAML_SCALAR_NODE)
        return err_set("%s: %s: expected %s, got %s", where(s, raw), path, cfgkind_name(want), raw_kind(raw));
    const char *text = (char *)raw->data.scalar.value;
    int plain = raw->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    ConfigKind got = plain ? resolve_plain(text) : CK_STR;
    ConfigKind set = want;
    switch (want) {
    case CK_STR:
        if (got == CK_NULL && *text) return err_set("%s: %s: expected a string, got null", where(s, raw), path);
        set_scalar(target, CK_STR, text);
        set_origin(target, where(s, raw));
        return 0;
    case CK_INT: {
        long v;
        if (got != CK_INT || parse_int_text(text, &v) < 0)
            return err_set("%s: %s: expected an integer, got '%s'", where(s, raw), path, text);
        break;
    }
    case CK_FLOAT:
        if (got != CK_INT && got != CK_FLOAT)
            return err_set("%s: %s: expected a number, got '%s'", where(s, raw), path, text);
        break;
    case CK_BOOL:
        if (got != CK_BOOL)
            return err_set("%s: %s: expected a boolean (true/false), got '%s'", where(s, raw), path, text);
        break;
    default:  // CK_NULL schema: any scalar
        set = got;
        break;
    }
    set_scalar(target, set, text);
    set_origin(target, where(s, raw));
    return 0;
}

// A fresh list item from a mapping item schema: its keys, with empty values (strings "", numbers 0, false).
static ConfigNode *blank_item(const ConfigNode *item_schema) {
    ConfigNode *n = cfgnode_copy(item_schema);
    for (int i = 0; i < n->n_kids; i++) {
        ConfigNode *k = n->kids[i];
        if (k->kind == CK_STR || k->kind == CK_NULL) set_scalar(k, k->kind, "");
        else if (k->kind == CK_INT || k->kind == CK_FLOAT) set_scalar(k, k->kind, "0");
        else if (k->kind == CK_BOOL) set_scalar(k, k->kind, "false");
        else if (k->kind == CK_LIST) {
            for (int j = 0; j < k->n_kids; j++) cfgnode_free(k->kids[j]);
            k->n_kids = 0;
        }
    }
    return n;
}

static int apply_list(Source *s, yaml_node_t *raw, ConfigNode *target, const ConfigNode *schema, const char *path) {
    if (raw->type != YAML_SEQUENCE_NODE)
        return err_set("%s: %s: expected a list, got %s", where(s, raw), path, raw_kind(raw));
    const ConfigNode *item = schema->n_kids > 0 ? schema->kids[0] : NULL;
    ConfigNode *fresh = cfgnode_new(target->key, CK_LIST);
    set_origin(fresh, where(s, raw));
    char sub[600];
    snprintf(sub, sizeof sub, "%s[]", path);
    for (yaml_node_item_t *it = raw->data.sequence.items.start; it < raw->data.sequence.items.top; it++) {
        yaml_node_t *r = yaml_document_get_node(s->doc, *it);
        ConfigNode *n;
        if (!item) {
            n = from_raw(s, r, NULL, sub);
            if (!n) { cfgnode_free(fresh); return -1; }
        } else if (item->kind == CK_MAP && r->type == YAML_SCALAR_NODE) {
            n = cfgnode_new(NULL, CK_STR);  // a plain name standing for the item
            if (apply_scalar(s, r, n, CK_STR, sub) < 0) { cfgnode_free(n); cfgnode_free(fresh); return -1; }
        } else {
            n = item->kind == CK_MAP ? blank_item(item) : cfgnode_new(NULL, item->kind);
            if (apply(s, r, n, item, sub) < 0) { cfgnode_free(n); cfgnode_free(fresh); return -1; }
        }
        cfgnode_add(fresh, n);
    }
    replace_with(target, fresh);
    return 0;
}

static int apply_map(Source *s, yaml_node_t *raw, ConfigNode *target, const ConfigNode *schema, const char *path) {
    if (raw->type != YAML_MAPPING_NODE) {
        if (raw->type == YAML_SCALAR_NODE && raw->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            resolve_plain((char *)raw->data.scalar.value) == CK_NULL)
            return 0;  // "section:" with nothing under it
        return err_set("%s: %s: expected a mapping, got %s", where(s, raw), *path ? path : "top level", raw_kind(raw));
    }
    if (check_duplicates(s, raw, path) < 0) return -1;
    for (yaml_node_pair_t *p = raw->data.mapping.pairs.start; p < raw->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(s->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(s->doc, p->value);
        const char *k = (char *)kn->data.scalar.value;
        if (!*path && !s->override && s->schema_root == schema && !strcmp(k, "base")) continue;  // handled by the loader
        char sub[600];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
        const ConfigNode *ks = schema ? cfgnode_child(schema, k) : NULL;
        if (schema && !ks && !schema->open)
            return err_set("%s: unknown key '%s'%s", where(s, kn), sub, suggestion(s->schema_root, sub));
        ConfigNode *kt = cfgnode_child(target, k);
        if (!kt) kt = open_map_child(target, k);
        if (apply(s, vn, kt, ks, sub) < 0) return -1;
    }
    return 0;
}

static int apply(Source *s, yaml_node_t *raw, ConfigNode *target, const ConfigNode *schema, const char *path) {
    if (!schema) {  // inside an open map: merge mappings, replace anything else
        if (raw->type == YAML_MAPPING_NODE && target->kind == CK_MAP) return apply_map(s, raw, target, NULL, path);
        ConfigNode *n = from_raw(s, raw, target->key, path);
        if (!n) return -1;
        replace_with(target, n);
        return 0;
    }
    if (schema->kind == CK_MAP) return apply_map(s, raw, target, schema, path);
    if (schema->kind == CK_LIST) return apply_list(s, raw, target, schema, path);
    return apply_scalar(s, raw, target, schema->kind, path);
}

// ---- files ----

static int parse_yaml(const char *label, const char *text, size_t len, yaml_document_t *doc) {
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&parser, doc);
    if (!ok) {
        if (parser.context)
            err_set("%s:%zu:%zu: %s (%s at line %zu)", label, parser.problem_mark.line + 1,
                    parser.problem_mark.column + 1, parser.problem, parser.context, parser.context_mark.line + 1);
        else
            err_set("%s:%zu:%zu: %s", label, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "cannot parse YAML");
    }
    yaml_parser_delete(&parser);
    return ok ? 0 : -1;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

#define MAX_BASE_DEPTH 32

static int load_file(const char *path, ConfigNode *root, const ConfigNode *schema, const char **stack, int depth);

static int load_bases(Source *s, const char *path, yaml_node_t *base, ConfigNode *root, const ConfigNode *schema,
                      const char **stack, int depth) {
    yaml_node_t *items[256];
    int n = 0;
    if (base->type == YAML_SCALAR_NODE) {
        items[n++] = base;
    } else if (base->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = base->data.sequence.items.start; it < base->data.sequence.items.top && n < 256; it++)
            items[n++] = yaml_document_get_node(s->doc, *it);
    } else {
        return err_set("%s: base: expected a file name or a list of file names", where(s, base));
    }
    char *dir = dir_of(path);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (items[i]->type != YAML_SCALAR_NODE) { rc = err_set("%s: base: expected a file name", where(s, items[i])); break; }
        const char *name = (char *)items[i]->data.scalar.value;
        char *full = name[0] == '/' ? strdup(name) : fs_join(dir, name);
        if (!fs_exists(full)) {
            rc = err_set("%s: base file '%s' not found (looked for %s)", where(s, items[i]), name, full);
        } else {
            char *real = realpath(full, NULL);
            for (int j = 0; j < depth && rc == 0; j++)
                if (real && !strcmp(stack[j], real))
                    rc = err_set("%s: base file '%s' includes itself (a cycle)", where(s, items[i]), name);
            if (rc == 0) rc = load_file(full, root, schema, stack, depth);
            free(real);
        }
        free(full);
    }
    free(dir);
    return rc;
}

static int load_file(const char *path, ConfigNode *root, const ConfigNode *schema, const char **stack, int depth) {
    if (depth >= MAX_BASE_DEPTH) return err_set("%s: base files nested more than %d deep", path, MAX_BASE_DEPTH);
    size_t len = 0;
    char *text = fs_read_file(path, &len);
    if (!text) return -1;
    yaml_document_t doc;
    if (parse_yaml(path, text, len, &doc) < 0) { free(text); return -1; }
    free(text);
    char *real = realpath(path, NULL);
    stack[depth] = real ? real : path;
    Source s = {.file = path, .doc = &doc, .schema_root = schema};
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (top && top->type == YAML_MAPPING_NODE) {
        if ((rc = check_duplicates(&s, top, "")) == 0) {
            for (yaml_node_pair_t *p = top->data.mapping.pairs.start; p < top->data.mapping.pairs.top && rc == 0; p++) {
                yaml_node_t *k = yaml_document_get_node(&doc, p->key);
                if (!strcmp((char *)k->data.scalar.value, "base"))
                    rc = load_bases(&s, path, yaml_document_get_node(&doc, p->value), root, schema, stack, depth + 1);
            }
        }
        if (rc == 0) rc = apply(&s, top, root, schema, "");
    } else if (top && !(top->type == YAML_SCALAR_NODE && !*(char *)top->data.scalar.value)) {
        rc = err_set("%s: expected a mapping of sections at the top level, got %s", where(&s, top), raw_kind(top));
    }
    yaml_document_delete(&doc);
    free(real);
    return rc;
}

static ConfigNode *load_schema(const char *path) {
    size_t len = 0;
    char *text = fs_read_file(path, &len);
    if (!text) return NULL;
    yaml_document_t doc;
    if (parse_yaml(path, text, len, &doc) < 0) { free(text); return NULL; }
    free(text);
    Source s = {.file = path, .doc = &doc};
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    ConfigNode *root = NULL;
    if (!top || top->type != YAML_MAPPING_NODE) err_set("%s: expected a mapping of sections", path);
    else root = from_raw(&s, top, NULL, "");
    if (root) root->open = 0;
    yaml_document_delete(&doc);
    return root;
}

// ---- overrides ----

static int apply_override(Config *cfg, const char *ov) {
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov) return err_set("override '%s': expected key=value", ov);
    char key[512];
    size_t klen = (size_t)(eq - ov);
    if (klen >= sizeof key) return err_set("override '%s': key too long", ov);
    memcpy(key, ov, klen);
    key[klen] = '\0';
    const char *value = eq + 1;

    // Walk schema and values together; below an open map (or a null-typed key) anything goes.
    const ConfigNode *sc = cfg->schema;
    ConfigNode *t = cfg->root;
    char *save, *parts = strdup(key);
    for (char *part = strtok_r(parts, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        if (t->kind != CK_MAP && !(sc == NULL && t->kind == CK_NULL)) {
            free(parts);
            return err_set("override '%s': '%s' is not a section%s", ov, key, suggestion(cfg->schema, key));
        }
        if (t->kind == CK_NULL) { t->kind = CK_MAP; t->open = 1; }
        const ConfigNode *ks = sc ? cfgnode_child(sc, part) : NULL;
        if (sc && !ks && !sc->open) {
            free(parts);
            return err_set("override '%s': unknown key '%s'%s", ov, key, suggestion(cfg->schema, key));
        }
        sc = ks;
        ConfigNode *kt = cfgnode_child(t, part);
        t = kt ? kt : open_map_child(t, part);
    }
    free(parts);

    if (!*value) {  // "key=" sets an empty string (only where a string is expected)
        if (sc && sc->kind != CK_STR && sc->kind != CK_NULL)
            return err_set("override '%s': %s: expected %s, got nothing", ov, key, cfgkind_name(sc->kind));
        set_scalar(t, CK_STR, "");
        char origin[600];
        snprintf(origin, sizeof origin, "override %s", ov);
        set_origin(t, origin);
        return 0;
    }
    yaml_document_t doc;
    char label[600];
    snprintf(label, sizeof label, "override '%s'", ov);
    if (parse_yaml(label, value, strlen(value), &doc) < 0) return -1;
    Source s = {.file = NULL, .override = ov, .doc = &doc, .schema_root = cfg->schema};
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    int rc = top ? apply(&s, top, t, sc, key) : err_set("override '%s': no value", ov);
    yaml_document_delete(&doc);
    if (rc == 0) {  // origins of overridden values read "override k=v" (not "override 'k=v'")
        char origin[600];
        snprintf(origin, sizeof origin, "override %s", ov);
        set_origin(t, origin);
    }
    return rc;
}

// ---- public ----

Config *config_load(const char *path, const char *defaults_path, int n_overrides, char **overrides) {
    if (!defaults_path && !(defaults_path = config_find_defaults())) return NULL;
    Config *cfg = calloc(1, sizeof *cfg);
    if (!(cfg->schema = load_schema(defaults_path))) { free(cfg); return NULL; }
    cfg->root = cfgnode_copy(cfg->schema);
    const char *stack[MAX_BASE_DEPTH + 1];
    if (path && load_file(path, cfg->root, cfg->schema, stack, 0) < 0) goto fail;
    for (int i = 0; i < n_overrides; i++)
        if (apply_override(cfg, overrides[i]) < 0) goto fail;
    if (!(cfg->yaml = cfgnode_to_yaml(cfg->root))) goto fail;
    sha256_hex(cfg->yaml, strlen(cfg->yaml), cfg->hash);
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

void config_free(Config *cfg) {
    if (!cfg) return;
    cfgnode_free(cfg->schema);
    cfgnode_free(cfg->root);
    free(cfg->yaml);
    free(cfg);
}

const char *config_find_defaults(void) {
    static char found[4096];
    const char *env = getenv("KANOCLIP_DEFAULTS");
    if (env && *env) {
        if (!fs_exists(env)) { err_set("KANOCLIP_DEFAULTS=%s: no such file", env); return NULL; }
        snprintf(found, sizeof found, "%s", env);
        return found;
    }
    if (fs_find_repo_file("experiments/defaults.yaml", found, sizeof found) == 0) return found;
    err_set("experiments/defaults.yaml not found (run from the repository root or set KANOCLIP_DEFAULTS)");
    return NULL;
}
