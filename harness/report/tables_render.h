// A result table in memory and its three renderings (Markdown, CSV, LaTeX booktabs).
#ifndef HARNESS_TABLES_RENDER_H
#define HARNESS_TABLES_RENDER_H

#include "common/strbuf.h"

typedef struct {
    int n;               // values in the cell: 1, or 2 for an image/pixel pair
    int has[2];
    double v[2];         // percent
    double sd[2];        // across runs, when n_runs > 1
    int n_runs[2];
    double lo[2], hi[2]; // 95% interval (percent) of a single run
    int has_ci[2];
    int bold[2];
} Cell;

typedef struct {
    char *name;      // file stem: table1_industrial
    char *title;     // "Table 1" (Markdown only; LaTeX numbers its own tables), or NULL
    char *caption;   // one sentence or more, plain text
    char *label;     // LaTeX label: tab:industrial
    char *corner;    // the header of the row-name column
    int n_rows, n_cols;
    char **row_names, **col_names;
    int *row_group;  // rows with the same group compete for bold in table_bold_columns
    Cell *cells;     // [n_rows * n_cols]
    const char *value_names[2];  // CSV names of a cell's values ("image_auroc", "pixel_auroc")
    char *note;      // printed under the table (may be NULL)
} Table;

Table *table_new(const char *name, int n_rows, int n_cols, int values_per_cell);
void table_free(Table *t);
Cell *table_cell(Table *t, int r, int c);
// Bold the best (largest at the printed precision) value of each row / of each column (within row groups); a row
// or column group with fewer than two values has nothing to compare, so no bold.
void table_bold_rows(Table *t);
void table_bold_columns(Table *t);
// Renderings (malloc'd text). header: a provenance line written as a comment (md, tex).
char *table_markdown(const Table *t, const char *header);
char *table_latex(const Table *t, const char *header);
char *table_csv(const Table *t);

// Appends plain text s escaped for LaTeX (_ % & # $ { } ~ ^ \, and ± – ≤), for captions and cells.
void tex_escape(StrBuf *b, const char *s);

#endif
