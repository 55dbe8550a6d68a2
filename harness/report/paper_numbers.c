// The paper's numbers (experiments/paper_numbers.csv) and the datasets' display names and families, shared by the
// tables (tables.c) and the paper's Table 3 (table3.c).
#include "harness/report/paper_numbers.h"
#include "common/error.h"
#include "common/fsutil.h"
#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- datasets ----

static const struct { const char *name, *display; int family; } known_datasets[] = {
    {"mvtec", "MVTec AD", 0}, {"visa", "VisA", 0},         {"mpdd", "MPDD", 0},         {"btad", "BTAD", 0},
    {"sdd", "SDD", 0},        {"dagm", "DAGM", 0},         {"brainmri", "BrainMRI", 1}, {"liverct", "LiverCT", 1},
    {"resc", "RESC", 1},      {"br35h", "Br35H", 1},       {"covid19", "COVID-19", 1},  {"headct", "HeadCT", 1},
};
enum { N_KNOWN = sizeof known_datasets / sizeof known_datasets[0] };

const char *dataset_display_name(const char *name) {
    for (int i = 0; i < N_KNOWN; i++)
        if (!strcmp(known_datasets[i].name, name)) return known_datasets[i].display;
    return name;
}

int dataset_family(const char *name, int *position) {
    for (int i = 0; i < N_KNOWN; i++)
        if (!strcmp(known_datasets[i].name, name)) {
            if (position) *position = i;
            return known_datasets[i].family;
        }
    if (position) *position = N_KNOWN;
    return -1;
}

// ---- paper numbers ----

static int split_csv_line(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {  // quoted field: "" is a quote
            char *w = ++p, *start = p;
            for (; *p; p++) {
                if (*p == '"' && p[1] == '"') { *w++ = '"'; p++; }
                else if (*p == '"') { p++; break; }
                else *w++ = *p;
            }
            char *after = p;
            *w = '\0';
            fields[n++] = start;
            if (*after != ',') break;
            p = after + 1;
        } else {
            fields[n++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0';
            p = c + 1;
        }
    }
    return n;
}

int paper_numbers_load(const char *path, PaperNumbers *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = fs_read_file(path, &len);
    if (!text) return -1;
    sha256_hex(text, len, out->sha256);
    static const char *header[] = {"table", "dataset", "method", "image_auroc", "image_ap", "pixel_auroc",
                                   "pixel_aupro", "source"};
    int rc = 0, line_no = 0;
    char *save;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        line[strcspn(line, "\r")] = '\0';
        char *f[16];
        int n = split_csv_line(line, f, 16);
        if (line_no == 1) {
            for (int i = 0; i < 8 && rc == 0; i++)
                if (n != 8 || strcmp(f[i], header[i]))
                    rc = err_set("%s:1: expected the header table,dataset,method,image_auroc,image_ap,pixel_auroc,"
                                 "pixel_aupro,source", path);
            continue;
        }
        if (n != 8) { rc = err_set("%s:%d: expected 8 fields, got %d", path, line_no, n); break; }
        out->rows = realloc(out->rows, sizeof *out->rows * (size_t)(out->n + 1));
        PaperRow *r = &out->rows[out->n++];
        memset(r, 0, sizeof *r);
        r->table = strdup(f[0]);
        r->dataset = strdup(f[1]);
        r->method = strdup(f[2]);
        r->source = strdup(f[7]);
        for (int k = 0; k < 4; k++) {
            if (!*f[3 + k]) continue;
            char *end;
            r->v[k] = strtod(f[3 + k], &end);
            if (*end || r->v[k] < 0 || r->v[k] > 100) {
                rc = err_set("%s:%d: %s: '%s' is not a percentage", path, line_no, header[3 + k], f[3 + k]);
                break;
            }
            r->has[k] = 1;
        }
    }
    free(text);
    if (rc < 0) paper_numbers_free(out);
    return rc;
}

void paper_numbers_free(PaperNumbers *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->rows[i].table);
        free(p->rows[i].dataset);
        free(p->rows[i].method);
        free(p->rows[i].source);
    }
    free(p->rows);
    memset(p, 0, sizeof *p);
}
