// Config layer: composition through base lists, typed overrides, every error with its place, canonical text.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "tmpdir.h"
#include "common/fsutil.h"
#include "harness/config/config.h"

static char dir[64];

static void setup(void) {
    strcpy(dir, "/tmp/kanoclip-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static char *put(const char *name, const char *text) {
    char *p = fs_join(dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    fs_mkdirs(p);
    *slash = '/';
    cr_assert_eq(fs_write_atomic(p, text, strlen(text)), 0);
    return p;
}

#define DEFAULTS "experiments/defaults.yaml"

static Config *load_ok(const char *path, int n, char **ov) {
    Config *c = config_load(path, DEFAULTS, n, ov);
    cr_assert_not_null(c, "load failed: %s", err_msg());
    return c;
}

static void load_fails(const char *path, int n, char **ov, const char *expect) {
    Config *c = config_load(path, DEFAULTS, n, ov);
    cr_assert_null(c, "expected failure with '%s'", expect);
    cr_assert(strstr(err_msg(), expect) != NULL, "message '%s' lacks '%s'", err_msg(), expect);
}

static void teardown(void) { tmpdir_remove(dir); }
TestSuite(config, .init = setup, .fini = teardown);

Test(config, defaults_alone_have_every_section) {
    Config *c = load_ok(NULL, 0, NULL);
    long v;
    double f;
    const char *s;
    cr_assert_eq(config_get_int(c, "train.epochs", &v), 0);
    cr_assert_eq(v, 15);
    cr_assert_eq(config_get_float(c, "train.lr", &f), 0);
    cr_assert_float_eq(f, 1e-3, 1e-15);
    cr_assert_eq(config_get_str(c, "run.out_dir", &s), 0);
    cr_assert_str_eq(s, "results");
    cr_assert_eq(config_list_len(c, "model.layers"), 4);
    cr_assert_eq(config_list_int(c, "model.layers", 3, &v), 0);
    cr_assert_eq(v, 24);
    // typed getters refuse the wrong type and name the key
    cr_assert_eq(config_get_int(c, "run.name", &v), -1);
    cr_assert(strstr(err_msg(), "run.name") != NULL);
    int b;
    cr_assert_eq(config_get_bool(c, "train.nope", &b), -1);
    cr_assert(strstr(err_msg(), "train.nope") != NULL);
    config_free(c);
}

Test(config, base_chain_later_overrides_earlier_file_last) {
    free(put("common/a.yaml", "train:\n  epochs: 3\n  lr: 0.5\nrun:\n  name: from-a\n"));
    free(put("common/b.yaml", "base: a.yaml\ntrain:\n  epochs: 4\n"));
    free(put("c.yaml", "train:\n  batch_size: 2\n  epochs: 5\n"));
    char *exp = put("exp.yaml", "base: [common/b.yaml, c.yaml]\nrun:\n  name: mine\n");
    Config *c = load_ok(exp, 0, NULL);
    long v;
    double f;
    const char *s;
    config_get_int(c, "train.epochs", &v);
    cr_assert_eq(v, 5, "c.yaml comes after b.yaml");
    config_get_float(c, "train.lr", &f);
    cr_assert_float_eq(f, 0.5, 0);
    config_get_int(c, "train.batch_size", &v);
    cr_assert_eq(v, 2);
    config_get_str(c, "run.name", &s);
    cr_assert_str_eq(s, "mine", "the file itself comes last");
    config_get_int(c, "train.log_every", &v);
    cr_assert_eq(v, 10, "untouched keys keep their defaults");
    cr_assert(strstr(config_origin(c, "train.epochs"), "c.yaml:3:11") != NULL, "%s", config_origin(c, "train.epochs"));
    cr_assert(strstr(config_origin(c, "train.lr"), "a.yaml:3:7") != NULL, "%s", config_origin(c, "train.lr"));
    config_free(c);
    free(exp);
}

Test(config, typed_overrides) {
    char *exp = put("exp.yaml", "train:\n  epochs: 3\n");
    char *ov[] = {"train.epochs=1", "train.lr=2e-4", "eval.save_maps=true", "run.name=abc",
                  "eval.datasets=[visa,{name: m2, type: mpdd, root: /d/m}]", "model.layers=[1,2]", "model.checkpoint="};
    Config *c = load_ok(exp, 7, ov);
    long v;
    double f;
    int b;
    const char *s;
    config_get_int(c, "train.epochs", &v);
    cr_assert_eq(v, 1);
    config_get_float(c, "train.lr", &f);
    cr_assert_float_eq(f, 2e-4, 1e-18);
    config_get_bool(c, "eval.save_maps", &b);
    cr_assert_eq(b, 1);
    config_get_str(c, "run.name", &s);
    cr_assert_str_eq(s, "abc");
    config_get_str(c, "model.checkpoint", &s);
    cr_assert_str_eq(s, "");
    cr_assert_eq(config_list_len(c, "model.layers"), 2);
    cr_assert_eq(config_list_len(c, "eval.datasets"), 2);
    ConfigDataset d;
    cr_assert_eq(config_dataset(c, "eval.datasets", 0, &d), 0, "%s", err_msg());
    cr_assert_str_eq(d.name, "visa");
    cr_assert_str_eq(d.type, "visa");
    cr_assert_str_eq(d.root, "data/visa", "a plain name takes its root from data.roots");
    cr_assert_eq(config_dataset(c, "eval.datasets", 1, &d), 0, "%s", err_msg());
    cr_assert_str_eq(d.name, "m2");
    cr_assert_str_eq(d.type, "mpdd");
    cr_assert_str_eq(d.root, "/d/m");
    cr_assert_str_eq(config_list_field(c, "eval.datasets", 1, "type"), "mpdd");
    cr_assert_str_eq(config_origin(c, "train.epochs"), "override train.epochs=1");
    config_free(c);
    free(exp);
}

Test(config, float_key_accepts_int_but_int_key_refuses_float) {
    char *ov1[] = {"train.lr=1"};
    Config *c = load_ok(NULL, 1, ov1);
    double f;
    cr_assert_eq(config_get_float(c, "train.lr", &f), 0);
    cr_assert_float_eq(f, 1.0, 0);
    config_free(c);
    char *ov2[] = {"train.epochs=1.5"};
    load_fails(NULL, 1, ov2, "override 'train.epochs=1.5': train.epochs: expected an integer, got '1.5'");
    char *ov3[] = {"eval.save_maps=yes"};  // YAML 1.2 core: yes is a string, not a boolean
    load_fails(NULL, 1, ov3, "expected a boolean (true/false), got 'yes'");
    char *ov4[] = {"model.layers=[6,x]"};
    load_fails(NULL, 1, ov4, "model.layers[]: expected an integer, got 'x'");
}

Test(config, type_mismatch_in_file_names_line_and_column) {
    char *exp = put("bad.yaml", "run:\n  name: x\ntrain:\n  epochs: many\n");
    char want[256];
    snprintf(want, sizeof want, "%s:4:11: train.epochs: expected an integer, got 'many'", exp);
    load_fails(exp, 0, NULL, want);
    free(exp);
    exp = put("bad2.yaml", "train:\n  epochs: [1, 2]\n");
    load_fails(exp, 0, NULL, "bad2.yaml:2:11: train.epochs: expected an integer, got a list");
    free(exp);
    exp = put("bad3.yaml", "train: 5\n");
    load_fails(exp, 0, NULL, "bad3.yaml:1:8: train: expected a mapping, got a scalar");
    free(exp);
}

Test(config, unknown_key_suggests_nearest) {
    char *exp = put("typo.yaml", "train:\n  lr: 0.1\n  epoch: 3\n");
    load_fails(exp, 0, NULL, "typo.yaml:3:3: unknown key 'train.epoch' (did you mean 'train.epochs'?)");
    free(exp);
    exp = put("typo2.yaml", "trian:\n  epochs: 3\n");
    load_fails(exp, 0, NULL, "typo2.yaml:1:1: unknown key 'trian' (did you mean 'train'?)");
    free(exp);
    exp = put("typo3.yaml", "eval:\n  datasets:\n    - {name: a, type: visa, rot: x}\n");
    load_fails(exp, 0, NULL, "typo3.yaml:3:29: unknown key 'eval.datasets[].rot' (did you mean 'eval.datasets[].root'?)");
    free(exp);
    exp = put("far.yaml", "zzzzzzzzzz: 1\n");
    load_fails(exp, 0, NULL, "far.yaml:1:1: unknown key 'zzzzzzzzzz'");
    cr_assert(strstr(err_msg(), "did you mean") == NULL, "no suggestion when nothing is close: %s", err_msg());
    free(exp);
    char *ov[] = {"train.epoch=3"};
    load_fails(NULL, 1, ov, "override 'train.epoch=3': unknown key 'train.epoch' (did you mean 'train.epochs'?)");
    char *ov2[] = {"trian.epochs=3"};
    load_fails(NULL, 1, ov2, "unknown key 'trian.epochs' (did you mean 'train.epochs'?)");
}

Test(config, duplicate_key_is_an_error) {
    char *exp = put("dup.yaml", "train:\n  epochs: 3\n  lr: 0.1\n  epochs: 4\n");
    load_fails(exp, 0, NULL, "dup.yaml:4:3: duplicate key 'train.epochs' (first at line 2)");
    free(exp);
    exp = put("dup2.yaml", "train:\n  epochs: 3\ntrain:\n  lr: 0.1\n");
    load_fails(exp, 0, NULL, "dup2.yaml:3:1: duplicate key 'train' (first at line 1)");
    free(exp);
}

Test(config, missing_base_and_cycles) {
    char *exp = put("m.yaml", "run:\n  name: a\nbase: [nothere.yaml]\n");
    load_fails(exp, 0, NULL, "m.yaml:3:8: base file 'nothere.yaml' not found");
    free(exp);
    free(put("x.yaml", "base: y.yaml\n"));
    char *y = put("y.yaml", "base: x.yaml\n");
    load_fails(y, 0, NULL, "includes itself");
    free(y);
}

Test(config, yaml_syntax_error_has_position) {
    char *exp = put("syn.yaml", "train:\n  epochs: [1, 2\n");
    load_fails(exp, 0, NULL, "syn.yaml:");
    cr_assert(strstr(err_msg(), "flow sequence") != NULL || strstr(err_msg(), "did not find") != NULL, "%s", err_msg());
    free(exp);
    char *ov[] = {"train.epochs"};
    load_fails(NULL, 1, ov, "override 'train.epochs': expected key=value");
}

Test(config, write_reload_gives_same_bytes_and_hash) {
    char *exp = put("e.yaml", "run:\n  name: \"123\"\ntrain:\n  lr: 0.0001\neval:\n  datasets: [mpdd, {type: btad}]\n");
    char *ov[] = {"train.beta2=0.99", "eval.save_maps=true"};
    Config *c = load_ok(exp, 2, ov);
    char *out = fs_join(dir, "composed.yaml");
    cr_assert_eq(config_write_yaml(c, out), 0);
    Config *c2 = load_ok(out, 0, NULL);
    cr_assert_str_eq(config_yaml(c), config_yaml(c2));
    cr_assert_str_eq(config_hash(c), config_hash(c2));
    cr_assert_eq(strlen(config_hash(c)), 64);
    const char *s;
    config_get_str(c2, "run.name", &s);
    cr_assert_str_eq(s, "123", "a string that looks like a number survives the round trip");
    // a different value changes the hash
    char *ov3[] = {"train.beta2=0.98"};
    Config *c3 = load_ok(exp, 1, ov3);
    cr_assert_str_neq(config_hash(c), config_hash(c3));
    // "1e-4" and "0.0001" are the same number, so the same config
    char *ov4[] = {"train.lr=1e-4", "train.beta2=0.99", "eval.save_maps=true"};
    Config *c4 = load_ok(exp, 3, ov4);
    cr_assert_str_eq(config_hash(c), config_hash(c4));
    config_free(c);
    config_free(c2);
    config_free(c3);
    config_free(c4);
    free(out);
    free(exp);
}

Test(config, open_maps_take_any_key_sorted) {
    char *d = put("defaults.yaml", "run:\n  name: x\nextra: {}\nm:\n  free: null\n");
    char *exp = put("o.yaml", "extra:\n  zeta: 1\n  alpha: [a, b]\nm:\n  free: 2.5\n");
    char *ov[] = {"extra.mid.deep=true"};
    Config *c = config_load(exp, d, 1, ov);
    cr_assert_not_null(c, "%s", err_msg());
    cr_assert_eq(config_map_len(c, "extra"), 3);
    cr_assert_str_eq(config_map_key(c, "extra", 0), "alpha");
    cr_assert_str_eq(config_map_key(c, "extra", 1), "mid");
    cr_assert_str_eq(config_map_key(c, "extra", 2), "zeta");
    int b;
    cr_assert_eq(config_get_bool(c, "extra.mid.deep", &b), 0);
    cr_assert_eq(b, 1);
    double f;
    cr_assert_eq(config_get_float(c, "m.free", &f), 0, "a null default takes any scalar");
    cr_assert_float_eq(f, 2.5, 0);
    config_free(c);
    free(d);
    free(exp);
}
