// kanoclip dataset-info --type TYPE --root DIR [--split test|train] [--write-meta FILE]
//                       [--normal-folders A,B] [--anomalous-folders C,D]
// Prints the split as the reader sees it, one JSON line:
//   {"type": T, "classes": {CLASS: {"normal": n, "anomalous": n, "masks": n}, ...}}
// --write-meta also writes an AnomalyCLIP-style meta.json of the dataset (test, and train where the layout has it).
#include "harness/cli/commands.h"
#include "harness/cli/cli_args.h"
#include "datasets/dataset.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>


static void print_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

static void usage_line(void) {
    fprintf(stderr, "usage: kanoclip dataset-info --type TYPE --root DIR [--split test|train] [--write-meta FILE] "
                    "[--normal-folders A,B] [--anomalous-folders C,D]\n");
}

int cmd_dataset_info(int argc, char **argv) {
    const char *type_name = NULL, *root = NULL, *split_name = "test", *meta_out = NULL;
    DatasetOptions opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: kanoclip dataset-info --type TYPE --root DIR [--split test|train] [--write-meta FILE]\n"
                   "  TYPE: %s\n"
                   "  prints {\"type\": T, \"classes\": {CLASS: {\"normal\": n, \"anomalous\": n, \"masks\": n}}}\n"
                   "  --write-meta FILE       also write an AnomalyCLIP-style meta.json\n"
                   "  --normal-folders A,B    covid19: folders of normal images (default NORMAL,Normal)\n"
                   "  --anomalous-folders C   covid19: folders of anomalous images (default all others)\n",
                   dataset_type_names());
            return 0;
        }
        static const char *const valued[] = {"--type", "--root", "--split", "--write-meta", "--normal-folders",
                                             "--anomalous-folders"};
        if (!CLI_IS_ONE_OF(a, valued)) { fprintf(stderr, "kanoclip dataset-info: unknown option %s\n", a); return 2; }
        if (i + 1 >= argc) { fprintf(stderr, "kanoclip dataset-info: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--root")) root = v;
        else if (!strcmp(a, "--split")) split_name = v;
        else if (!strcmp(a, "--write-meta")) meta_out = v;
        else if (!strcmp(a, "--normal-folders")) opts.normal_folders = v;
        else opts.anomalous_folders = v; // --anomalous-folders
    }
    if (!type_name || !root) { usage_line(); return 2; }
    DatasetType type;
    if (dataset_type_from_name(type_name, &type) != 0) {
        fprintf(stderr, "kanoclip dataset-info: unknown --type '%s' (valid: %s)\n", type_name, dataset_type_names());
        return 2;
    }
    DatasetSplit split;
    if (!strcmp(split_name, "test")) split = SPLIT_TEST;
    else if (!strcmp(split_name, "train")) split = SPLIT_TRAIN;
    else { fprintf(stderr, "kanoclip dataset-info: --split must be test or train, not '%s'\n", split_name); return 2; }

    Dataset *ds = dataset_open(type, root, split, &opts);
    if (!ds) return fail_with_error();
    if (meta_out) {
        Dataset *test = split == SPLIT_TEST ? ds : dataset_open(type, root, SPLIT_TEST, &opts);
        Dataset *train = split == SPLIT_TRAIN ? ds : dataset_open(type, root, SPLIT_TRAIN, &opts);
        err_clear(); // a layout without a train split writes "train": {}
        int rc = test ? dataset_write_meta(test, train, meta_out) : -1;
        if (test != ds) dataset_free(test);
        if (train != ds) dataset_free(train);
        if (rc != 0) { dataset_free(ds); return fail_with_error(); }
    }
    printf("{\"type\": ");
    print_json_string(stdout, type_name);
    printf(", \"classes\": {");
    for (int c = 0; c < ds->n_classes; c++) {
        const DatasetClass *k = &ds->classes[c];
        if (c) printf(", ");
        print_json_string(stdout, k->name);
        printf(": {\"normal\": %d, \"anomalous\": %d, \"masks\": %d}", k->n_normal, k->n_anomalous, k->n_masks);
    }
    printf("}}\n");
    dataset_free(ds);
    return 0;
}
