// The config tree: construction, copy, lookup by dotted key.
#include "harness/config/config_tree.h"

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

ConfigNode *cfgnode_new(const char *key, ConfigKind kind) {
    ConfigNode *n = calloc(1, sizeof *n);
    n->key = dup_or_null(key);
    n->kind = kind;
    return n;
}

ConfigNode *cfgnode_copy(const ConfigNode *n) {
    ConfigNode *c = cfgnode_new(n->key, n->kind);
    c->text = dup_or_null(n->text);
    c->open = n->open;
    c->origin = dup_or_null(n->origin);
    for (int i = 0; i < n->n_kids; i++) cfgnode_add(c, cfgnode_copy(n->kids[i]));
    return c;
}

void cfgnode_free(ConfigNode *n) {
    if (!n) return;
    for (int i = 0; i < n->n_kids; i++) cfgnode_free(n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->text);
    free(n->origin);
    free(n);
}

void cfgnode_add(ConfigNode *parent, ConfigNode *kid) {
    parent->kids = realloc(parent->kids, (size_t)(parent->n_kids + 1) * sizeof *parent->kids);
    parent->kids[parent->n_kids++] = kid;
}

ConfigNode *cfgnode_child(const ConfigNode *map, const char *key) {
    if (!map || map->kind != CK_MAP) return NULL;
    for (int i = 0; i < map->n_kids; i++)
        if (!strcmp(map->kids[i]->key, key)) return map->kids[i];
    return NULL;
}

ConfigNode *cfgnode_find(const ConfigNode *root, const char *dotted) {
    const ConfigNode *n = root;
    const char *p = dotted;
    char part[256];
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len >= sizeof part) return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (n->kind == CK_MAP) {
            n = cfgnode_child(n, part);
        } else if (n->kind == CK_LIST) {
            char *end;
            long i = strtol(part, &end, 10);
            n = (*end == '\0' && i >= 0 && i < n->n_kids) ? n->kids[i] : NULL;
        } else {
            return NULL;
        }
        p = dot ? dot + 1 : p + len;
    }
    return (ConfigNode *)n;
}

const char *cfgkind_name(ConfigKind k) {
    switch (k) {
    case CK_NULL: return "null";
    case CK_BOOL: return "a boolean (true/false)";
    case CK_INT: return "an integer";
    case CK_FLOAT: return "a number";
    case CK_STR: return "a string";
    case CK_LIST: return "a list";
    case CK_MAP: return "a mapping";
    }
    return "?";
}
