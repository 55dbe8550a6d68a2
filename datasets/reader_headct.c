// HeadCT (Kaggle "Head CT - hemorrhage"), image-level only. Layouts:
//   raw: head_ct/labels.csv (header, then rows `id,hemorrhage`, 0 normal, 1 haemorrhage) and head_ct/head_ct/NNN.png
//     (3-digit ids); the root may be the outer head_ct/ or the folder holding it;
//   AdaCLIP: HeadCT_anomaly_detection/headct/test/{good,defect}/; AnomalyCLIP: .../brain/test/{good,<abnormal>}/.
#include "datasets/reader_internal.h"
#include "common/error.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

static const char *const normal_tokens[] = {"good", NULL};
static const char *const no_suffixes[] = {NULL};

static int read_labels_csv(DatasetBuilder *b, const char *dir, const char *csv) {
    char *text = fs_read_file(csv, NULL);
    if (!text) return -1;
    char *img_dir = find_subdir_ci(dir, "head_ct");
    const char *from = img_dir ? img_dir : dir;
    int rc = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        if (++line_no == 1) continue; // header
        char *end;
        long id = strtol(line, &end, 10);
        if (end == line || *end != ',') { rc = err_set("%s: line %d: expected id,hemorrhage", csv, line_no); break; }
        char *p = end + 1;
        long h = strtol(p, &end, 10);
        while (*end == ' ' || *end == '\r') end++;
        if (end == p || *end || (h != 0 && h != 1)) {
            rc = err_set("%s: line %d: hemorrhage must be 0 or 1", csv, line_no);
            break;
        }
        char name[32];
        snprintf(name, sizeof name, "%03ld.png", id);
        char *img = fs_join(from, name);
        if (!fs_exists(img)) rc = err_set("%s: line %d: image %s not found", csv, line_no, img);
        else builder_add(b, "headct", "brain", img, NULL, h ? "hemorrhage" : "normal", (int)h);
        free(img);
    }
    free(img_dir);
    free(text);
    return rc;
}

int read_headct(DatasetBuilder *b, const char *root, DatasetSplit split, const DatasetOptions *opts) {
    if (!fs_is_dir(root)) return err_set("%s: not a folder", root);
    b->ds->image_level_only = 1;
    char *outer = find_subdir_ci(root, "head_ct");
    char *dirs[2] = {strdup(root), outer};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]) continue;
        char *csv = fs_join(dirs[i], "labels.csv");
        if (fs_exists(csv)) {
            int rc = split == SPLIT_TRAIN ? err_set("%s: raw HeadCT has no train split", root)
                                          : read_labels_csv(b, dirs[i], csv);
            b->ds->layout = strdup("headct-raw");
            free(csv);
            free(dirs[0]);
            free(dirs[1]);
            return rc;
        }
        free(csv);
    }
    free(dirs[0]);
    free(dirs[1]);
    TreeSpec spec = {normal_tokens, no_suffixes, 0, NULL, "brain"};
    b->ds->layout = strdup("headct-tree");
    int rc = tree_read_root(b, root, split, &spec);
    if (rc != 0) err_wrap("%s: no labels.csv; ", root);
    return rc;
}
