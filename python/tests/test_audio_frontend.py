"""The reference audio front end (spec §2.2): shapes, the repeat rule, the window rule, the
torchvggish mel matrix, an independent STFT check, and the committed Rust parity fixture."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dtfsal import audio_frontend as af

FIXTURE = Path(__file__).resolve().parents[2] / "engine" / "tests" / "data" / "audio_ref.safetensors"


def test_mel_matrix_matches_torchvggish_layout():
    m = af.spectrogram_to_mel_matrix()
    assert m.shape == (257, 64)
    assert np.all(m[0] == 0.0), "DC row must be zeroed"
    assert np.all(m >= 0.0) and np.all(m.max(axis=0) <= 1.0) and np.all(m.max(axis=0) > 0.5)
    # Band edges: 125 Hz and 7500 Hz on the HTK scale; nothing above the last edge.
    freqs = np.linspace(0, 8000, 257)
    assert np.all(m[freqs >= 7500] == 0.0) and np.all(m[freqs <= 125] == 0.0)
    assert af.hertz_to_mel(700.0) == pytest.approx(1127.0 * np.log(2.0))


def test_periodic_hann():
    w = af.periodic_hann(400)
    assert w[0] == 0.0 and w[200] == pytest.approx(1.0) and w[100] == pytest.approx(0.5)
    assert np.allclose(w, torch.hann_window(400, periodic=True, dtype=torch.float64).numpy())


def test_stft_magnitude_matches_torch_stft():
    x = np.random.default_rng(0).standard_normal(16000)
    ours = af.stft_magnitude(x, 512, 160, 400)
    # torch.stft centres the 400-window inside the 512 frame: shift the input by 56 samples.
    xt = torch.from_numpy(np.concatenate([np.zeros(56), x, np.zeros(112)]))
    win = torch.hann_window(400, periodic=True, dtype=torch.float64)
    ref = torch.stft(xt, 512, 160, 400, win, center=False, return_complex=True).abs().T.numpy()
    assert np.abs(ours - ref[: ours.shape[0]]).max() < 1e-9


def test_shapes_and_frame_counts():
    assert af.WINDOW_FRAMES == 158
    assert af.log_mel(np.zeros(25600)).shape == (158, 64)
    assert af.log_mel(np.zeros(399)).shape == (0, 64)
    ex = af.examples(af.log_mel(np.zeros(25600)))
    assert ex.shape == (9, 64, 64)
    out = af.clip_audio(np.random.default_rng(1).standard_normal(40000).astype(np.float32) * 0.1, 1.0)
    assert out.shape == (9, 1, 112, 192) and out.dtype == np.float32


def test_silence_is_log_offset():
    lm = af.log_mel(np.zeros(1000))
    assert np.all(lm == np.log(0.01))


def test_examples_hop_11():
    lm = np.arange(158, dtype=np.float64)[:, None].repeat(64, axis=1)
    ex = af.examples(lm)
    assert [e[0, 0] for e in ex] == [11.0 * i for i in range(9)]
    assert ex[8, 63, 0] == 151.0


@pytest.mark.parametrize(
    "n, want",
    [
        (9, [0, 1, 2, 3, 4, 5, 6, 7, 8]),
        (1, [0] * 9),
        (2, [0, 0, 0, 0, 1, 1, 1, 1, 0]),
        (4, [0, 0, 1, 1, 2, 2, 3, 3, 0]),
        (7, [0, 1, 2, 3, 4, 5, 6, 0, 1]),
        (12, [0, 1, 2, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_repeat_rule(n, want):
    ex = np.arange(n, dtype=np.float64)[:, None, None] * np.ones((1, 64, 64))
    out = af.nine_slices(ex)
    assert out.shape == (9, 64, 64)
    assert [int(e[0, 0]) for e in out] == want
    # DiffSal's torch code, literally.
    t = torch.from_numpy(ex)
    rep, rem = 9 // n, 9 % n
    if n != 9:
        if rep:
            t = torch.repeat_interleave(t, rep, dim=0)
        t = torch.cat([t, t[:rem]], dim=0)
    assert np.array_equal(out, t[:9].numpy())


def test_repeat_rule_rejects_no_examples():
    with pytest.raises(ValueError):
        af.nine_slices(np.zeros((0, 64, 64)))


def test_window_rule():
    assert af.window_start_frame(0.8) == 0
    assert af.window_start_frame(0.0) == -80
    assert af.window_start_frame(1.0049) == 20 and af.window_start_frame(1.0051) == 21
    wave = np.arange(1, 30001, dtype=np.float32)
    w = af.clip_window(wave, 0.5)  # start sample -4800: 4800 zeros, then the wave
    assert w.shape == (25600,) and np.all(w[:4800] == 0) and w[4800] == 1.0
    w = af.clip_window(wave, 1.5)  # start 11200, end 36800 > 30000: zeros past the end
    assert w[0] == 11201.0 and np.all(w[30000 - 11200 :] == 0) and w[30000 - 11200 - 1] == 30000.0


def test_resize_is_bilinear_half_pixel():
    x = np.arange(64, dtype=np.float32)[None, :, None] * np.ones((9, 64, 64), np.float32)
    y = af.resize_slices(x)
    assert y.shape == (9, 1, 112, 192) and y.dtype == torch.float32
    # Rows: src = (i + 0.5)·64/112 − 0.5, clamped to [0, 63].
    i = np.arange(112)
    src = np.clip((i + 0.5) * 64 / 112 - 0.5, 0, 63)
    assert np.allclose(y[0, 0, :, 0].numpy(), src, atol=1e-5)


@pytest.mark.skipif(not FIXTURE.exists(), reason="no committed fixture")
def test_committed_fixture_matches_reference():
    from safetensors.numpy import load_file
    from safetensors import safe_open

    from dtfsal.audio_fixtures import GAP

    t = load_file(str(FIXTURE))
    with safe_open(str(FIXTURE), "np") as f:
        meta = f.metadata()
    for name in ("speech", "noise", "tones"):
        assert np.abs(af.log_mel(t[f"wave.{name}"]) - t[f"logmel.{name}"]).max() <= 1e-6
    waves = {k[5:]: v for k, v in t.items() if k.startswith("wave.")}
    waves["gap"] = waves["speech"].copy()
    waves["gap"][GAP[0] : GAP[1]] = 0
    for case in json.loads(meta["clips"]):
        ref = af.clip_log_mel(waves[case["wave"]], case["center_s"])
        assert np.abs(ref - t[case["key"]]).max() <= 1e-6
    for case in json.loads(meta["full_clips"]):
        assert np.abs(af.clip_audio(waves[case["wave"]], case["center_s"]) - t[case["key"]]).max() <= 1e-6
