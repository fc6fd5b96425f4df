#!/usr/bin/env bash
# Interleaved A/B of generation speed: N pairs of runs (A then B) of
#   <prefix> bench -m MODEL -p 0 -n ${GEN:-32} -r 2 -t 2 -o json <flags>
# taking the best of the 2 repetitions of each run, then the medians of A and B, their
# ratio, and the median of the per-pair ratios. On a shared VM whose memory bandwidth
# drifts by tens of percent within minutes, only such interleaved pairs compare two builds
# or two settings (docs/benchmarks.md).
#
#   bench/ab_decode.sh N MODEL "PREFIX_A" "PREFIX_B"
#   e.g. bench/ab_decode.sh 6 /tmp/q/1.1b-q8_0.gguf "old/tulu" "build/tulu"
#        FLAGS_B=--no-mmap bench/ab_decode.sh 6 /tmp/q/1.1b-q8_0.gguf build/tulu build/tulu
# (a prefix may start with VAR=value assignments, it is run through eval; FLAGS_A / FLAGS_B
# are appended to A's / B's bench options)
set -euo pipefail
if [[ $# -ne 4 ]]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
n=$1 model=$2 a=$3 b=$4
best_ts() {
  eval "$1 bench -m '$model' -p 0 -n ${GEN:-32} -r 2 -t 2 -o json $2" 2>/dev/null |
    /usr/bin/python3 -c "import json, sys; print(max(json.load(sys.stdin)[0]['samples_ts']))"
}
as=() bs=()
for _ in $(seq "$n"); do
  as+=("$(best_ts "$a" "${FLAGS_A:-}")")
  bs+=("$(best_ts "$b" "${FLAGS_B:-}")")
  echo "${as[-1]} ${bs[-1]}"
done
/usr/bin/python3 - "${as[*]}" "${bs[*]}" <<'PY'
import statistics as st, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print("median A %.2f  B %.2f  B/A %.3f  median pair ratio %.3f"
      % (st.median(a), st.median(b), st.median(b) / st.median(a),
         st.median([y / x for x, y in zip(a, b)])))
PY
