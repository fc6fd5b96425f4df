#!/usr/bin/env bash
# Builds and runs every test:
#  1. Release build (warnings are errors): unit tests + black-box tests of the `tulu` binary
#     against PyTorch, SentencePiece and Hugging Face tokenizers;
#  2. ASan + UBSan build: unit tests and the bad-input black-box tests (test_*_errors.py).
# Usage: bash scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTULU_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${1:-}" != "--no-sanitize" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTULU_SANITIZE=ON -DTULU_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L 'unit|errors' --output-on-failure -j"$jobs"
fi
