#!/usr/bin/env bash
# A/B timing of two or more builds of the engine's `profile` example on this host, interleaved round by
# round so the VM's drifting speed hits every build alike. Prints, per binary, the min and the median of
# the forward times (each round runs 8 forwards per binary and keeps the last 6).
#
#   cargo build --release -p dtfsal-engine --example profile && cp target/release/examples/profile /tmp/prof-new
#   (same for the other build) && scripts/ab-profile.sh 2 6 /tmp/prof-old /tmp/prof-new
#
# W and CASE choose the weights and the case (default: the committed tiny AV test case).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 3 ] || { echo "usage: $0 THREADS ROUNDS BIN [BIN ...]" >&2; exit 2; }
threads=$1 rounds=$2
shift 2
W=${W:-$ROOT/tests/data/tiny-av.weights.safetensors}
CASE=${CASE:-$ROOT/tests/data/tiny-av.case.safetensors}
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    "$bin" "$W" "$CASE" "$threads" 8 | awk -v b="$bin" '/^forward/ && ++n > 2 {print b, $2}'
  done
done | sort -k1,1 -k2n | awk '
  { v[$1] = v[$1] " " $2; n[$1]++ }
  END { for (b in v) { split(v[b], x, " "); printf "%s: n=%d min %.1f ms, median %.1f ms\n", b, n[b], x[1], x[int(n[b] / 2) + 1] } }'
