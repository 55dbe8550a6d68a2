# Per-class image AUROC of one dataset: clustered bars, one bar per method.
# Variables: term, outfile, datafile (header "class" "<method>"...; one row per class, '?' where missing),
# ncols (columns in datafile), title_text, ylabel_text.
load dir.'common.gp'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:100]
set ylabel ylabel_text
set title title_text
set xtics rotate by 90 right scale 0
set key outside right top
plot for [c=2:ncols] datafile using c:xtic(1) title columnheader(c)
