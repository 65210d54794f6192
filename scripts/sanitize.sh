#!/usr/bin/env bash
# Memory check of the GStreamer element: the element's integration tests (gst-plugin/tests/element.rs
# and scenarios.rs) built with AddressSanitizer + LeakSanitizer and run once each, one process per test,
# so that every test gets its own leak report.
#   Usage: scripts/sanitize.sh [OUT_DIR]          (default: out/sanitize)
#   env: TESTS   "binary:test ..." to run instead of every test of the two files (binary: element, scenarios)
#        CARGO_TARGET_DIR  as for cargo; the instrumented build goes to <target>/x86_64-unknown-linux-gnu/
# The sanitizer comes from rustc (-Zsanitizer=address; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# the unstable flag; the runtime ships with rust-std for x86_64-unknown-linux-gnu): Rust code of the
# workspace and its dependencies is instrumented, the standard library and the system's GLib/GStreamer
# are not (their heap use is still checked through ASan's malloc). LeakSanitizer runs at each process's
# exit; scripts/lsan-gstreamer.supp suppresses one-time allocations of system libraries (each entry
# says which and why; the summary shows the bytes suppressed per test).
# Writes OUT_DIR/build.log, OUT_DIR/<binary>.<test>.log (test output + sanitizer reports) and
# OUT_DIR/summary.tsv; prints a table (result, ASan errors, leaked bytes direct (definitely lost) /
# indirect, bytes suppressed, per test) and exits 1 on any ASan error, any leak not suppressed or any
# failed test. Not part of CI: the instrumented build of the workspace's dependencies takes ~20 min on
# two cores, the tests ~5 min.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-$ROOT/out/sanitize}
mkdir -p "$OUT"
TARGET=x86_64-unknown-linux-gnu
SUPP="$ROOT/scripts/lsan-gstreamer.supp"

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address ${RUSTFLAGS:-}"
echo "sanitize: building the element's tests with AddressSanitizer (--target $TARGET)" >&2
declare -A BIN
while IFS=$'\t' read -r name exe; do
  BIN[$name]=$exe
done < <(cargo test -p gst-dtfsal --locked --target "$TARGET" --no-run --test element --test scenarios \
  --message-format=json 2>"$OUT/build.log" \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + "\t" + m["executable"])
')
for b in element scenarios; do
  if [ ! -x "${BIN[$b]:-}" ]; then
    tail -20 "$OUT/build.log" >&2
    echo "sanitize: no test binary for $b: the build failed ($OUT/build.log)" >&2
    exit 1
  fi
done

if [ -z "${TESTS:-}" ]; then
  TESTS=""
  for b in element scenarios; do
    for t in $("${BIN[$b]}" --list 2>/dev/null | sed -n 's/: test$//p'); do TESTS+="$b:$t "; done
  done
fi

# full stack unwinding at each malloc: the suppressions match frames inside the (frame-pointer-less)
# system libraries
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:print_summary=1:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=1"
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}
# GLib: plain malloc for everything (no slice allocator caches), pointers cleared on free
export G_SLICE=always-malloc G_DEBUG=gc-friendly
# the instrumented build runs ~2-3x slower: the scenarios' time bounds scale
export DTFSAL_TEST_TIME_SCALE=${DTFSAL_TEST_TIME_SCALE:-4}

printf 'test\tresult\tasan_errors\tleaked_direct_bytes\tleaked_indirect_bytes\tsuppressed_bytes\tseconds\n' >"$OUT/summary.tsv"
fail=0
for bt in $TESTS; do
  b=${bt%%:*}; t=${bt#*:}
  log="$OUT/$b.$t.log"
  start=$(date +%s)
  set +e
  "${BIN[$b]}" --exact "$t" --test-threads=1 >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  errors=$(grep -c '^==[0-9]*==ERROR: AddressSanitizer' "$log" || true)
  direct=$(awk '/^Direct leak of/ {s += $4} END {print s + 0}' "$log")
  indirect=$(awk '/^Indirect leak of/ {s += $4} END {print s + 0}' "$log")
  suppressed=$(awk '/^Suppressions used:/ {on = 1; next} on && /^-+$/ {on = 0} on && $1 ~ /^[0-9]+$/ {s += $2} END {print s + 0}' "$log")
  if grep -q '^test result: ok. 1 passed' "$log"; then result=ok; else result=FAILED; fi
  [ "$rc" -ne 0 ] && [ "$result" = ok ] && [ "$errors" -eq 0 ] && [ "$direct" -eq 0 ] && result="exit $rc"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b:$t" "$result" "$errors" "$direct" "$indirect" "$suppressed" "$secs" >>"$OUT/summary.tsv"
  if [ "$result" != ok ] || [ "$errors" -ne 0 ] || [ "$direct" -ne 0 ] || [ "$indirect" -ne 0 ]; then fail=1; fi
done

column -t -s $'\t' "$OUT/summary.tsv"
n=$(($(wc -l <"$OUT/summary.tsv") - 1))
if [ "$fail" -ne 0 ]; then
  echo "sanitize: FAILED after ${SECONDS} s (see $OUT/*.log)" >&2
  exit 1
fi
echo "sanitize: $n tests passed, no AddressSanitizer error, no leak outside the suppressions (${SECONDS} s; logs in $OUT)"
