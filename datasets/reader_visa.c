// VisA. Two layouts:
//   raw (as untarred): <obj>/Data/{Images/{Normal,Anomaly},Masks/Anomaly}/..., split by split_csv/1cls.csv with
//     header object,split,label,image,mask (label normal|anomaly, paths relative to the root, mask empty for normal);
//     this is what April-GAN, AnomalyCLIP and AdaCLIP read.
//   spot-diff `prepare_data.py --split-type 1cls` (and anomalib): 1cls/<obj>/{train/good,test/{good,bad},
//     ground_truth/bad/NNN.png}, masks named like the image.
// Masks are multi-class index PNGs: binarise with != 0 on the stored index (MASK_INDEX_NONZERO).
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

enum { MAX_FIELDS = 16 };

// Splits one csv line in place (RFC 4180 quotes allowed); returns the field count.
static int csv_split(char *line, char **fields) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == MAX_FIELDS) return n;
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') break;
                if (*p == '"' && p[1] == '"') { *out++ = '"'; p += 2; continue; }
                if (*p == '"') { p++; break; }
                *out++ = *p++;
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') *out++ = *p++;
        }
        int more = *p == ',';
        if (*p) p++;
        *out = '\0';
        if (!more) return n;
    }
}

static int read_split_csv(DatasetBuilder *b, const char *root, const char *csv, DatasetSplit split) {
    char *text = fs_read_file(csv, NULL);
    if (!text) return -1;
    const char *want_split = split == SPLIT_TRAIN ? "train" : "test";
    int col_obj = -1, col_split = -1, col_label = -1, col_image = -1, col_mask = -1;
    int line_no = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = '\0';
        if (line_no == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3; // UTF-8 BOM
        char *f[MAX_FIELDS];
        int nf = csv_split(line, f);
        if (line_no == 1) {
            for (int i = 0; i < nf; i++) {
                if (!strcmp(f[i], "object")) col_obj = i;
                else if (!strcmp(f[i], "split")) col_split = i;
                else if (!strcmp(f[i], "label")) col_label = i;
                else if (!strcmp(f[i], "image")) col_image = i;
                else if (!strcmp(f[i], "mask")) col_mask = i;
            }
            if (col_obj < 0 || col_split < 0 || col_label < 0 || col_image < 0 || col_mask < 0)
                rc = err_set("%s: header must name object,split,label,image,mask", csv);
            continue;
        }
        if (len == 0) continue;
        int need = col_obj;
        if (col_split > need) need = col_split;
        if (col_label > need) need = col_label;
        if (col_image > need) need = col_image;
        if (nf <= need) { rc = err_set("%s: line %d: %d fields, expected %d", csv, line_no, nf, need + 1); break; }
        if (strcmp(f[col_split], want_split) != 0) continue;
        int label;
        if (!strcmp(f[col_label], "normal")) label = 0;
        else if (!strcmp(f[col_label], "anomaly")) label = 1;
        else { rc = err_set("%s: line %d: label '%s' (expected normal or anomaly)", csv, line_no, f[col_label]); break; }
        char *img = fs_join(root, f[col_image]);
        const char *mrel = (label && col_mask < nf) ? f[col_mask] : "";
        char *mask = *mrel ? fs_join(root, mrel) : NULL;
        if (!fs_exists(img)) rc = err_set("%s: line %d: image %s not found", csv, line_no, img);
        else if (label && !mask) rc = err_set("%s: line %d: anomalous image %s has no mask", csv, line_no, img);
        else if (mask && !fs_exists(mask)) rc = err_set("%s: line %d: mask %s not found", csv, line_no, mask);
        else builder_add(b, f[col_obj], NULL, img, mask, "", label);
        free(img);
        free(mask);
    }
    free(text);
    return rc;
}

static const char *const normal_tokens[] = {"good", NULL};
static const char *const mask_suffixes[] = {"", "_mask", NULL};

int read_visa(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    char *csv_dir = fs_join(root, "split_csv");
    char *csv = fs_join(csv_dir, "1cls.csv");
    free(csv_dir);
    if (fs_exists(csv)) {
        int rc = read_split_csv(b, root, csv, split);
        free(csv);
        b->ds->layout = strdup("visa-csv");
        return rc;
    }
    char *one = find_subdir_ci(root, "1cls");
    TreeSpec spec = {normal_tokens, mask_suffixes, 1, NULL, NULL};
    const char *tree = one ? one : root;
    // A raw tree without its csv has no split: say which file is missing instead of guessing.
    int n = 0, prepared = 0, raw = 0;
    char **dirs = list_names(tree, LIST_DIRS, &n);
    for (int i = 0; dirs && i < n; i++) {
        char *cdir = fs_join(tree, dirs[i]);
        char *data = find_subdir_ci(cdir, "Data");
        prepared |= tree_is_class_dir(cdir, split);
        raw |= data != NULL;
        free(data);
        free(cdir);
    }
    names_free(dirs, n);
    int rc;
    if (!prepared && raw) rc = err_set("%s: not found (VisA's split file; it ships in the VisA tar)", csv);
    else rc = tree_read_root(b, tree, split, &spec);
    if (rc == 0) b->ds->layout = strdup("visa-1cls");
    free(one);
    free(csv);
    return rc;
}
