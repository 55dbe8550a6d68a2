#!/usr/bin/env bash
# SGEMM GFLOP/s at the heads' shapes: OpenBLAS (and the core it chose) against our kernels (tests/bench_gemm.c).
set -eu
cd "$(dirname "$0")/.."
echo "== bench_gemm (threads: ${OMP_NUM_THREADS:-$(nproc)})"
build/tests/bench_gemm ${BENCH_GEMM_ROUNDS:-5}
