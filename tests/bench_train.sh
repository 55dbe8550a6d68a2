#!/usr/bin/env bash
# One KAnoCLIP training step at the real sizes on the CPU against PyTorch on the same shapes, in one run:
# rounds alternate our step (on the kernel chosen for this CPU, then on OpenBLAS; tests/bench_train.c) and the
# PyTorch step (the reference model in float32, tests/bench_train_torch.py), so that load from other processes
# hits all alike; the ratio is taken from the best time of each.
# BENCH_TRAIN_ARGS="batch classes" overrides the defaults (8 images, 8 distinct classes); BENCH_TRAIN_ROUNDS (2).
set -eu
cd "$(dirname "$0")/.."
args=${BENCH_TRAIN_ARGS:-8 8}
rounds=${BENCH_TRAIN_ROUNDS:-2}
echo "== bench_train (threads: ${OMP_NUM_THREADS:-$(nproc)}; batch and classes: $args; rounds: $rounds)"
ours=() theirs=()
for r in $(seq "$rounds"); do
    out=$(build/tests/bench_train $args 1)
    echo "$out" | sed "s/^round 1/round $r/"
    ours+=("$(echo "$out" | sed -n 's/^train step ([a-z0-9]* kernel): \([0-9.]*\) s.*/\1/p')")
    tout=$(/usr/bin/python3 tests/bench_train_torch.py $args 1)
    echo "$tout" | sed "s/^torch step 1/torch round $r/"
    theirs+=("$(echo "$tout" | sed -n 's/^torch step 1: \([0-9.]*\) s.*/\1/p')")
done
best() { printf '%s\n' "$@" | sort -g | head -n1; }
o=$(best "${ours[@]}") t=$(best "${theirs[@]}")
awk -v o="$o" -v t="$t" 'BEGIN { printf "train step, best of the rounds: ours %.2f s, PyTorch %.2f s: %.2fx faster\n", o, t, t / o }'
