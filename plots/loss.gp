# Training losses of one run against the step.
# Variables: term, outfile, datafile (train_log.csv: step,epoch,loss_total,loss_...), ncols, title_text.
load dir.'common.gp'
set datafile separator ','
set xlabel 'Step'
set ylabel 'Loss'
set title title_text
set key top right
plot for [c=3:ncols] datafile using 1:c with lines lw 2 title columnheader(c)
