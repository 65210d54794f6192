#!/usr/bin/env bash
# The test command: set up the machine, then run every Rust and Python test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh"
export DTFSAL_PYTHON="$ROOT/python/.venv/bin/python"
# the plugin library itself (cdylib): gst-plugin/tests/pipelines.rs runs pipelines/*.sh through gst-launch
cargo build -p gst-dtfsal --locked
# the venv's CUDA libraries (from torch's wheels): NVRTC compiles the kernels in a test; no GPU is needed
for d in "$ROOT"/python/.venv/lib/python3*/site-packages/nvidia/*/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
# fuzzing smoke pass: every fuzz target for a few seconds from its committed corpus (seeds and past
# crashes, so each crash found so far is replayed); fails on any crash. The full run: scripts/fuzz.sh.
# Before the tests, so that the test runners' summaries close the log.
"$ROOT/scripts/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-20}"
cargo test --workspace --locked
# soak smoke pass: 2 minutes of a live pipeline through the element (the hour-long run, bound 1 %/h:
# scripts/soak.sh). Over 60 s of samples one allocator step in warm-up (3.7 MB seen here) reads as
# ~150 %/h, so the bound here is 300 %/h: it still catches a leak of 3 KB per frame (25 fps: 270 MB/h
# on ~90 MB), let alone a leaked frame or clip; descriptors and the frame rate are checked as in the long run.
DTFSAL_BUILD=debug MAX_GROWTH_PCT_PER_HOUR="${SOAK_CI_MAX_GROWTH:-300}" "$ROOT/scripts/soak.sh" "${SOAK_CI_SECONDS:-120}" "$ROOT/out/soak-ci"
"$DTFSAL_PYTHON" -m pytest -q python/tests
