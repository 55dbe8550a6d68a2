// Typed access to a composed config by dotted key.
#include "harness/config/config.h"
#include "harness/config/config_tree.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ConfigNode *need(const Config *cfg, const char *key) {
    const ConfigNode *n = cfgnode_find(cfg->root, key);
    if (!n) err_set("config: no key '%s'", key);
    return n;
}

static int wrong(const ConfigNode *n, const char *key, const char *want) {
    return err_set("%s: %s: expected %s, got %s", n->origin ? n->origin : "config", key, want, cfgkind_name(n->kind));
}

int config_get_str(const Config *cfg, const char *key, const char **out) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return -1;
    if (n->kind == CK_NULL) { *out = NULL; return 0; }
    if (n->kind != CK_STR) return wrong(n, key, "a string");
    *out = n->text;
    return 0;
}

int config_get_int(const Config *cfg, const char *key, long *out) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return -1;
    if (n->kind != CK_INT) return wrong(n, key, "an integer");
    *out = strtol(n->text, NULL, 10);
    return 0;
}

int config_get_float(const Config *cfg, const char *key, double *out) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return -1;
    if (n->kind != CK_FLOAT && n->kind != CK_INT) return wrong(n, key, "a number");
    const char *t = n->text;
    const char *p = (*t == '-' || *t == '+') ? t + 1 : t;
    if (!strcmp(p, ".inf")) *out = (*t == '-') ? -__builtin_inf() : __builtin_inf();
    else if (!strcmp(p, ".nan")) *out = __builtin_nan("");
    else *out = strtod(t, NULL);
    return 0;
}

int config_get_bool(const Config *cfg, const char *key, int *out) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return -1;
    if (n->kind != CK_BOOL) return wrong(n, key, "a boolean");
    *out = !strcmp(n->text, "true");
    return 0;
}

int config_has(const Config *cfg, const char *key) { return cfgnode_find(cfg->root, key) != NULL; }

int config_list_len(const Config *cfg, const char *key) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return -1;
    if (n->kind != CK_LIST) return wrong(n, key, "a list");
    return n->n_kids;
}

static const ConfigNode *item(const Config *cfg, const char *key, int i) {
    const ConfigNode *n = need(cfg, key);
    if (!n) return NULL;
    if (n->kind != CK_LIST) { wrong(n, key, "a list"); return NULL; }
    if (i < 0 || i >= n->n_kids) { err_set("%s: %s: no item %d (the list has %d)", n->origin, key, i, n->n_kids); return NULL; }
    return n->kids[i];
}

const char *config_list_str(const Config *cfg, const char *key, int i) {
    const ConfigNode *it = item(cfg, key, i);
    if (!it) return NULL;
    if (it->kind == CK_LIST || it->kind == CK_MAP) {
        err_set("%s: %s item %d: expected a scalar, got %s", it->origin, key, i, cfgkind_name(it->kind));
        return NULL;
    }
    return it->text;
}

int config_list_int(const Config *cfg, const char *key, int i, long *out) {
    const ConfigNode *it = item(cfg, key, i);
    if (!it) return -1;
    if (it->kind != CK_INT) return err_set("%s: %s item %d: expected an integer", it->origin, key, i);
    *out = strtol(it->text, NULL, 10);
    return 0;
}

const char *config_list_field(const Config *cfg, const char *key, int i, const char *field) {
    const ConfigNode *it = item(cfg, key, i);
    if (!it || it->kind != CK_MAP) return NULL;
    const ConfigNode *f = cfgnode_child(it, field);
    return f && f->kind != CK_LIST && f->kind != CK_MAP ? f->text : NULL;
}

int config_map_len(const Config *cfg, const char *key) {
    const ConfigNode *n = key && *key ? need(cfg, key) : cfg->root;
    if (!n) return -1;
    if (n->kind != CK_MAP) return wrong(n, key, "a mapping");
    return n->n_kids;
}

const char *config_map_key(const Config *cfg, const char *key, int i) {
    const ConfigNode *n = key && *key ? cfgnode_find(cfg->root, key) : cfg->root;
    if (!n || n->kind != CK_MAP || i < 0 || i >= n->n_kids) return NULL;
    return n->kids[i]->key;
}

const char *config_origin(const Config *cfg, const char *key) {
    const ConfigNode *n = cfgnode_find(cfg->root, key);
    return n && n->origin ? n->origin : "defaults";
}

static const char *root_of(const Config *cfg, const char *type) {
    char key[256];
    snprintf(key, sizeof key, "data.roots.%s", type);
    const ConfigNode *n = cfgnode_find(cfg->root, key);
    return n && n->kind == CK_STR ? n->text : NULL;
}

static int fill_dataset(const Config *cfg, const char *what, const char *name, const char *type, const char *root,
                        ConfigDataset *out) {
    if (!type || !*type) type = name;
    if (!type || !*type) return err_set("%s: no dataset type", what);
    if (!name || !*name) name = type;
    if (!root || !*root) root = root_of(cfg, name);
    if (!root || !*root) root = root_of(cfg, type);
    if (!root || !*root) return err_set("%s: no root for dataset '%s' (set root, or data.roots.%s)", what, name, type);
    out->name = name;
    out->type = type;
    out->root = root;
    return 0;
}

int config_dataset(const Config *cfg, const char *list_key, int i, ConfigDataset *out) {
    const ConfigNode *it = item(cfg, list_key, i);
    if (!it) return -1;
    char what[600];
    snprintf(what, sizeof what, "%s: %s item %d", it->origin ? it->origin : "config", list_key, i);
    if (it->kind == CK_STR) return fill_dataset(cfg, what, it->text, NULL, NULL, out);
    if (it->kind != CK_MAP) return err_set("%s: expected a dataset name or {name, type, root}", what);
    const ConfigNode *n = cfgnode_child(it, "name"), *t = cfgnode_child(it, "type"), *r = cfgnode_child(it, "root");
    return fill_dataset(cfg, what, n ? n->text : NULL, t ? t->text : NULL, r ? r->text : NULL, out);
}

int config_train_dataset(const Config *cfg, ConfigDataset *out) {
    const ConfigNode *n = cfgnode_find(cfg->root, "data.train.name"), *t = cfgnode_find(cfg->root, "data.train.type"),
                     *r = cfgnode_find(cfg->root, "data.train.root");
    return fill_dataset(cfg, "data.train", n ? n->text : NULL, t ? t->text : NULL, r ? r->text : NULL, out);
}

const char *config_hash(const Config *cfg) { return cfg->hash; }
const char *config_yaml(const Config *cfg) { return cfg->yaml; }

int config_write_yaml(const Config *cfg, const char *path) {
    return fs_write_atomic(path, cfg->yaml, strlen(cfg->yaml));
}
