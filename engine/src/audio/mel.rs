//! One VGGish log-mel frame: periodic Hann window, 512-point real FFT magnitude, 64-band HTK
//! mel filterbank, `ln(mel + 0.01)` — torchvggish `mel_features.log_mel_spectrogram`.
//!
//! Everything per frame runs in `f64` (like the numpy reference); only the resulting 64 log-mel
//! values are stored as `f32`. `ln(mel + 0.01)` amplifies absolute errors of quiet frames by up
//! to 100×, so an `f32` FFT would not stay within 1e-4 of the reference.

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::{
    FFT_LENGTH, LOG_OFFSET, MEL_MAX_HZ, MEL_MIN_HZ, NUM_BANDS, SAMPLE_RATE, STFT_HOP, STFT_WINDOW,
};

/// Number of one-sided spectrum bins: `FFT_LENGTH / 2 + 1` = 257.
pub const NUM_BINS: usize = FFT_LENGTH / 2 + 1;

/// HTK mel scale: `1127 · ln(1 + f / 700)`.
pub fn hertz_to_mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// `numpy.linspace(start, stop, num)` (endpoint included).
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| start + i as f64 * step).collect();
    v[num - 1] = stop;
    v
}

/// The dense mel weight matrix `[257 bins, 64 bands]` (row-major), exactly torchvggish
/// `spectrogram_to_mel_matrix(64, 257, 16000, 125, 7500)`: triangles on the HTK mel scale over
/// the 257 linearly spaced bin frequencies 0..8000 Hz, DC row zeroed.
pub fn mel_matrix() -> Vec<f64> {
    let bins_mel: Vec<f64> = linspace(0.0, SAMPLE_RATE as f64 / 2.0, NUM_BINS)
        .into_iter()
        .map(hertz_to_mel)
        .collect();
    let edges = linspace(
        hertz_to_mel(MEL_MIN_HZ),
        hertz_to_mel(MEL_MAX_HZ),
        NUM_BANDS + 2,
    );
    let mut m = vec![0.0; NUM_BINS * NUM_BANDS];
    for band in 0..NUM_BANDS {
        let (lo, centre, hi) = (edges[band], edges[band + 1], edges[band + 2]);
        for (bin, &mel) in bins_mel.iter().enumerate().skip(1) {
            let lower = (mel - lo) / (centre - lo);
            let upper = (hi - mel) / (hi - centre);
            m[bin * NUM_BANDS + band] = lower.min(upper).max(0.0);
        }
    }
    m
}

/// The mel matrix stored sparsely: each band's triangle is a contiguous run of bins.
#[derive(Debug, Clone)]
pub struct MelFilterbank {
    /// Per band: first bin and the weights of its non-zero run.
    bands: Vec<(usize, Vec<f64>)>,
}

impl Default for MelFilterbank {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFilterbank {
    /// The VGGish filterbank (64 bands, 125–7500 Hz, 257 bins).
    pub fn new() -> Self {
        let dense = mel_matrix();
        let bands = (0..NUM_BANDS)
            .map(|band| {
                let col = |bin: usize| dense[bin * NUM_BANDS + band];
                let first = (0..NUM_BINS).find(|&b| col(b) != 0.0).unwrap_or(0);
                let last = (0..NUM_BINS).rev().find(|&b| col(b) != 0.0).unwrap_or(0);
                (first, (first..=last).map(col).collect())
            })
            .collect();
        Self { bands }
    }

    /// `mel[b] = Σ_bin magnitude[bin] · W[bin, b]`. Shapes: magnitude `[257]`, mel `[64]`.
    pub fn apply(&self, magnitude: &[f64], mel: &mut [f64]) {
        debug_assert_eq!(magnitude.len(), NUM_BINS);
        for (out, (first, weights)) in mel.iter_mut().zip(&self.bands) {
            *out = weights
                .iter()
                .zip(&magnitude[*first..])
                .map(|(w, m)| w * m)
                .sum();
        }
    }
}

/// Computes log-mel frames from 400-sample frames. Owns the FFT plan and scratch buffers, so it
/// is cheap to call per frame; not `Sync` — one per thread.
pub struct LogMelAnalyzer {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    input: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    magnitude: Vec<f64>,
    mel: Vec<f64>,
    filterbank: MelFilterbank,
}

impl Default for LogMelAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LogMelAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMelAnalyzer").finish_non_exhaustive()
    }
}

/// The log-mel value of a band with zero energy: `ln(0.01)`, the whole row of a silent frame.
pub fn silent_log_mel() -> f32 {
    LOG_OFFSET.ln() as f32
}

impl LogMelAnalyzer {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(FFT_LENGTH);
        // Periodic Hann, computed as numpy does: 0.5 - 0.5·cos(2π/N · n).
        let window = (0..STFT_WINDOW)
            .map(|n| 0.5 - 0.5 * (2.0 * PI / STFT_WINDOW as f64 * n as f64).cos())
            .collect();
        Self {
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            magnitude: vec![0.0; NUM_BINS],
            mel: vec![0.0; NUM_BANDS],
            filterbank: MelFilterbank::new(),
        }
    }

    /// One frame: `samples [400]` → `out [64]` = `ln(mel(|rfft(samples · hann, 512)|) + 0.01)`.
    pub fn frame(&mut self, samples: &[f32], out: &mut [f32]) {
        assert_eq!(
            samples.len(),
            STFT_WINDOW,
            "a frame is {STFT_WINDOW} samples"
        );
        assert_eq!(out.len(), NUM_BANDS, "a log-mel frame is {NUM_BANDS} bands");
        if samples.iter().all(|&s| s == 0.0) {
            // |rfft(0)| = 0 exactly, so this is bit-identical to the general path.
            out.fill(silent_log_mel());
            return;
        }
        for ((x, &s), &w) in self.input.iter_mut().zip(samples).zip(&self.window) {
            *x = f64::from(s) * w;
        }
        // realfft uses the input as scratch: re-zero the padding every time.
        self.input[STFT_WINDOW..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .expect("buffer sizes come from the plan");
        // numpy's |z| is hypot(re, im); sqrt(re² + im²) differs by at most an ulp of f64 (no
        // overflow at audio magnitudes) and is several times faster.
        for (m, c) in self.magnitude.iter_mut().zip(&self.spectrum) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
        self.filterbank.apply(&self.magnitude, &mut self.mel);
        for (o, &m) in out.iter_mut().zip(&self.mel) {
            *o = (m + LOG_OFFSET).ln() as f32;
        }
    }
}

/// Number of STFT frames of `n` samples without padding: `1 + (n − 400) / 160`, 0 if `n < 400`.
pub fn num_frames(n: usize) -> usize {
    if n < STFT_WINDOW {
        0
    } else {
        1 + (n - STFT_WINDOW) / STFT_HOP
    }
}

/// Batch log-mel of a whole 16 kHz mono waveform: `wave [N]` → `[num_frames(N), 64]` row-major
/// (frame `k` covers samples `[160k, 160k + 400)`). Same as the Python `audio_frontend.log_mel`.
pub fn log_mel(wave: &[f32]) -> Vec<f32> {
    let n = num_frames(wave.len());
    let mut out = vec![0.0; n * NUM_BANDS];
    let mut analyzer = LogMelAnalyzer::new();
    for (k, row) in out.chunks_exact_mut(NUM_BANDS).enumerate() {
        analyzer.frame(&wave[k * STFT_HOP..k * STFT_HOP + STFT_WINDOW], row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_matrix_dc_row_zero_and_triangles() {
        let m = mel_matrix();
        assert!(m[..NUM_BANDS].iter().all(|&w| w == 0.0));
        for band in 0..NUM_BANDS {
            let peak = (0..NUM_BINS)
                .map(|b| m[b * NUM_BANDS + band])
                .fold(0.0, f64::max);
            assert!(peak > 0.0 && peak <= 1.0, "band {band} peak {peak}");
        }
    }

    #[test]
    fn sparse_filterbank_matches_dense() {
        let dense = mel_matrix();
        let fb = MelFilterbank::new();
        let mag: Vec<f64> = (0..NUM_BINS)
            .map(|i| ((i * 7919) % 101) as f64 / 10.0)
            .collect();
        let mut mel = vec![0.0; NUM_BANDS];
        fb.apply(&mag, &mut mel);
        for band in 0..NUM_BANDS {
            let want: f64 = (0..NUM_BINS)
                .map(|b| mag[b] * dense[b * NUM_BANDS + band])
                .sum();
            assert!((mel[band] - want).abs() <= 1e-12 * want.abs().max(1.0));
        }
    }

    #[test]
    fn silent_frame_is_log_offset() {
        let mut a = LogMelAnalyzer::new();
        let mut out = [0.0f32; NUM_BANDS];
        a.frame(&[0.0; STFT_WINDOW], &mut out);
        assert!(out.iter().all(|&v| v == silent_log_mel()));
        assert_eq!(num_frames(25_600), 158);
        assert_eq!(num_frames(399), 0);
    }
}
