// The published numbers our tables print beside ours, and how datasets are named and grouped in them.
#ifndef HARNESS_PAPER_NUMBERS_H
#define HARNESS_PAPER_NUMBERS_H

// Paper numbers to show beside ours (experiments/paper_numbers.csv): one row per (table, dataset, method), in
// percent, empty where the source gives nothing; `source` says where each number comes from.
typedef struct {
    char *table, *dataset, *method, *source;
    double v[4];  // image_auroc, image_ap, pixel_auroc, pixel_aupro (percent)
    int has[4];
} PaperRow;

typedef struct {
    PaperRow *rows;
    int n;
    char sha256[65];
} PaperNumbers;

int paper_numbers_load(const char *path, PaperNumbers *out);
void paper_numbers_free(PaperNumbers *p);

// Display name of a dataset ("mvtec" -> "MVTec AD"); the name itself when unknown.
const char *dataset_display_name(const char *name);
// 0 industrial, 1 medical, -1 neither; and the position in the paper's order.
int dataset_family(const char *name, int *position);

#endif
