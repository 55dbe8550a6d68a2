// Rendering of result tables. Numbers: percent with one decimal ("%.1f"), CSV with two; "–" for missing.
#include "harness/report/tables_render.h"
#include "common/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Table *table_new(const char *name, int n_rows, int n_cols, int values_per_cell) {
    Table *t = calloc(1, sizeof *t);
    t->name = strdup(name);
    t->n_rows = n_rows;
    t->n_cols = n_cols;
    t->row_names = calloc((size_t)n_rows + 1, sizeof *t->row_names);
    t->col_names = calloc((size_t)n_cols + 1, sizeof *t->col_names);
    t->row_group = calloc((size_t)n_rows + 1, sizeof *t->row_group);
    t->cells = calloc((size_t)(n_rows * n_cols) + 1, sizeof *t->cells);
    for (int i = 0; i < n_rows * n_cols; i++) t->cells[i].n = values_per_cell;
    return t;
}

void table_free(Table *t) {
    if (!t) return;
    for (int r = 0; r < t->n_rows; r++) free(t->row_names[r]);
    for (int c = 0; c < t->n_cols; c++) free(t->col_names[c]);
    free(t->row_names);
    free(t->col_names);
    free(t->row_group);
    free(t->cells);
    free(t->name);
    free(t->caption);
    free(t->title);
    free(t->label);
    free(t->corner);
    free(t->note);
    free(t);
}

Cell *table_cell(Table *t, int r, int c) { return &t->cells[r * t->n_cols + c]; }

// The value as printed, so that bold marks what a reader sees as the best.
static double shown(double v) { return round(v * 10.0) / 10.0; }

// Bold marks the best of several: a row or column with one value (one method, one variant) has no bold.
void table_bold_rows(Table *t) {
    for (int r = 0; r < t->n_rows; r++)
        for (int j = 0; j < 2; j++) {
            double best = -INFINITY;
            int n_values = 0;
            for (int c = 0; c < t->n_cols; c++) {
                Cell *x = table_cell(t, r, c);
                if (j < x->n && x->has[j]) n_values++;
                if (j < x->n && x->has[j] && shown(x->v[j]) > best) best = shown(x->v[j]);
            }
            if (n_values < 2) continue;
            for (int c = 0; c < t->n_cols; c++) {
                Cell *x = table_cell(t, r, c);
                if (j < x->n && x->has[j] && shown(x->v[j]) == best) x->bold[j] = 1;
            }
        }
}

void table_bold_columns(Table *t) {
    for (int c = 0; c < t->n_cols; c++)
        for (int j = 0; j < 2; j++)
            for (int r0 = 0; r0 < t->n_rows; r0++) {
                // the first row of each group finds the group's best
                int first = 1;
                for (int r = 0; r < r0; r++) first &= t->row_group[r] != t->row_group[r0];
                if (!first) continue;
                double best = -INFINITY;
                int n_values = 0;
                for (int r = r0; r < t->n_rows; r++) {
                    Cell *x = table_cell(t, r, c);
                    if (t->row_group[r] != t->row_group[r0] || j >= x->n || !x->has[j]) continue;
                    n_values++;
                    if (shown(x->v[j]) > best) best = shown(x->v[j]);
                }
                if (n_values < 2) continue;
                for (int r = r0; r < t->n_rows; r++) {
                    Cell *x = table_cell(t, r, c);
                    if (t->row_group[r] == t->row_group[r0] && j < x->n && x->has[j] && shown(x->v[j]) == best)
                        x->bold[j] = 1;
                }
            }
}

enum { MD, TEX };

static void value_text(StrBuf *b, const Cell *c, int j, int style) {
    if (!c->has[j]) { strbuf_printf(b, "%s", style == TEX ? "--" : "–"); return; }
    if (c->bold[j]) strbuf_printf(b, style == TEX ? "\\textbf{%.1f}" : "**%.1f**", c->v[j]);
    else strbuf_printf(b, "%.1f", c->v[j]);
    if (c->n_runs[j] > 1) strbuf_printf(b, style == TEX ? "$\\pm$%.1f" : "±%.1f", c->sd[j]);
    if (c->has_ci[j]) strbuf_printf(b, style == TEX ? "\\,{\\scriptsize[%.1f, %.1f]}" : " [%.1f, %.1f]", c->lo[j], c->hi[j]);
}

static void cell_text(StrBuf *b, const Cell *c, int style) {
    for (int j = 0; j < c->n; j++) {
        if (j) strbuf_printf(b, " / ");
        value_text(b, c, j, style);
    }
}

static void md_escape(StrBuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '|') strbuf_printf(b, "\\|");
        else strbuf_printf(b, "%c", *s);
    }
}

char *table_markdown(const Table *t, const char *header) {
    StrBuf b = {0};
    if (header) strbuf_printf(&b, "<!-- %s -->\n\n", header);
    if (t->title) strbuf_printf(&b, "**%s.** ", t->title);
    strbuf_printf(&b, "%s\n\n| ", t->caption);
    md_escape(&b, t->corner);
    for (int c = 0; c < t->n_cols; c++) { strbuf_printf(&b, " | "); md_escape(&b, t->col_names[c]); }
    strbuf_printf(&b, " |\n|---");
    for (int c = 0; c < t->n_cols; c++) strbuf_printf(&b, "|---:");
    strbuf_printf(&b, "|\n");
    for (int r = 0; r < t->n_rows; r++) {
        strbuf_printf(&b, "| ");
        md_escape(&b, t->row_names[r]);
        for (int c = 0; c < t->n_cols; c++) {
            strbuf_printf(&b, " | ");
            cell_text(&b, &t->cells[r * t->n_cols + c], MD);
        }
        strbuf_printf(&b, " |\n");
    }
    if (t->note) strbuf_printf(&b, "\n%s\n", t->note);
    return strbuf_take(&b);
}

void tex_escape(StrBuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '_': case '%': case '&': case '#': case '$': case '{': case '}': strbuf_printf(b, "\\%c", *s); break;
        case '~': strbuf_printf(b, "\\textasciitilde{}"); break;
        case '^': strbuf_printf(b, "\\textasciicircum{}"); break;
        case '\\': strbuf_printf(b, "\\textbackslash{}"); break;
        default:
            if ((unsigned char)*s == 0xc2 && (unsigned char)s[1] == 0xb1) { strbuf_printf(b, "$\\pm$"); s++; }  // ±
            else if ((unsigned char)*s == 0xe2 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] == 0x93) { strbuf_printf(b, "--"); s += 2; }  // –
            else if ((unsigned char)*s == 0xe2 && (unsigned char)s[1] == 0x89 && (unsigned char)s[2] == 0xa4) { strbuf_printf(b, "$\\leq$"); s += 2; }  // ≤
            else strbuf_printf(b, "%c", *s);
        }
    }
}

char *table_latex(const Table *t, const char *header) {
    StrBuf b = {0};
    if (header) strbuf_printf(&b, "%% %s\n", header);
    strbuf_printf(&b, "%% needs \\usepackage{booktabs,graphicx}\n\\begin{table}[t]\n\\centering\n\\small\n\\caption{");
    tex_escape(&b, t->caption);
    // wide tables (many methods beside the paper's columns) shrink to the text width; narrow ones keep their size
    strbuf_printf(&b, "}\n\\label{%s}\n\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%%\n"
                      "\\begin{tabular}{l", t->label);
    for (int c = 0; c < t->n_cols; c++) strbuf_printf(&b, "c");
    strbuf_printf(&b, "}\n\\toprule\n");
    tex_escape(&b, t->corner);
    for (int c = 0; c < t->n_cols; c++) { strbuf_printf(&b, " & "); tex_escape(&b, t->col_names[c]); }
    strbuf_printf(&b, " \\\\\n\\midrule\n");
    for (int r = 0; r < t->n_rows; r++) {
        if (r > 0 && t->row_group[r] != t->row_group[r - 1]) strbuf_printf(&b, "\\midrule\n");
        tex_escape(&b, t->row_names[r]);
        for (int c = 0; c < t->n_cols; c++) {
            strbuf_printf(&b, " & ");
            cell_text(&b, &t->cells[r * t->n_cols + c], TEX);
        }
        strbuf_printf(&b, " \\\\\n");
    }
    strbuf_printf(&b, "\\bottomrule\n\\end{tabular}}\n");
    if (t->note) {
        strbuf_printf(&b, "\\par\\smallskip\\footnotesize ");
        tex_escape(&b, t->note);
        strbuf_printf(&b, "\n");
    }
    strbuf_printf(&b, "\\end{table}\n");
    return strbuf_take(&b);
}

static void csv_field(StrBuf *b, const char *s) {
    if (strpbrk(s, ",\"\n")) {
        strbuf_printf(b, "\"");
        for (; *s; s++) strbuf_printf(b, *s == '"' ? "\"\"" : "%c", *s);
        strbuf_printf(b, "\"");
    } else {
        strbuf_printf(b, "%s", s);
    }
}

// Long form: one line per cell; values in percent with two decimals, then sd, n, interval where known.
char *table_csv(const Table *t) {
    StrBuf b = {0};
    csv_field(&b, t->corner);
    strbuf_printf(&b, ",column");
    int n = t->n_rows && t->n_cols ? t->cells[0].n : 1;
    for (int j = 0; j < n; j++)
        strbuf_printf(&b, ",%s,%s_sd,%s_n,%s_ci_low,%s_ci_high", t->value_names[j], t->value_names[j], t->value_names[j],
            t->value_names[j], t->value_names[j]);
    strbuf_printf(&b, "\n");
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++) {
            const Cell *x = &t->cells[r * t->n_cols + c];
            csv_field(&b, t->row_names[r]);
            strbuf_printf(&b, ",");
            csv_field(&b, t->col_names[c]);
            for (int j = 0; j < x->n; j++) {
                if (x->has[j]) strbuf_printf(&b, ",%.2f", x->v[j]);
                else strbuf_printf(&b, ",");
                if (x->has[j] && x->n_runs[j] > 1) strbuf_printf(&b, ",%.2f,%d", x->sd[j], x->n_runs[j]);
                else strbuf_printf(&b, ",,%d", x->has[j] ? 1 : 0);
                if (x->has_ci[j]) strbuf_printf(&b, ",%.2f,%.2f", x->lo[j], x->hi[j]);
                else strbuf_printf(&b, ",,");
            }
            strbuf_printf(&b, "\n");
        }
    return strbuf_take(&b);
}
