// kanoclip synth --out DIR [--layout mvtec|visa] [--classes N] [--class-offset K] [--seed S] [--size 256]
//                [--per-class-normal n] [--per-class-anomalous n] [--train-normal n] [--meta] [--captions]
//                [--overwrite] [--list-classes]
// Writes a procedural anomaly dataset in a real layout (see datasets/synth.h).
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "datasets/synth.h"
#include "common/error.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    if (cli_parse_long(v, lo, hi, out) == 0) return 0;
    fprintf(stderr, "kanoclip synth: %s must be an integer in %ld..%ld, not '%s'\n", opt, lo, hi, v);
    return -1;
}

// 1 when path is a folder holding anything, 0 when it is absent or empty.
static int non_empty_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)))
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

int cmd_synth(int argc, char **argv) {
    int overwrite = 0;
    SynthOptions o = {.out = NULL, .layout = "mvtec", .n_classes = 5, .class_offset = 0, .seed = 0, .size = 256,
                      .n_test_normal = 10, .n_test_anomalous = 12, .n_train_normal = 10, .write_meta = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: kanoclip synth --out DIR [--layout mvtec|visa] [--classes N] [--class-offset K] [--seed S]\n"
                   "       [--size 256] [--per-class-normal 10] [--per-class-anomalous 12] [--train-normal 10] [--meta]\n"
                   "       [--captions] [--overwrite]\n"
                   "  --classes N, --class-offset K  take classes K..K+N-1 of the %d built-in ones (--list-classes)\n"
                   "  --meta                         also write DIR/meta.json (AnomalyCLIP schema)\n"
                   "  --captions                     also write DIR/captions.csv (a caption of what each image shows)\n"
                   "  --overwrite                    write into DIR even when it is not empty (refused otherwise)\n",
                   synth_n_classes());
            return 0;
        }
        if (!strcmp(a, "--list-classes")) {
            for (int c = 0; c < synth_n_classes(); c++) {
                printf("%2d %-16s", c, synth_class_name(c));
                for (int k = 0; k < synth_class_n_defects(c); k++)
                    printf(" %s", synth_defect_name(synth_class_defect(c, k)));
                printf("\n");
            }
            return 0;
        }
        if (!strcmp(a, "--meta")) { o.write_meta = 1; continue; }
        if (!strcmp(a, "--captions")) { o.write_captions = 1; continue; }
        if (!strcmp(a, "--overwrite")) { overwrite = 1; continue; }
        static const char *const valued[] = {"--out", "--layout", "--seed", "--classes", "--class-offset", "--size",
                                             "--per-class-normal", "--per-class-anomalous", "--train-normal"};
        if (!CLI_IS_ONE_OF(a, valued)) { fprintf(stderr, "kanoclip synth: unknown option %s\n", a); return 2; }
        if (i + 1 >= argc) { fprintf(stderr, "kanoclip synth: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        long x = 0;
        if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--layout")) {
            if (strcmp(v, "mvtec") != 0 && strcmp(v, "visa") != 0) {
                fprintf(stderr, "kanoclip synth: --layout must be mvtec or visa, not '%s'\n", v);
                return 2;
            }
            o.layout = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "kanoclip synth: --seed must be a non-negative integer, not '%s'\n", v);
                return 2;
            }
            o.seed = s;
        } else if (!strcmp(a, "--classes")) {
            if (parse_int(a, v, 1, synth_n_classes(), &x)) return 2;
            o.n_classes = (int)x;
        } else if (!strcmp(a, "--class-offset")) {
            if (parse_int(a, v, 0, synth_n_classes() - 1, &x)) return 2;
            o.class_offset = (int)x;
        } else if (!strcmp(a, "--size")) {
            if (parse_int(a, v, 16, 8192, &x)) return 2;
            o.size = (int)x;
        } else if (!strcmp(a, "--per-class-normal")) {
            if (parse_int(a, v, 0, 100000, &x)) return 2;
            o.n_test_normal = (int)x;
        } else if (!strcmp(a, "--per-class-anomalous")) {
            if (parse_int(a, v, 0, 100000, &x)) return 2;
            o.n_test_anomalous = (int)x;
        } else { // --train-normal
            if (parse_int(a, v, 0, 100000, &x)) return 2;
            o.n_train_normal = (int)x;
        }
    }
    if (!o.out) {
        fprintf(stderr, "usage: kanoclip synth --out DIR [--layout mvtec|visa] [--classes N] [--seed S] (see --help)\n");
        return 2;
    }
    if (o.class_offset + o.n_classes > synth_n_classes()) {
        fprintf(stderr, "kanoclip synth: --class-offset %d + --classes %d exceeds the %d built-in classes\n",
                o.class_offset, o.n_classes, synth_n_classes());
        return 2;
    }
    if (!overwrite && non_empty_dir(o.out)) {
        fprintf(stderr, "kanoclip synth: %s is not empty; refusing to overwrite it (pass --overwrite to write into it)\n",
                o.out);
        return 1;
    }
    if (synth_write(&o) != 0) return fail_with_error();
    return 0;
}
