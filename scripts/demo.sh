#!/usr/bin/env bash
# The built-in default job: install dependencies, build `tulu`, create a small seeded random
# Llama model in Hugging Face layout (UNTRAINED: its replies are gibberish by design; SFT and
# DPO will make the demo meaningful), inspect it, and chat with it in the Tulu 2 format.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

model=demo/tiny-untrained
if [ ! -f "$model/config.json" ]; then
  ./build/tulu init --preset tiny -o "$model"
fi
echo
./build/tulu info -m "$model"
echo
echo "== tulu render-chat: the Tulu 2 prompt for one user turn"
echo '{"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}], "add_generation_prompt": true}' \
  | ./build/tulu render-chat -m "$model"
echo
echo "== tulu generate --chat (greedy, 24 tokens; the model is untrained, so this is noise)"
./build/tulu generate -m "$model" --chat -p "What is 2+2?" -n 24
echo
