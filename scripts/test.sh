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
"$DTFSAL_PYTHON" -m pytest -q python/tests
