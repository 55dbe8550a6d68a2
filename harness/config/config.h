// Experiment configs: YAML files (libyaml) composed through a `base:` list, then key=value overrides.
// experiments/defaults.yaml holds every valid key with its default value: its type is the key's type, and a
// key not in it is an error (with the nearest valid key suggested). Errors name file, line and column.
//
// Composition: defaults < bases of the file (in list order, each composed the same way, paths relative to the
// including file) < the file itself < overrides (in command-line order). Mappings merge key by key; lists and
// scalars replace. Scalars resolve by the YAML 1.2 core schema (true/false, integers, floats, null), never 1.1's
// yes/no/on/off; a quoted scalar is a string. An int is accepted where a float is expected.
// Overrides: "train.epochs=1", "eval.datasets=[visa,mpdd]", "eval.datasets=[{name: v, type: visa, root: d}]",
// "model.checkpoint=" (empty string); the value is parsed as YAML flow text.
#ifndef HARNESS_CONFIG_H
#define HARNESS_CONFIG_H

typedef struct Config Config;

// Loads path over experiments/defaults.yaml (resolved from defaults_path), following `base:` lists
// (relative to the including file), then applies overrides like "train.epochs=1" or "eval.datasets=[visa,mpdd]".
// path may be NULL (defaults plus overrides). NULL with err_set on any error.
Config *config_load(const char *path, const char *defaults_path, int n_overrides, char **overrides);
void config_free(Config *cfg);

// Where experiments/defaults.yaml is: $KANOCLIP_DEFAULTS, else ./experiments/defaults.yaml, else
// <folder of the running binary>/../experiments/defaults.yaml. Static string; NULL with err_set if none exists.
const char *config_find_defaults(void);

// Typed getters by dotted key. -1 with err_set naming the key (and its file:line:col) when the key is
// missing or of another type. config_get_str gives NULL for a null value (keys whose default is null).
int config_get_str(const Config *cfg, const char *key, const char **out);
int config_get_int(const Config *cfg, const char *key, long *out);
int config_get_float(const Config *cfg, const char *key, double *out);
int config_get_bool(const Config *cfg, const char *key, int *out);
// 1 if the key exists (a section, a list or a scalar), else 0.
int config_has(const Config *cfg, const char *key);
// Lists of scalars: the length (-1 with err_set if not a list) and element i as text.
int config_list_len(const Config *cfg, const char *key);
const char *config_list_str(const Config *cfg, const char *key, int i);
// Element i of a list as an integer (-1 with err_set if it is not one).
int config_list_int(const Config *cfg, const char *key, int i, long *out);
// Field of a mapping item of a list ("eval.datasets", 0, "root"); NULL if the item is a plain scalar or lacks it.
const char *config_list_field(const Config *cfg, const char *key, int i, const char *field);
// Keys of a mapping (a section or an open `{}` map), in order: the count (-1 if not a mapping) and key i.
int config_map_len(const Config *cfg, const char *key);
const char *config_map_key(const Config *cfg, const char *key, int i);
// Where a key's value came from ("exp.yaml:12:7" or "override train.epochs=1"), for messages.
const char *config_origin(const Config *cfg, const char *key);

// A dataset entry of a list such as eval.datasets: an item is a name ("visa": type = name, root =
// data.roots.<name>) or a mapping {name, type, root} (empty root: data.roots.<type>; empty name: type).
// The strings point into cfg. -1 with err_set naming the key and item.
typedef struct { const char *name, *type, *root; } ConfigDataset;
int config_dataset(const Config *cfg, const char *list_key, int i, ConfigDataset *out);
// data.train as a ConfigDataset.
int config_train_dataset(const Config *cfg, ConfigDataset *out);

// The composed config as YAML (sorted as in defaults.yaml), written atomically; and its SHA-256 (run identity).
int config_write_yaml(const Config *cfg, const char *path);
const char *config_hash(const Config *cfg);
// The composed YAML text (owned by cfg): what config_write_yaml writes and config_hash hashes.
const char *config_yaml(const Config *cfg);

#endif
