#!/usr/bin/env bash
# The built-in default job: install dependencies, build `tulu`, then run `tulu demo`: a small
# random Llama model is SFT'd on generated "which digit is larger?" chats (half of them
# answered wrongly), DPO'd on pairs that prefer the correct answer, and evaluated on held-out
# questions before and after; it ends with a short chat and the command to chat on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

./build/tulu demo -o demo/run "$@"
