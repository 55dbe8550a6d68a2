#!/usr/bin/env bash
# The GPU check: builds the CUDA tests and benchmark (or unpacks build/gpu-bundle.tar.xz, made by
# scripts/gpu_bundle.sh, where this machine lacks the build dependencies), runs the CUDA parity tests and the GPU
# benchmark, and prints a short table. Meant to finish in under five minutes on one H200.
#   make gpu-check                 (where `make all` works: the dependencies are installed)
#   bash scripts/gpu_check.sh      (anywhere, e.g. a GPU machine without network: no `make all` first)
# Environment: GPU_CHECK_USE_BUNDLE=1 skips building; GPU_CHECK_ALLOW_NO_GPU=1 runs without a GPU (a dry run:
# the tests skip); BENCH_CUDA_ARGS="batch iterations" (default "16 3"); OUT=dir also receives the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
logdir=${OUT:-build/gpu-check}
mkdir -p "$logdir"
t_start=$(date +%s)
rows=()     # summary table rows
status=0
gpu_dry=""

say() { echo "gpu-check: $*"; }
row() { rows+=("| $1 | $2 | $3 | $4 |"); }

# ---- the GPU --------------------------------------------------------------------------------------------------
gpu="nvidia-smi not found"
if command -v nvidia-smi >/dev/null 2>&1 &&
    gpu=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -1) &&
    [ -n "$gpu" ] && ! grep -qiE 'fail|error|no devices' <<<"$gpu"; then
    say "GPU: $gpu"
else
    gpu="none (${gpu:-nvidia-smi printed nothing})"
    if [ "${GPU_CHECK_ALLOW_NO_GPU:-0}" != 1 ]; then
        say "no GPU on this machine ($gpu); nothing to check (GPU_CHECK_ALLOW_NO_GPU=1 runs it anyway)"
        exit 1
    fi
    say "no GPU ($gpu): dry run, the CUDA tests will skip"
    gpu_dry=1
fi

# ---- CUDA libraries: the toolkit's, the system's, or the ones pip wheels (PyTorch's) carry ----------------------
libdirs=()
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
    found=""
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
        [ -e "$d/$lib" ] && { found="$d/$lib"; break; }
    done
    if [ -z "$found" ]; then
        py_dirs=$(timeout 20 python3 -c 'import site,sys; print(" ".join(site.getsitepackages()+sys.path))' 2>/dev/null || true)
        found=$(timeout 60 find $py_dirs /opt /usr/local -name "$lib*" -path '*nvidia*' 2>/dev/null | head -1 || true)
    fi
    if [ -n "$found" ]; then
        libdirs+=("$(dirname "$found")")
        ln -sf "$found" "$work/${lib%%.so*}.so"  # unversioned names for the linker (-lcudnn, ...)
    else
        say "warning: $lib not found"
    fi
done
# NVRTC: cuDNN's runtime-compiled engines (its fused attention among them) open it; without it attention falls
# back to the other kernels (bench_cuda's table says which path ran).
nvrtc=""
for d in "${libdirs[@]}" /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    for lib in libnvrtc.so.13 libnvrtc.so.12; do
        [ -z "$nvrtc" ] && [ -e "$d/$lib" ] && nvrtc="$d/$lib"
    done
done
if [ -z "$nvrtc" ]; then
    # shellcheck disable=SC2086
    nvrtc=$(timeout 60 find ${py_dirs:-} /opt /usr/local -name 'libnvrtc.so.1[23]*' -path '*nvidia*' 2>/dev/null |
        head -1 || true)
fi
if [ -n "$nvrtc" ]; then
    libdirs+=("$(dirname "$nvrtc")")
else
    say "warning: libnvrtc not found (cuDNN's fused attention will fall back to the other kernels)"
fi
cuda_path=$(printf '%s\n' "${libdirs[@]}" | awk '!seen[$0]++' | paste -sd: -)
export LIBRARY_PATH="$work${LIBRARY_PATH:+:$LIBRARY_PATH}"

# ---- binaries: build here, or the bundle -------------------------------------------------------------------------
bins=(test_device test_towers test_cuda_ops test_cuda_heads test_cuda_towers test_cuda_experiment bench_cuda bench_train_cuda)
nvcc=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
missing=""
[ -n "$nvcc" ] || missing+=" nvcc"
for p in openblas hdf5 yaml-0.1 libcurl libcjson libpng libjpeg zlib libzip libcrypto; do
    pkg-config --exists "$p" 2>/dev/null || missing+=" $p"
done
[ -f /usr/include/criterion/criterion.h ] || missing+=" criterion"
bindir="" runlib="" cudart_fallback=""
use_bundle() {  # unpacks build/gpu-bundle.tar.xz; $1 says why
    mkdir -p "$work/bundle"
    tar -C "$work/bundle" -xJf build/gpu-bundle.tar.xz
    bindir=$work/bundle/bin
    runlib=$work/bundle/lib
    cudart_fallback=$work/bundle/cudart
    row bundle ok 0 "$(head -1 "$work/bundle/BUNDLE"); $1"
    local head_commit
    head_commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    grep -q "$head_commit" "$work/bundle/BUNDLE" || say "warning: the bundle was not built from HEAD ($head_commit)"
}
if [ -z "$missing" ] && [ "${GPU_CHECK_USE_BUNDLE:-0}" != 1 ]; then
    t=$(date +%s)
    if timeout 240 make -s -j"$(nproc)" "${bins[@]/#/build/tests/}" >"$logdir/build.log" 2>&1; then
        row build ok $(($(date +%s) - t)) "nvcc $("$nvcc" --version | grep -o 'release [0-9.]*')"
        bindir=build/tests
    else
        tail -20 "$logdir/build.log"
        if [ -f build/gpu-bundle.tar.xz ]; then
            row build FAIL $(($(date +%s) - t)) "see build.log; falling back to the bundle"
            use_bundle "the build here failed"
        else
            row build FAIL $(($(date +%s) - t)) "see build.log"
        fi
        status=1
    fi
elif [ -f build/gpu-bundle.tar.xz ]; then
    use_bundle "${missing:+cannot build here, missing:$missing}"
else
    row build FAIL 0 "cannot build here (missing:$missing) and no build/gpu-bundle.tar.xz (scripts/gpu_bundle.sh)"
    status=1
fi
# The bundle's libraries first, then the CUDA libraries found above, the bundle's libcudart only as a fallback.
export LD_LIBRARY_PATH="${runlib:+$runlib:}${cuda_path}${cudart_fallback:+:$cudart_fallback}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- tests -------------------------------------------------------------------------------------------------------
run_suite() {  # name, timeout
    local name=$1 limit=$2 log="$logdir/$1.log" t rc=0
    t=$(date +%s)
    timeout "$limit" "$bindir/$name" --jobs 1 --verbose >"$log" 2>&1 || rc=$?
    local secs=$(($(date +%s) - t))
    local line n_pass n_fail n_crash n_skip
    line=$(grep -a "Synthesis:" "$log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' || true)
    n_pass=$(echo "$line" | grep -o 'Passing: [0-9]*' | grep -o '[0-9]*' || echo 0)
    n_fail=$(echo "$line" | grep -o 'Failing: [0-9]*' | grep -o '[0-9]*' || echo 0)
    n_crash=$(echo "$line" | grep -o 'Crashing: [0-9]*' | grep -o '[0-9]*' || echo 0)
    n_skip=$(grep -ac '\[SKIP\]' "$log" || true)
    local detail="$n_pass passed, $((n_fail + n_crash)) failed, $n_skip skipped"
    if [ "$rc" = 124 ]; then
        row "$name" TIMEOUT "$secs" "over ${limit}s; $detail"; status=1
    elif [ -z "$line" ] || [ "$rc" != 0 ] || [ "$((n_fail + n_crash))" != 0 ]; then
        row "$name" FAIL "$secs" "exit $rc; $detail"; status=1
        grep -a -E '\[FAIL\]|\[----\].*(error|Assertion)|CRASH' "$log" | sed 's/\x1b\[[0-9;]*m//g' | head -15 || true
    elif [ "$n_skip" != 0 ] && [[ "$gpu" != none* ]]; then
        row "$name" FAIL "$secs" "$detail: a GPU is present, nothing should skip"; status=1
        grep -a '\[SKIP\]' "$log" | head -3 || true
    else
        row "$name" ok "$secs" "$detail"
    fi
}

bench_tables=""
if [ -n "$bindir" ]; then
    run_suite test_device 60
    run_suite test_towers 60
    run_suite test_cuda_ops 150
    run_suite test_cuda_heads 120
    run_suite test_cuda_towers 150
    run_suite test_cuda_experiment 120
    t=$(date +%s)
    rc=0
    # shellcheck disable=SC2086
    timeout 200 "$bindir/bench_cuda" ${BENCH_CUDA_ARGS:-16 3} >"$logdir/bench_cuda.log" 2>&1 || rc=$?
    secs=$(($(date +%s) - t))
    if [ "$rc" = 0 ]; then
        row bench_cuda ok "$secs" "$(grep -m1 '^device:\|^bench_cuda:' "$logdir/bench_cuda.log" || true)"
    else
        row bench_cuda "$([ "$rc" = 124 ] && echo TIMEOUT || echo FAIL)" "$secs" "exit $rc; see bench_cuda.log"
        tail -5 "$logdir/bench_cuda.log"
        status=1
    fi
    # the heads at the real sizes: a step and an eval batch against the CPU, the step's time, the paper run's
    # projection (bench_cuda's rate of the method's feature extraction, bf16, feeds the features' share)
    rate=$(awk -F'|' '/KAnoCLIP features/ {gsub(/ /, "", $4); print $4; exit}' "$logdir/bench_cuda.log" 2>/dev/null || true)
    t=$(date +%s)
    rc=0
    BENCH_TOWER_IMGS_PER_S=${rate:-0} timeout 240 "$bindir/bench_train_cuda" ${BENCH_TRAIN_CUDA_ARGS:-8 8 5} \
        >"$logdir/bench_train_cuda.log" 2>&1 || rc=$?
    secs=$(($(date +%s) - t))
    if [ "$rc" = 0 ]; then
        row bench_train_cuda ok "$secs" "$(grep -m1 'heads step' "$logdir/bench_train_cuda.log" | tr -s ' |' ' ' || true)"
    else
        row bench_train_cuda "$([ "$rc" = 124 ] && echo TIMEOUT || echo FAIL)" "$secs" "exit $rc; see bench_train_cuda.log"
        tail -8 "$logdir/bench_train_cuda.log"
        status=1
    fi
    bench_tables=$(cat "$logdir/bench_cuda.log" <(echo) "$logdir/bench_train_cuda.log" | grep -a -E '^\||^$' | cat -s || true)
fi

# ---- summary -----------------------------------------------------------------------------------------------------
{
    echo
    echo "== gpu-check: GPU $gpu; $(($(date +%s) - t_start)) s; logs in $logdir"
    echo "| step | result | seconds | detail |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    [ -n "$bench_tables" ] && echo "$bench_tables"
    echo
    [ "$status" = 0 ] && echo "gpu-check: all passed${gpu_dry:+ (dry run: no GPU, the CUDA tests skipped)}" || echo "gpu-check: FAILED"
} | tee "$logdir/summary.txt"
exit "$status"
