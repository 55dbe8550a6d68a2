#!/usr/bin/env bash
# One KAnoCLIP training step at the real sizes on the CPU: time and peak memory (see tests/bench_train.c).
# BENCH_TRAIN_ARGS="batch classes steps" overrides the defaults (8 images, 8 distinct classes, 2 steps).
set -eu
cd "$(dirname "$0")/.."
echo "== bench_train (threads: ${OMP_NUM_THREADS:-$(nproc)})"
build/tests/bench_train ${BENCH_TRAIN_ARGS:-8 8 2}
