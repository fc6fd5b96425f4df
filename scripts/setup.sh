#!/usr/bin/env bash
# Installs everything tulu.cpp needs to build and test, from Debian packages (and one npm
# package used only as an independent tokenizer reference in tests). Idempotent: re-running
# installs nothing that is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  build-essential cmake pkg-config git
  libopenblas-dev           # GEMM for F32 prompt processing
  libhwy-dev                # Highway portable SIMD with runtime dispatch
  libsentencepiece-dev      # tokenizer.model (SentencePiece protobuf)
  nlohmann-json3-dev        # config.json, tokenizer.json, JSON Lines
  libcli11-dev              # command line
  libcpp-httplib-dev        # HTTP server of tulu serve
  chromium                  # headless browser for the tulu serve chat page test
  libgtest-dev libgmock-dev # unit tests
  libbenchmark-dev          # micro-benchmarks
  python3 python3-torch python3-numpy python3-sentencepiece python3-jinja2  # test references
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# Node.js ships with this machine image (not Debian's, which conflicts with it); install
# Debian's only where none is present.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq --no-install-recommends nodejs npm || true
fi

# The npm reference tokenizer, the openai client and playwright-core (tulu serve tests) live in
# tests/reference/node_modules (ignored by git).
if [ ! -d tests/reference/node_modules/tokenizers ] || [ ! -d tests/reference/node_modules/openai ] \
    || [ ! -d tests/reference/node_modules/playwright-core ]; then
  echo "setup: installing npm tokenizers, openai, playwright-core (test references)"
  (cd tests/reference && npm install --no-audit --no-fund --silent >/dev/null 2>&1) \
    || echo "setup: warning: npm packages not installed; the HF tokenizers, openai client and chat page tests will be skipped"
fi
