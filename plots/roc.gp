# Image-level ROC curves of one dataset, one curve per run.
# Variables: term, outfile, datafile (blocks separated by two blank lines, each starting with a header line
# "fpr" "<run label>", then fpr tpr rows), nblocks, title_text.
load dir.'common.gp'
set size square
set xrange [0:1]
set yrange [0:1]
set xlabel 'False positive rate'
set ylabel 'True positive rate'
set title title_text
set key bottom right
plot for [i=0:nblocks-1] datafile index i using 1:2 with lines lw 2 title columnheader(2), \
     x with lines dt 2 lc rgb 'gray' notitle
