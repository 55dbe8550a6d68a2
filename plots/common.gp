# Shared by the plot scripts: the terminal from `term` (pngcairo or pdfcairo) and `outfile`, plain-text titles.
if (term eq 'pdfcairo') {
    set terminal pdfcairo size 5in,3.5in font 'Sans,9' linewidth 1.5 noenhanced
} else {
    set terminal pngcairo size 1000,700 font 'Sans,12' linewidth 1.5 noenhanced
}
set output outfile
set datafile missing '?'
set grid lc rgb '#dddddd'
