#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine for dtfsal-rs: Debian packages (GStreamer 1.22 and its
# plugins, audio tools for tests), the Python venv of python/ (torch from PyPI, its ~5 GB of CUDA wheels
# kept in a pip cache), and a check for the Rust toolchain. Re-running it does nothing that is already done.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

APT_PKGS=(
  pkg-config g++
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav
  espeak-ng sox
  fonts-dejavu-core
  libpython3.11
)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python venv for python/ (the PyTorch reference). The stamp makes re-runs free.
VENV="$ROOT/python/.venv"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/dtfsal-pip}"
want=$(cat python/requirements.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  # torch + its CUDA wheels need ~6 GB installed, ~4 GB more for the cache: without room for the
  # cache, install without it instead of failing half-way with ENOSPC.
  mkdir -p "$PIP_CACHE_DIR"
  free_gb() { df -Pk "$1" | awk 'NR==2 {print int($4 / 1048576)}'; }
  if [ "$(free_gb "$ROOT/python")" -lt 7 ]; then
    echo "setup: only $(free_gb "$ROOT/python") GB free under $ROOT/python; the venv needs ~7 GB (torch + CUDA wheels)" >&2
    exit 1
  fi
  if [ "$(free_gb "$PIP_CACHE_DIR")" -lt 12 ] && [ -z "$(ls -A "$PIP_CACHE_DIR" 2>/dev/null)" ]; then
    echo "setup: little disk free ($(free_gb "$PIP_CACHE_DIR") GB): installing without a pip cache"
    export PIP_NO_CACHE_DIR=1
  fi
  echo "setup: creating $VENV (pip cache: ${PIP_NO_CACHE_DIR:+off}${PIP_NO_CACHE_DIR:-$PIP_CACHE_DIR})"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r python/requirements.txt
  # torchvggish's package pulls resampy/soundfile we do not use; only its model file is imported (tests)
  "$VENV/bin/pip" install -q --no-deps torchvggish==0.2
  echo "$want" >"$VENV/.requirements.sha256"
fi

# nvcc 13.0 from PyPI for the CUDA kernels (kernels/build.rs compiles them into an embedded fatbin; no GPU
# needed). Pinned to 13.0: newer PTX does not load on the 580 driver. Kept in its own --target folder inside
# the venv so its CUDA runtime pin cannot downgrade the one torch depends on.
NVCC_DIR="$VENV/cuda-nvcc-13.0"
if [ ! -x "$NVCC_DIR/nvidia/cu13/bin/nvcc" ] && [ ! -x "$NVCC_DIR/nvidia/cuda_nvcc/bin/nvcc" ]; then
  echo "setup: installing nvcc 13.0 (pip) into $NVCC_DIR"
  "$VENV/bin/pip" install -q --target "$NVCC_DIR" "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-nvvm==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
fi

# Triton Inference Server for the triton backend's tests (CPU, loopback only): tritonserver 2.51 and its
# python backend from the nvidia-pytriton wheel, in its own Python 3.11 venv with numpy<2 + onnxruntime
# (the served model.py runs the exported ONNX file). Its python-backend stub needs libpython3.11 (above).
# A failed install is reported, not fatal: the triton tests then skip saying why.
TVENV="$ROOT/python/.venv-triton"
TWANT="nvidia-pytriton==0.7.0 numpy<2 onnxruntime"
if [ "$(cat "$TVENV/.stamp" 2>/dev/null)" != "$TWANT" ]; then
  if command -v python3.11 >/dev/null; then
    echo "setup: creating $TVENV (tritonserver from nvidia-pytriton 0.7.0)"
    if python3.11 -m venv "$TVENV" \
      && "$TVENV/bin/pip" install -q --no-deps nvidia-pytriton==0.7.0 \
      && "$TVENV/bin/pip" install -q "numpy<2" onnxruntime; then
      TS=$("$TVENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/pytriton/tritonserver
      cp --remove-destination "$TS/python_backend_stubs/3.11/triton_python_backend_stub" "$TS/backends/python/"
      echo "$TWANT" >"$TVENV/.stamp"
    else
      echo "setup: WARNING: could not install tritonserver in $TVENV; the triton tests will be skipped" >&2
      if [ "${CI:-}" = true ]; then echo "setup: CI must run the triton tests" >&2; exit 1; fi
    fi
  else
    echo "setup: WARNING: no python3.11 for the Triton server venv; the triton tests will be skipped" >&2
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install the Rust toolchain (rustup, Rust >= 1.95)" >&2
  exit 1
fi

# cargo-fuzz for scripts/fuzz.sh and the smoke pass of scripts/test.sh (built from crates.io once).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
echo "setup: ok"
