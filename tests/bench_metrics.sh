#!/usr/bin/env bash
# Streaming pixel metrics (AUROC + AP + F1-max + AUPRO + AUPRO-ac200) over 2,000 generated maps of 518x518,
# peak memory, and speed against scikit-learn (+ the MVTec AUPRO in numpy/scipy) on a 100-map subset that
# scikit-learn can hold. Run by `make bench` (build/kanoclip and build/tests/bench_metrics exist then).
set -euo pipefail
N_FULL=${BENCH_METRICS_N:-2000}
N_SUB=${BENCH_METRICS_SUBSET:-100}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
field() { $py -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }

echo "== bench_metrics: ${N_SUB}-map subset (C vs scikit-learn), then ${N_FULL} maps streamed (C)"
build/tests/bench_metrics write "$N_SUB" "$tmp/subset.h5"
build/tests/bench_metrics stream "$N_SUB" > "$tmp/c_sub.json"
/usr/bin/time -v build/kanoclip metrics --maps "$tmp/subset.h5" > "$tmp/cmd_sub.json" 2> "$tmp/cmd_sub.time"
cmd_sub_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tmp/cmd_sub.time")
$py tests/bench_metrics_sklearn.py "$tmp/subset.h5" > "$tmp/sk_sub.json"
/usr/bin/time -v build/tests/bench_metrics stream "$N_FULL" > "$tmp/c_full.json" 2> "$tmp/c_full.time"
/usr/bin/time -v build/tests/bench_metrics stream-par "$N_FULL" > "$tmp/c_par.json" 2> "$tmp/c_par.time"

c_sub_s=$(field "$tmp/c_sub.json" "d['seconds_accumulate'] + d['seconds_compute']")
sk_s=$(field "$tmp/sk_sub.json" "d['seconds_total']")
full_s=$(field "$tmp/c_full.json" "d['seconds_accumulate'] + d['seconds_compute']")
full_gen=$(field "$tmp/c_full.json" "d['seconds_generate']")
full_rss=$(rss_mb "$tmp/c_full.time")
par_rss=$(rss_mb "$tmp/c_par.time")
printf '\n| run | maps | metric seconds | peak RSS MB | pixel AUROC | pixel AP | AUPRO |\n|---|---|---|---|---|---|---|\n'
printf '| scikit-learn + numpy MVTec AUPRO | %s | %.2f | %.0f | %.6f | %.6f | %.6f |\n' "$N_SUB" "$sk_s" \
  "$(field "$tmp/sk_sub.json" "d['peak_rss_mb']")" "$(field "$tmp/sk_sub.json" "d['auroc']")" \
  "$(field "$tmp/sk_sub.json" "d['ap']")" "$(field "$tmp/sk_sub.json" "d['aupro']")"
printf '| C streaming (in memory) | %s | %.2f | %.0f | %.6f | %.6f | %.6f |\n' "$N_SUB" "$c_sub_s" \
  "$(field "$tmp/c_sub.json" "d['peak_rss_mb']")" "$(field "$tmp/c_sub.json" "d['auroc']")" \
  "$(field "$tmp/c_sub.json" "d['ap']")" "$(field "$tmp/c_sub.json" "d['aupro']")"
printf '| kanoclip metrics --maps (HDF5, 2 passes, + image metrics) | %s | %.2f (wall) | %s | %.6f | %.6f | %.6f |\n' \
  "$N_SUB" "$cmd_sub_s" "$(rss_mb "$tmp/cmd_sub.time")" "$(field "$tmp/cmd_sub.json" "d['mean']['pixel']['auroc']")" \
  "$(field "$tmp/cmd_sub.json" "d['mean']['pixel']['ap']")" "$(field "$tmp/cmd_sub.json" "d['mean']['pixel']['aupro']")"
printf '| C streaming (in memory) | %s | %.2f (+%.2f generating) | %s | %.6f | %.6f | %.6f |\n' "$N_FULL" "$full_s" \
  "$full_gen" "$full_rss" "$(field "$tmp/c_full.json" "d['auroc']")" "$(field "$tmp/c_full.json" "d['ap']")" \
  "$(field "$tmp/c_full.json" "d['aupro']")"
printf '| C, one accumulator per thread, merged (%s threads) | %s | %.2f (wall, generating included) | %s | %.6f | %.6f | %.6f |\n' \
  "$(field "$tmp/c_par.json" "d['threads']")" "$N_FULL" "$(field "$tmp/c_par.json" "d['seconds_wall']")" "$par_rss" \
  "$(field "$tmp/c_par.json" "d['auroc']")" "$(field "$tmp/c_par.json" "d['ap']")" "$(field "$tmp/c_par.json" "d['aupro']")"
echo
echo "speed-up over scikit-learn on ${N_SUB} maps: $($py -c "print(f'{$sk_s / $c_sub_s:.1f}x')")"
echo "binning error bounds at ${N_FULL} maps: $(field "$tmp/c_full.json" "d['binning']['max_abs_error']")"
echo "C vs scikit-learn on ${N_SUB} maps: |dAUROC| $(field "$tmp/c_sub.json" "d['auroc']") vs $(field "$tmp/sk_sub.json" "d['auroc']"):" \
  "$($py -c "print(f'{abs($(field "$tmp/c_sub.json" "d['auroc']") - $(field "$tmp/sk_sub.json" "d['auroc']")):.2e}')")," \
  "|dAP| $($py -c "print(f'{abs($(field "$tmp/c_sub.json" "d['ap']") - $(field "$tmp/sk_sub.json" "d['ap']")):.2e}')")," \
  "|dAUPRO| $($py -c "print(f'{abs($(field "$tmp/c_sub.json" "d['aupro']") - $(field "$tmp/sk_sub.json" "d['aupro']")):.2e}')")"
ok=$($py -c "print(int($full_rss < 1024 and $par_rss < 1024))")
[ "$ok" = 1 ] || { echo "bench_metrics: peak RSS ${full_rss} / ${par_rss} MB is not under 1 GB" >&2; exit 1; }
