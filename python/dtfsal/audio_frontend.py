"""Reference audio front end (spec §2.2 steps 3-6), numpy float64.

This is the ground truth the Rust streaming front end (``dtfsal-engine``
``audio`` module) is tested against. Steps 3-4 follow torchvggish
``mel_features`` / ``vggish_input`` exactly (periodic Hann 400, hop 160,
FFT 512, STFT *magnitude*, 64-band HTK mel 125-7500 Hz with the DC row
zeroed, ``log(mel + 0.01)``, examples of 64 frames with hop 11); step 5 is
DiffSal's repeat rule; step 6 is the bilinear resize to 112x192.

Clip window rule (shared with the Rust engine): a clip centred at ``t``
seconds uses the 1.6 s window ``[160*k0, 160*k0 + 25600)`` samples of the
16 kHz stream, where ``k0 = floor(t*100 + 0.5) - 80`` is the window start
rounded to the nearest 10 ms STFT hop (so a streaming implementation can
reuse its STFT frames); samples outside the audio are zeros. That window
gives 158 frames -> 9 examples -> ``[9, 1, 112, 192]``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
STFT_WINDOW = 400  # 25 ms
STFT_HOP = 160  # 10 ms
FFT_LENGTH = 512
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_WINDOW = 64  # frames (0.64 s)
EXAMPLE_HOP = 11  # frames (0.11 s)
NUM_SLICES = 9
WINDOW_SAMPLES = 25600  # 1.6 s
WINDOW_FRAMES = 1 + (WINDOW_SAMPLES - STFT_WINDOW) // STFT_HOP  # 158
OUT_H, OUT_W = 112, 192


def frame(data: np.ndarray, window_length: int, hop_length: int) -> np.ndarray:
    """Frames along axis 0 without padding: ``[1 + (N - w)//h, w, ...]`` (torchvggish)."""
    num_samples = data.shape[0]
    num_frames = max(0, 1 + (num_samples - window_length) // hop_length)
    shape = (num_frames, window_length) + data.shape[1:]
    strides = (data.strides[0] * hop_length,) + data.strides
    return np.lib.stride_tricks.as_strided(data, shape=shape, strides=strides)


def periodic_hann(window_length: int) -> np.ndarray:
    """``0.5 - 0.5 cos(2 pi n / N)``, n = 0..N-1."""
    return 0.5 - (0.5 * np.cos(2 * np.pi / window_length * np.arange(window_length)))


def stft_magnitude(signal: np.ndarray, fft_length: int, hop_length: int, window_length: int) -> np.ndarray:
    """``|rfft(frame * hann, fft_length)|`` -> ``[frames, fft_length//2 + 1]``."""
    frames = frame(signal, window_length, hop_length)
    window = periodic_hann(window_length)
    return np.abs(np.fft.rfft(frames * window, int(fft_length)))


def hertz_to_mel(frequencies_hertz):
    """HTK mel: ``1127 ln(1 + f/700)``."""
    return 1127.0 * np.log(1.0 + (frequencies_hertz / 700.0))


def spectrogram_to_mel_matrix(
    num_mel_bins: int = NUM_BANDS,
    num_spectrogram_bins: int = FFT_LENGTH // 2 + 1,
    audio_sample_rate: int = SAMPLE_RATE,
    lower_edge_hertz: float = MEL_MIN_HZ,
    upper_edge_hertz: float = MEL_MAX_HZ,
) -> np.ndarray:
    """Triangular mel weights ``[num_spectrogram_bins, num_mel_bins]``, row 0 (DC) zeroed."""
    nyquist_hertz = audio_sample_rate / 2.0
    if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= nyquist_hertz:
        raise ValueError("bad mel band edges")
    spectrogram_bins_mel = hertz_to_mel(np.linspace(0.0, nyquist_hertz, num_spectrogram_bins))
    band_edges_mel = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    mel_weights_matrix = np.empty((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        lower_edge_mel, center_mel, upper_edge_mel = band_edges_mel[i : i + 3]
        lower_slope = (spectrogram_bins_mel - lower_edge_mel) / (center_mel - lower_edge_mel)
        upper_slope = (upper_edge_mel - spectrogram_bins_mel) / (upper_edge_mel - center_mel)
        mel_weights_matrix[:, i] = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    mel_weights_matrix[0, :] = 0.0
    return mel_weights_matrix


def log_mel(wave16k: np.ndarray) -> np.ndarray:
    """16 kHz mono waveform ``[N]`` -> log-mel frames ``[1 + (N-400)//160, 64]`` float64."""
    wave = np.asarray(wave16k, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform [N], got shape {wave.shape}")
    spectrogram = stft_magnitude(wave, FFT_LENGTH, STFT_HOP, STFT_WINDOW)
    mel = np.dot(spectrogram, spectrogram_to_mel_matrix(num_spectrogram_bins=spectrogram.shape[1]))
    return np.log(mel + LOG_OFFSET)


def examples(log_mel_frames: np.ndarray) -> np.ndarray:
    """Log-mel ``[frames, 64]`` -> examples ``[1 + (frames-64)//11, 64 time, 64 mel]``."""
    return np.ascontiguousarray(frame(log_mel_frames, EXAMPLE_WINDOW, EXAMPLE_HOP))


def nine_slices(ex: np.ndarray) -> np.ndarray:
    """DiffSal repeat rule (spec §2.2 step 5): ``[n, 64, 64]`` -> ``[9, 64, 64]``.

    If ``n != 9``: ``repeat_interleave(9 // n)`` (when > 0), append the first ``9 % n`` examples
    of that result, keep the first 9.
    """
    n = ex.shape[0]
    if n == 0:
        raise ValueError("no examples: the waveform is shorter than 0.655 s")
    if n != NUM_SLICES:
        rep, rem = divmod(NUM_SLICES, n)
        if rep > 0:
            ex = np.repeat(ex, rep, axis=0)
        ex = np.concatenate([ex, ex[:rem]], axis=0)
    return ex[:NUM_SLICES]


def resize_slices(x) -> torch.Tensor:
    """``[9, 64, 64]`` (or ``[9, 1, 64, 64]``) -> ``[9, 1, 112, 192]`` float32, bilinear, align_corners=False.

    Cast to float32 first, as DiffSal does (``torch.tensor(...).float()`` then ``Resize``).
    """
    t = torch.as_tensor(np.asarray(x)).to(torch.float32)
    if t.ndim == 3:
        t = t[:, None]
    return F.interpolate(t, size=(OUT_H, OUT_W), mode="bilinear", align_corners=False)


def window_start_frame(center_s: float) -> int:
    """Index ``k0`` of the first STFT frame of the clip window centred at ``center_s`` seconds."""
    return math.floor(center_s * 100.0 + 0.5) - WINDOW_SAMPLES // (2 * STFT_HOP)


def clip_window(wave16k: np.ndarray, center_s: float) -> np.ndarray:
    """The zero-filled 25,600-sample window of ``wave16k`` for a clip centred at ``center_s``."""
    wave = np.asarray(wave16k)
    start = window_start_frame(center_s) * STFT_HOP
    out = np.zeros(WINDOW_SAMPLES, dtype=wave.dtype)
    lo, hi = max(start, 0), min(start + WINDOW_SAMPLES, wave.shape[0])
    if hi > lo:
        out[lo - start : hi - start] = wave[lo:hi]
    return out


def clip_log_mel(wave16k: np.ndarray, center_s: float) -> np.ndarray:
    """Log-mel frames ``[158, 64]`` float64 of the clip window centred at ``center_s``."""
    return log_mel(clip_window(wave16k, center_s))


def clip_audio(wave16k: np.ndarray, center_s: float) -> np.ndarray:
    """Model audio input for the clip centred at ``center_s`` s: ``[9, 1, 112, 192]`` float32."""
    ex = nine_slices(examples(clip_log_mel(wave16k, center_s)))
    return resize_slices(ex).numpy()
