// Experiment configs: YAML files (libyaml) composed through a `base:` list, then key=value overrides.
// experiments/defaults.yaml holds every valid key with its default value: its type is the key's type, and a
// key not in it is an error (with the nearest valid key suggested). Errors name file, line and column.
#ifndef HARNESS_CONFIG_H
#define HARNESS_CONFIG_H

typedef struct Config Config;

// Loads path over experiments/defaults.yaml (resolved from defaults_path), following `base:` lists
// (relative to the including file), then applies overrides like "train.epochs=1" or "eval.datasets=[visa,mpdd]".
Config *config_load(const char *path, const char *defaults_path, int n_overrides, char **overrides);
void config_free(Config *cfg);

// Typed getters by dotted key. -1 with err_set naming the key (and its file:line:col) when the key is
// missing or of another type.
int config_get_str(const Config *cfg, const char *key, const char **out);
int config_get_int(const Config *cfg, const char *key, long *out);
int config_get_float(const Config *cfg, const char *key, double *out);
int config_get_bool(const Config *cfg, const char *key, int *out);
// Lists of scalars: the length (-1 with err_set if not a list) and element i as text.
int config_list_len(const Config *cfg, const char *key);
const char *config_list_str(const Config *cfg, const char *key, int i);
// Where a key's value came from ("exp.yaml:12:7" or "override train.epochs=1"), for messages.
const char *config_origin(const Config *cfg, const char *key);

// The composed config as YAML (sorted as in defaults.yaml), written atomically; and its SHA-256 (run identity).
int config_write_yaml(const Config *cfg, const char *path);
const char *config_hash(const Config *cfg);

#endif
