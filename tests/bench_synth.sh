#!/usr/bin/env bash
# Synthetic data speed: 1,000 images of 256x256 (10 classes x 100, 400 of them with masks) in the MVTec layout.
set -eu
out=$(mktemp -d "${TMPDIR:-/tmp}/kanoclip-bench-synth.XXXXXX")
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
build/kanoclip synth --out "$out/d" --layout mvtec --classes 10 --size 256 --per-class-normal 30 \
  --per-class-anomalous 40 --train-normal 30 --seed 1
end=$(date +%s.%N)
n=$(find "$out/d" -path '*/ground_truth/*' -prune -o -name '*.png' -print | wc -l)
[ "$n" -eq 1000 ] || { echo "bench_synth: expected 1000 images, found $n"; exit 1; }
awk -v s="$start" -v e="$end" -v t="${OMP_NUM_THREADS:-$(nproc)}" \
  'BEGIN { printf "synth: 1000 images 256x256 (+400 masks) in %.2f s, %.0f images/s, %s threads\n", e - s, 1000 / (e - s), t }'
