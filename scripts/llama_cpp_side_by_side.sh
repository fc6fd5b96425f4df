#!/usr/bin/env bash
# tulu bench and llama.cpp's llama-bench on the same files, same thread count, same machine,
# interleaved (tulu, llama.cpp, tulu, llama.cpp, ... per model), then one table with ratios.
#
#   scripts/llama_cpp_side_by_side.sh OUTDIR MODEL [MODEL ...]
#
# MODEL: a GGUF file (both tools read it) or, for F32/BF16/F16, "HF_DIR:GGUF_FILE" (tulu reads
# the Hugging Face directory, llama.cpp the GGUF file made from it by `tulu quantize --type
# f32|bf16|f16`, the same tensors in the same dtype).
# Environment: TULU (default build/tulu), LLAMA_BENCH (default: built here, see below),
# THREADS (2), PROMPT (512), GEN (128), REPS (3), ROUNDS (2: runs of each tool per model),
# MMAP (1; 0 reads the weights into memory in both tools: tulu --no-mmap, llama-bench -lm none: v0.5.0's spelling of -mmp 0),
# TULU_FLAGS (more `tulu bench` options, e.g. --bf16-activations).
#
# There is no network here and Debian has no llama.cpp package, but the npm registry
# answers, and the node-llama-cpp package carries llama.cpp's source as a git bundle
# (llama/gitRelease.bundle; node-llama-cpp 3.22.1 holds llama.cpp release v0.5.0 of
# 2026-09-28). Without LLAMA_BENCH this script unpacks that bundle and builds llama-bench
# natively (GGML_NATIVE=ON: -march=native, AVX-512/VNNI on this CPU), once, in OUTDIR/llama.cpp.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
tulu=${TULU:-$root/build/tulu}
threads=${THREADS:-2}
prompt=${PROMPT:-512}
gen=${GEN:-128}
reps=${REPS:-3}
rounds=${ROUNDS:-2}
tulu_flags=() llama_flags=()
if [[ ${MMAP:-1} == 0 ]]; then tulu_flags=(--no-mmap) llama_flags=(-lm none); fi
read -r -a extra_tulu_flags <<<"${TULU_FLAGS:-}"
tulu_flags+=("${extra_tulu_flags[@]}")
node_llama_cpp_version=3.22.1

build_llama_bench() {
  local src=$out/llama.cpp
  if [[ ! -d $src ]]; then
    local pack=$out/npm-pack
    mkdir -p "$pack"
    (cd "$pack" && npm pack --silent "node-llama-cpp@$node_llama_cpp_version" >/dev/null)
    tar -xzf "$pack"/node-llama-cpp-*.tgz -C "$pack" package/llama/gitRelease.bundle
    git clone --quiet "$pack/package/llama/gitRelease.bundle" "$src"
  fi
  cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DBUILD_SHARED_LIBS=OFF >"$out/llama_cmake.log"
  cmake --build "$src/build" --target llama-bench -j"$(nproc)" >"$out/llama_build.log"
  echo "$src/build/bin/llama-bench"
}

llama_bench=${LLAMA_BENCH:-}
if [[ -z $llama_bench ]]; then
  echo "building llama-bench from node-llama-cpp@$node_llama_cpp_version's source bundle" >&2
  llama_bench=$(build_llama_bench)
fi
[[ -x $tulu ]] || { echo "no tulu binary at $tulu (build first)" >&2; exit 1; }

pairs=()
for model in "$@"; do
  tulu_model=${model%%:*}
  llama_model=${model#*:}
  [[ -e $tulu_model && -e $llama_model ]] || { echo "missing model: $model" >&2; exit 1; }
  name=$(basename "$llama_model" .gguf)
  for round in $(seq 1 "$rounds"); do
    echo "[$(date -u +%H:%M:%S)] $name round $round: tulu" >&2
    "$tulu" bench -m "$tulu_model" -p "$prompt" -n "$gen" -r "$reps" -t "$threads" -o json \
      "${tulu_flags[@]}" >"$out/$name.tulu.$round.json"
    echo "[$(date -u +%H:%M:%S)] $name round $round: llama.cpp" >&2
    "$llama_bench" -m "$llama_model" -p "$prompt" -n "$gen" -r "$reps" -t "$threads" -o json \
      "${llama_flags[@]}" >"$out/$name.llama.$round.json" 2>"$out/$name.llama.$round.log"
  done
  pairs+=("$name")
done
/usr/bin/python3 "$root/bench/side_by_side_table.py" "$out" "${pairs[@]}"
