#!/usr/bin/env bash
# Fuzzing: builds the cargo-fuzz targets of fuzz/ and runs each for SECONDS_PER_TARGET (default 300)
# from its committed seed corpus (fuzz/corpus/<target>/, read-only: new inputs go to a scratch copy),
# then prints per target the executions, exec/s and crashes, and writes out/fuzz/summary.json.
# Exits non-zero when a target crashed (or hung, or ran out of memory): the input is saved under
# fuzz/artifacts/<target>/ (git-ignored); replay it with `fuzz/target/<triple>/release/<target> FILE`,
# add a regression test, and copy it into fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Stable Rust: cargo fuzz builds with `--sanitizer none` (the default, AddressSanitizer, needs the
# nightly -Zsanitizer flag). The code under test is safe Rust, where ASan finds little that the
# build's debug assertions and overflow checks (`-a`) do not: panics, overflows, out-of-bounds
# indexing and aborts all end the run; only libFuzzer's coverage instrumentation is needed, and its
# flags (-Cpasses=sancov-module, -Cllvm-args=...) are stable. On nightly, `FUZZ_SANITIZER=address`
# gives ASan (RUSTC_BOOTSTRAP=1 also works on stable, unsupported).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECS=${1:-300}
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(weights_loader audio_frontend element_harness)
SANITIZER=${FUZZ_SANITIZER:-none}
OUT="$ROOT/out/fuzz"
mkdir -p "$OUT"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked (scripts/setup.sh does)" >&2
  exit 1
fi

# The CUDA kernels are not used by any target: skip their nvcc build (the build script then embeds
# nothing and says so), which the fuzz crate's own target dir would otherwise redo.
export DTFSAL_NVCC=/nonexistent-nvcc-not-needed-for-fuzzing
unset DTFSAL_REQUIRE_NVCC
# Overflow checks are part of debug assertions (-a).
BUILD=(cargo fuzz build --sanitizer "$SANITIZER" -a)
echo "fuzz: building ${TARGETS[*]} (${BUILD[*]})"
start=$(date +%s)
for t in "${TARGETS[@]}"; do
  if ! (cd fuzz && "${BUILD[@]}" "$t") >"$OUT/build.log" 2>&1; then
    grep -v '^\s*Compiling' "$OUT/build.log" | tail -40 >&2
    echo "fuzz: build of $t failed (out/fuzz/build.log)" >&2
    exit 1
  fi
done
BIN="$ROOT/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
build_s=$(($(date +%s) - start))
echo "fuzz: built in ${build_s} s"

# libFuzzer options: inputs up to 4 KiB (the structured inputs need more than the 4-byte start),
# 2 GB RSS, a 120 s per-input timeout (an input normally takes milliseconds, but a busy shared
# machine has been seen to stall a process for ~40 s; element_harness has its own watchdog, since
# the alarm may land on a GStreamer thread), slow units reported from 60 s.
declare -A EXTRA=([weights_loader]="-max_len=4096" [audio_frontend]="-max_len=4096" [element_harness]="-max_len=4096")
summary="["
status=0
for t in "${TARGETS[@]}"; do
  work="$OUT/corpus/$t"
  arts="$ROOT/fuzz/artifacts/$t"
  mkdir -p "$work" "$arts"
  log="$OUT/$t.log"
  echo "fuzz: $t for $SECS s"
  t0=$(date +%s)
  set +e
  # the committed corpus is read (seeds and past crashes); new inputs go to $work
  "$BIN/$t" "$work" "$ROOT/fuzz/corpus/$t" -max_total_time="$SECS" -timeout=120 -rss_limit_mb=2048 -report_slow_units=60 \
    -artifact_prefix="$arts/" -print_final_stats=1 ${EXTRA[$t]:-} >"$log" 2>&1
  rc=$?
  set -e
  wall=$(($(date +%s) - t0))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    # a crash ends the run before the final stats: take the last status line
    line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$line")
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$line")
  fi
  # crash-, oom-, timeout- and leak- files; slow-unit- files (-report_slow_units) are not failures
  crashes=$(grep -cE '^artifact_prefix=.*Test unit written to .*/(crash|oom|timeout|leak)-' "$log" || true)
  artifact=$(sed -nE 's/.*Test unit written to (.*\/(crash|oom|timeout|leak)-.*)$/\1/p' "$log" | tail -1)
  if ((rc != 0 && crashes == 0)); then crashes=1; fi
  ((crashes == 0)) || status=1
  printf 'fuzz: %-16s %10s execs  %6s exec/s  %s crash(es)  %s s%s\n' "$t" "${execs:-0}" "${rate:-0}" "$crashes" "$wall" \
    "${artifact:+  -> $artifact}"
  if ((crashes)); then grep -E -A1 'panicked at|ERROR: libFuzzer|stuck in phase' "$log" | head -4 | sed 's/^/    /' || true; fi
  [ "$summary" = "[" ] || summary+=","
  summary+=$(printf '{"target":"%s","seconds":%s,"executions":%s,"exec_per_s":%s,"crashes":%s,"artifact":"%s","corpus":%s}' \
    "$t" "$wall" "${execs:-0}" "${rate:-0}" "$crashes" "${artifact:-}" "$(find "$work" -type f | wc -l)")
done
summary+="]"
printf '{"seconds_per_target":%s,"build_seconds":%s,"sanitizer":"%s","targets":%s}\n' "$SECS" "$build_s" "$SANITIZER" "$summary" \
  | python3 -m json.tool >"$OUT/summary.json"
echo "fuzz: summary in out/fuzz/summary.json"
exit $status
