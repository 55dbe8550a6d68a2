#!/usr/bin/env bash
# Packs the GPU check's binaries with the shared libraries they need into build/gpu-bundle.tar.xz, for a GPU
# machine that has the CUDA runtime and cuBLAS but not this project's build dependencies (OpenBLAS, HDF5,
# Criterion, ...). scripts/gpu_check.sh uses the bundle when it cannot build there. Run on a machine with nvcc
# (no GPU needed): bash scripts/gpu_bundle.sh. glibc, libstdc++, libgcc_s and the big CUDA libraries (cuBLAS,
# cuBLASLt, cuDNN) are left out: the GPU machine's own are used (a newer glibc/libstdc++ runs these binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bins=(tests/test_device tests/test_towers tests/test_cuda_ops tests/test_cuda_heads tests/test_cuda_towers tests/test_cuda_experiment tests/bench_cuda tests/bench_train_cuda)
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc" ] || { echo "gpu_bundle: nvcc not found: the bundle needs a CUDA build" >&2; exit 1; }
make -s -j"${JOBS:-2}" BUILD="$BUILD" "${bins[@]/#/$BUILD/}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/cudart"
for b in "${bins[@]}"; do cp "$BUILD/$b" "$stage/bin/"; done
skip='^(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|ld-linux-x86-64|libcublas|libcublasLt|libcudnn.*|linux-vdso)\.so'
for b in "${bins[@]}"; do ldd "$BUILD/$b"; done | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    name=$(basename "$lib")
    [[ "$name" =~ $skip ]] && continue
    case "$name" in
    libcudart.so*) cp -L "$lib" "$stage/cudart/$name" ;;  # a fallback only: the GPU machine's own goes first
    *) cp -L "$lib" "$stage/lib/$name" ;;
    esac
done
{
    echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release; echo "$PRETTY_NAME"), $("$nvcc" --version | tail -1)"
} > "$stage/BUNDLE"
tar -C "$stage" -cJf "$BUILD/gpu-bundle.tar.xz" .
echo "gpu_bundle: $BUILD/gpu-bundle.tar.xz ($(du -h "$BUILD/gpu-bundle.tar.xz" | cut -f1)); $(cat "$stage/BUNDLE" | head -1)"
