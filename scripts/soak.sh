#!/usr/bin/env bash
# Soak test: a live pipeline (videotestsrc + audiotestsrc, is-live, 25 fps) through the element in
# live mode for SECONDS, sampling the process's RSS and open file descriptors every SAMPLE_EVERY seconds.
# Reports the RSS slope after warm-up (least squares over the running maximum, % of its mean per hour), the descriptor
# range, and the output frame rate against the input's 25 fps.
#   Usage: scripts/soak.sh [SECONDS] [OUT_DIR]     (defaults: 3600, out/soak)
#   env: SAMPLE_EVERY (10), WARMUP seconds left out of the slope (60), THREADS (engine threads, 0: all),
#        MODEL (weight file; default: the embedded demo model), DTFSAL_BUILD (release)
# Writes OUT_DIR/samples.csv (t_s, rss_kb, fds) and OUT_DIR/summary.json; exits 1 when the RSS grows
# faster than MAX_GROWTH_PCT_PER_HOUR (1), descriptors grow, or the output rate is below 99 % of 25 fps.
set -euo pipefail
source "$(dirname "$0")/../pipelines/common.sh"
SECONDS_TOTAL=${1:-3600}
OUT=${2:-$REPO/out/soak}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
WARMUP=${WARMUP:-60}
MAX_GROWTH=${MAX_GROWTH_PCT_PER_HOUR:-1}
mkdir -p "$OUT"
LOG="$OUT/gst.log"

# fpsdisplaysink counts the frames that leave the element (rendered + dropped by the sink)
gst-launch-1.0 -e -v \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=192,framerate=25/1 \
  ! dtfsal name=s $MODEL_ARG threads="$THREADS" mode=live alignment=last \
  ! fpsdisplaysink video-sink=fakesink text-overlay=false sync=true fps-update-interval=1000 \
  audiotestsrc is-live=true wave=ticks ! audioconvert ! audioresample ! s.audio_sink >"$LOG" 2>&1 &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true' EXIT
echo "t_s,rss_kb,fds" >"$OUT/samples.csv"
start=$(date +%s)
while :; do
  now=$(( $(date +%s) - start ))
  if ! kill -0 $PID 2>/dev/null; then
    echo "soak: the pipeline exited early after ${now} s; log: $LOG" >&2
    tail -20 "$LOG" >&2
    exit 1
  fi
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$PID/status)
  fds=$(ls /proc/$PID/fd | wc -l)
  echo "$now,$rss,$fds" >>"$OUT/samples.csv"
  [ "$now" -ge "$SECONDS_TOTAL" ] && break
  sleep "$SAMPLE_EVERY"
done
kill -INT $PID
wait $PID || true
trap - EXIT
elapsed=$(( $(date +%s) - start ))

python3 - "$OUT" "$WARMUP" "$MAX_GROWTH" "$elapsed" <<'EOF'
import csv, json, re, sys
out, warmup, max_growth, elapsed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rows = [(float(r["t_s"]), float(r["rss_kb"]), int(r["fds"])) for r in csv.DictReader(open(f"{out}/samples.csv"))]
late = [r for r in rows if r[0] >= warmup] or rows
# slope of the running maximum: a leak raises the high-water mark, while a momentary dip (a buffer
# freed and mapped again between two samples) is not growth and must not tilt the fit
t = [r[0] for r in late]; m = []
for r in late:
    m.append(max(r[1], m[-1]) if m else r[1])
tm, mm = sum(t) / len(t), sum(m) / len(m)
var = sum((x - tm) ** 2 for x in t)
slope_kb_s = sum((x - tm) * (y - mm) for x, y in zip(t, m)) / var if var else 0.0
growth = 100 * slope_kb_s * 3600 / mm
fds = [r[2] for r in late]
# the sink's last report: "rendered: N, dropped: M, current: X, average: Y" (average since its first frame)
log = open(f"{out}/gst.log", errors="replace").read()
counts = re.findall(r"rendered: (\d+), dropped: (\d+), current: [\d.]+, average: ([\d.]+)", log)
frames = int(counts[-1][0]) + int(counts[-1][1]) if counts else 0
fps = float(counts[-1][2]) if counts else 0.0
summary = {"seconds": elapsed, "samples": len(rows), "warmup_s": warmup, "rss_mib_mean": round(mm / 1024, 1),
           "rss_growth_pct_per_hour": round(growth, 3), "fds_min": min(fds), "fds_max": max(fds),
           "frames_out": frames, "fps_out": round(fps, 2), "fps_in": 25}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
print(json.dumps(summary))
ok = growth < max_growth and max(fds) - min(fds) <= 2 and fps >= 0.99 * 25
if not ok:
    print(f"soak: FAILED (growth < {max_growth} %/h, fds steady, fps >= 24.75 required)", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
