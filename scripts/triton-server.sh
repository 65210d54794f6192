#!/usr/bin/env bash
# Starts a CPU Triton Inference Server (2.51, from the nvidia-pytriton wheel that scripts/setup.sh installs
# in python/.venv-triton) on loopback only, waits until it is ready, and prints its PID and ports.
#
#   scripts/triton-server.sh REPO [GRPC_PORT] [HTTP_PORT]      (ports default to free ones)
#   -> one line on stdout: "pid=<PID> grpc=127.0.0.1:<GRPC_PORT> http=127.0.0.1:<HTTP_PORT>"
#   stop it with: kill <PID>
#
# The server's log goes to $TRITON_LOG (default: REPO/../tritonserver.log). TRITON_VENV overrides the venv.
# Exits non-zero (with the log's tail) when the server is not ready within $TRITON_READY_S seconds (60).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(cd "${1:?usage: triton-server.sh REPO [GRPC_PORT] [HTTP_PORT]}" && pwd)
VENV=${TRITON_VENV:-$ROOT/python/.venv-triton}
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
TS=$SITE/pytriton/tritonserver
[ -x "$TS/bin/tritonserver" ] || { echo "triton-server: no tritonserver in $VENV (run scripts/setup.sh)" >&2; exit 2; }
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC=${2:-$(free_port)}
HTTP=${3:-$(free_port)}
LOG=${TRITON_LOG:-$REPO/../tritonserver.log}
# the python backend starts triton_python_backend_stub (found in the backend directory) with the venv's python
# first on PATH, so model.py imports the venv's numpy and onnxruntime
PATH="$VENV/bin:$PATH" LD_LIBRARY_PATH="$SITE/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  setsid "$TS/bin/tritonserver" --model-repository="$REPO" --backend-directory="$TS/backends" \
  --grpc-address=127.0.0.1 --grpc-port="$GRPC" --http-address=127.0.0.1 --http-port="$HTTP" \
  --allow-metrics=false --log-verbose=0 >"$LOG" 2>&1 </dev/null &
PID=$!
for _ in $(seq 1 $((${TRITON_READY_S:-60} * 5))); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "triton-server: tritonserver exited; log $LOG:" >&2; tail -20 "$LOG" >&2; exit 1
  fi
  if "$VENV/bin/python" - "$HTTP" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready", timeout=1)
PY
    echo "pid=$PID grpc=127.0.0.1:$GRPC http=127.0.0.1:$HTTP"
    exit 0
  fi
  sleep 0.2
done
echo "triton-server: not ready after ${TRITON_READY_S:-60} s; log $LOG:" >&2; tail -20 "$LOG" >&2
kill "$PID" 2>/dev/null || true
exit 1
