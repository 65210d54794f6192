"""Writes the audio front-end parity fixture read by the Rust tests (``engine/tests/audio.rs``).

    python -m dtfsal.audio_fixtures [OUT]      # default: engine/tests/data/audio_ref.safetensors

Contents (all float32; reference values computed in float64 by ``dtfsal.audio_frontend``):

- ``wave.<name>`` ``[N]``: 16 kHz mono input waveforms: ``speech`` (espeak-ng through sox when
  installed, else a synthetic vowel-like pulse train), ``noise`` (white + low-passed), ``tones``
  (two tones, a chirp and a click train). The ``gap`` wave of the clip cases is ``speech`` with
  samples ``[16000, 24000)`` zeroed (metadata ``gap``): what a stream with a timestamp jump must
  produce; it is not stored.
- ``logmel.<name>`` ``[frames, 64]``: ``log_mel(wave)``.
- ``clip_logmel.<i>`` ``[158, 64]``: ``clip_log_mel(wave, center_s)`` for the cases in the
  ``clips`` metadata entry (JSON list of ``{"key", "wave", "center_s"}``).
- ``clip_audio.<i>`` ``[9, 1, 112, 192]``: ``clip_audio(wave, center_s)`` for the ``full_clips``
  cases (few: 774 KB each).

The file stays under 2 MB.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import wave as wavlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from . import audio_frontend as af

SR = af.SAMPLE_RATE
GAP = (16000, 24000)  # samples zeroed in the "gap" wave (1.0 s .. 1.5 s)

# (wave, center_s): windows inside the audio, past its start, past its end, off the 10 ms grid.
CLIPS = [
    ("speech", 0.0),
    ("speech", 0.5),
    ("speech", 1.234),
    ("speech", 2.9),
    ("noise", 1.0),
    ("tones", 1.3),
    ("gap", 1.2),
]
FULL_CLIPS = [("speech", 0.5)]


def read_wav_s16_mono(path: Path) -> np.ndarray:
    with wavlib.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == SR, path
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768.0


def speech(seconds: float) -> np.ndarray:
    """espeak-ng speech resampled to 16 kHz by sox, or a synthetic voiced signal as fallback."""
    n = int(seconds * SR)
    if shutil.which("espeak-ng") and shutil.which("sox"):
        with tempfile.TemporaryDirectory() as d:
            raw, out = Path(d) / "raw.wav", Path(d) / "16k.wav"
            text = "The quick brown fox jumps over the lazy dog. Saliency follows the sound."
            subprocess.run(["espeak-ng", "-s", "160", "-w", str(raw), text], check=True)
            subprocess.run(["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out)], check=True)
            x = read_wav_s16_mono(out)
    else:  # glottal pulse train at a gliding pitch through two formant resonators
        rng = np.random.default_rng(1)
        t = np.arange(n) / SR
        f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
        pulses = (np.diff(np.floor(np.cumsum(f0) / SR), prepend=0) > 0).astype(np.float64)
        x = pulses + 0.01 * rng.standard_normal(n)
        for fc, bw in ((700, 90), (1200, 110), (2600, 160)):
            r = np.exp(-np.pi * bw / SR)
            a1, a2 = -2 * r * np.cos(2 * np.pi * fc / SR), r * r
            y = np.zeros(n)
            for i in range(n):
                y[i] = x[i] - a1 * y[i - 1] - a2 * y[i - 2]
            x = y / np.abs(y).max()
        x = (0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    x = np.pad(x, (0, max(0, n - x.shape[0])))[:n]
    return np.round(x * 32768.0).clip(-32768, 32767).astype(np.float32) / 32768.0  # on the s16 grid


def noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    n = int(seconds * SR)
    white = rng.standard_normal(n)
    brown = np.cumsum(rng.standard_normal(n))
    brown = (brown - np.convolve(brown, np.ones(401) / 401, mode="same")) / 40
    return (0.1 * white + 0.2 * brown).astype(np.float32)


def tones(seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 3150.5 * t)
    x += 0.2 * np.sin(2 * np.pi * (200 * t + 0.5 * 3000 / seconds * t**2))  # chirp 200 -> 3200 Hz
    x[:: SR // 8] += 0.9  # clicks
    x[: SR // 4] *= np.linspace(0, 1, SR // 4)  # fade in
    return x.astype(np.float32)


def build() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    waves = {"speech": speech(3.0), "noise": noise(2.0), "tones": tones(2.0)}
    gap = waves["speech"].copy()
    gap[GAP[0] : GAP[1]] = 0.0
    waves["gap"] = gap
    tensors: dict[str, np.ndarray] = {}
    for name, w in waves.items():
        if name != "gap":
            tensors[f"wave.{name}"] = w
            tensors[f"logmel.{name}"] = af.log_mel(w).astype(np.float32)
    clips = []
    for i, (name, c) in enumerate(CLIPS):
        key = f"clip_logmel.{i}"
        tensors[key] = af.clip_log_mel(waves[name], c).astype(np.float32)
        clips.append({"key": key, "wave": name, "center_s": c})
    full = []
    for i, (name, c) in enumerate(FULL_CLIPS):
        key = f"clip_audio.{i}"
        tensors[key] = af.clip_audio(waves[name], c)
        full.append({"key": key, "wave": name, "center_s": c})
    meta = {"clips": json.dumps(clips), "full_clips": json.dumps(full), "gap": json.dumps(list(GAP))}
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}, meta


def main(argv: list[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    out = Path(argv[0]) if argv else root / "engine" / "tests" / "data" / "audio_ref.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors, meta = build()
    save_file(tensors, str(out), metadata=meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors)")


if __name__ == "__main__":
    main(sys.argv[1:])
