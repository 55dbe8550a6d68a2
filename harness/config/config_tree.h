// Internal to the config layer: the tree a composed config is held in (defaults and values alike).
#ifndef HARNESS_CONFIG_TREE_H
#define HARNESS_CONFIG_TREE_H

typedef enum { CK_NULL, CK_BOOL, CK_INT, CK_FLOAT, CK_STR, CK_LIST, CK_MAP } ConfigKind;

typedef struct ConfigNode ConfigNode;
struct ConfigNode {
    char *key;          // name in the parent mapping; NULL for list items
    ConfigKind kind;
    char *text;         // scalars: canonical text ("" for CK_NULL)
    ConfigNode **kids;  // mapping entries (defaults order; open maps sorted) or list items
    int n_kids;
    int open;           // mappings: accepts any key (the default was `{}`)
    char *origin;       // "file:line:col" or "override k=v"
};

struct Config {
    ConfigNode *schema;  // experiments/defaults.yaml as loaded
    ConfigNode *root;    // the composed values
    char *yaml;          // canonical YAML text of root
    char hash[65];
};

ConfigNode *cfgnode_new(const char *key, ConfigKind kind);
ConfigNode *cfgnode_copy(const ConfigNode *n);
void cfgnode_free(ConfigNode *n);
void cfgnode_add(ConfigNode *parent, ConfigNode *kid);
ConfigNode *cfgnode_child(const ConfigNode *map, const char *key);
// Follows a dotted key through mappings (list items by decimal index); NULL if absent.
ConfigNode *cfgnode_find(const ConfigNode *root, const char *dotted);
const char *cfgkind_name(ConfigKind k);
// Canonical YAML text of the tree (libyaml emitter): malloc'd, NULL with err_set.
char *cfgnode_to_yaml(const ConfigNode *root);

#endif
