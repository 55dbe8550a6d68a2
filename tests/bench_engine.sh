#!/usr/bin/env bash
# make bench: the CPU engine's vision tower against OpenBLAS SGEMM, PyTorch and ONNX Runtime (tests/bench_engine.py).
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 tests/bench_engine.py
