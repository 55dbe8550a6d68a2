# The ablation chart: mean image and pixel AUROC over datasets for each variant.
# Variables: term, outfile, datafile (header "variant" "Image AUROC" "Pixel AUROC"; one row per variant).
load dir.'common.gp'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set yrange [0:100]
set ylabel 'AUROC (%), mean over datasets'
set title 'Ablation'
set xtics rotate by 90 right scale 0
set key top left
plot for [c=2:3] datafile using c:xtic(1) title columnheader(c)
