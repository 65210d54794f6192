//! [`LogMelFrontend`]: the streaming audio front end. 16 kHz mono samples go in, in chunks of any
//! size with optional timestamps; the `[9, 1, 112, 192]` model input of any clip window comes out.
//!
//! # Timeline
//! Samples live on an absolute 16 kHz timeline anchored at running time 0: a chunk with
//! timestamp `pts_ns` starts at sample `round(pts_ns · 16000 / 1e9)`; STFT frame `k` covers
//! samples `[160k, 160k + 400)`. Everything never seen — before the first chunk, in gaps, not
//! yet arrived — is silence (zeros).
//!
//! # Clip window rule
//! The clip centred at `t` uses the 1.6 s window starting at frame
//! `k0 = round(t / 10 ms) − 80`, i.e. the ideal start `t·16000 − 12800` rounded to the nearest
//! 160-sample hop of the timeline (at most 5 ms off), so its 158 frames are exactly frames
//! `k0 .. k0 + 158` of the stream, each computed once and reused by every overlapping window.
//! The Python reference (`dtfsal.audio_frontend.clip_audio`) applies the same rule.
//!
//! # Incremental computation
//! Each frame is computed once, when its last sample arrives (it is *final*), and kept in a
//! [`MelRing`] of `history` seconds. Frames that still need samples that have not arrived yet
//! (*pending*) are computed on request from the zero-filled tail of the [`SampleRing`] and not
//! kept; [`WindowCoverage`] reports them, so a caller can wait (or accept zeros at EOS).
//!
//! # Discontinuities
//! A chunk starting more than `discont_threshold` after the head opens a gap, filled with zeros.
//! A chunk starting more than `discont_threshold` before the head overlaps audio already
//! written: the overlapping samples are **dropped** (the timeline is append-only, so final frames
//! never change); only the part past the head is kept. Deviations within the threshold are
//! timestamp jitter: the chunk is appended at the head. After a seek/flush call
//! [`LogMelFrontend::reset`].

use super::mel::{LogMelAnalyzer, log_mel, silent_log_mel};
use super::resize::{BilinearResize, slices_from_frames};
use super::ring::{MelRing, SampleRing};
use super::{
    CLIP_AUDIO_LEN, NUM_BANDS, SAMPLE_RATE, STFT_HOP, STFT_WINDOW, WINDOW_FRAMES, WINDOW_SAMPLES,
};

/// Capacity of the sample ring; only the unfinished tail (< 400 samples) is ever read back.
const SAMPLE_RING: usize = 1 << 14;
/// Largest run appended between two rounds of frame computation (keeps every sample of a
/// not-yet-computed frame inside the sample ring).
const PIECE: usize = SAMPLE_RING - STFT_WINDOW;

/// First STFT frame of the clip window centred at `center_ns` (running time, ns):
/// `round(center_ns / 10 ms) − 80` (ties round up).
pub fn window_start_frame_ns(center_ns: u64) -> i64 {
    ((center_ns as i128 + 5_000_000) / 10_000_000) as i64 - (WINDOW_SAMPLES / (2 * STFT_HOP)) as i64
}

/// First STFT frame of the clip window centred at `center_s` seconds: `floor(t·100 + 0.5) − 80`,
/// the same `f64` expression as the Python reference's `window_start_frame`. (Agrees with
/// [`window_start_frame_ns`] except possibly at exact 5 ms ties.)
pub fn window_start_frame_secs(center_s: f64) -> i64 {
    (center_s * 100.0 + 0.5).floor() as i64 - (WINDOW_SAMPLES / (2 * STFT_HOP)) as i64
}

/// Absolute sample index of a running time: `round(pts_ns · 16000 / 1e9)`.
pub fn sample_index_ns(pts_ns: u64) -> i64 {
    ((pts_ns as u128 * SAMPLE_RATE as u128 + 500_000_000) / 1_000_000_000) as i64
}

/// The index one past the last final frame for a stream whose samples end at `head`:
/// frames `k` with `160k + 400 <= head`.
fn final_frame_end(head: i64) -> i64 {
    (head - STFT_WINDOW as i64).div_euclid(STFT_HOP as i64) + 1
}

/// [`LogMelFrontend`] settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontendConfig {
    /// Seconds of final log-mel frames kept behind the newest audio (≥ 1.6). A window requested
    /// further back than this reads the lost frames as silence and reports them as expired.
    pub history_secs: f64,
    /// Timestamp deviations up to this many samples are jitter, not gaps or overlaps
    /// (default 640 = 40 ms, GStreamer `audiobasesink`'s `alignment-threshold`).
    pub discont_threshold: u64,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            history_secs: 10.0,
            discont_threshold: 640,
        }
    }
}

/// What [`LogMelFrontend::push`] did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Zeros inserted before the chunk (timestamp jump forward).
    pub gap_samples: u64,
    /// Samples of the chunk dropped because they overlap audio already written.
    pub dropped_samples: usize,
}

/// How final a window's frames are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCoverage {
    /// Frames that need samples not arrived yet (computed as if those were zeros).
    pub pending_frames: usize,
    /// Frames that fell out of the history and were read as silence.
    pub expired_frames: usize,
}

impl WindowCoverage {
    /// All frames are final: the result will not change as more audio arrives.
    pub fn is_final(&self) -> bool {
        self.pending_frames == 0 && self.expired_frames == 0
    }
}

/// The streaming log-mel front end (see the module docs for the timeline and window rules).
#[derive(Debug)]
pub struct LogMelFrontend {
    config: FrontendConfig,
    samples: SampleRing,
    mels: MelRing,
    /// First frame that overlaps real audio (frames before it are silent); `None` before any.
    first_audio_frame: Option<i64>,
    analyzer: LogMelAnalyzer,
    resize: BilinearResize,
    /// Scratch: one frame of samples `[400]`.
    frame_samples: Vec<f32>,
    /// Scratch: the frames of one window `[158, 64]`.
    window_frames: Vec<f32>,
}

impl Default for LogMelFrontend {
    fn default() -> Self {
        Self::new(FrontendConfig::default())
    }
}

impl LogMelFrontend {
    pub fn new(config: FrontendConfig) -> Self {
        assert!(
            config.history_secs * 100.0 >= WINDOW_FRAMES as f64,
            "history must hold at least one 1.6 s window"
        );
        let mel_capacity = (config.history_secs * 100.0).ceil() as usize;
        Self {
            config,
            samples: SampleRing::new(SAMPLE_RING),
            mels: MelRing::new(mel_capacity),
            first_audio_frame: None,
            analyzer: LogMelAnalyzer::new(),
            resize: BilinearResize::slice(),
            frame_samples: vec![0.0; STFT_WINDOW],
            window_frames: vec![0.0; WINDOW_FRAMES * NUM_BANDS],
        }
    }

    pub fn config(&self) -> &FrontendConfig {
        &self.config
    }

    /// Forgets all audio (flush / seek): the next chunk starts a new timeline.
    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    /// One past the last sample received (absolute index); `None` before any audio.
    pub fn head_sample(&self) -> Option<i64> {
        self.samples.head()
    }

    /// Appends a chunk of 16 kHz mono samples. `pts_ns`: running time of its first sample;
    /// `None` continues at the head (or at 0 for the first chunk).
    pub fn push(&mut self, pts_ns: Option<u64>, samples: &[f32]) -> PushOutcome {
        self.push_at(pts_ns.map(sample_index_ns), samples)
    }

    /// [`push`](Self::push) with the start given as an absolute sample index (clamped to
    /// ±2^60, some 2 million years of audio, so that index arithmetic cannot overflow).
    pub fn push_at(&mut self, start: Option<i64>, samples: &[f32]) -> PushOutcome {
        let outcome = self.place(start, samples.len() as u64);
        self.append(&samples[outcome.dropped_samples..]);
        outcome
    }

    /// Appends `n` samples of silence (a GAP buffer) starting at `pts_ns` like [`push`](Self::push),
    /// without materialising them: O(min(n, history)).
    pub fn push_silence(&mut self, pts_ns: Option<u64>, n: u64) -> PushOutcome {
        let n = n.min(Self::LIMIT as u64);
        let outcome = self.place(pts_ns.map(sample_index_ns), n);
        self.append_zeros(n - outcome.dropped_samples as u64);
        outcome
    }

    /// Bound of sample indices and counts, so that index arithmetic cannot overflow.
    const LIMIT: i64 = 1 << 60;

    /// Where silence (gaps, GAP buffers) stops moving the head: each push adds at most [`Self::LIMIT`]
    /// samples, so without a bound repeated ones would overflow the `i64` timeline. 2^62 samples are
    /// some 9 million years of audio; real samples still append past it (they cannot add up to 2^62).
    const HEAD_LIMIT: i64 = 1 << 62;

    /// Positions the head for a chunk of `len` samples starting at `start` (starting the timeline, or
    /// inserting the zeros of a gap); the outcome says how many leading samples overlap and are dropped.
    fn place(&mut self, start: Option<i64>, len: u64) -> PushOutcome {
        let start = start.map(|s| s.clamp(-Self::LIMIT, Self::LIMIT));
        let mut outcome = PushOutcome::default();
        let Some(head) = self.samples.head() else {
            let origin = start.unwrap_or(0);
            self.samples.start_at(origin);
            let first = final_frame_end(origin);
            self.first_audio_frame = Some(first);
            self.mels.reset_to(first);
            return outcome;
        };
        let start = start.unwrap_or(head);
        // (a threshold beyond i64 saturates: no sample index is that far)
        let threshold = i64::try_from(self.config.discont_threshold).unwrap_or(i64::MAX);
        if start > head.saturating_add(threshold) {
            outcome.gap_samples = (start - head) as u64;
            self.append_zeros(outcome.gap_samples);
        } else if start < head.saturating_sub(threshold) {
            outcome.dropped_samples = ((head - start) as u64).min(len) as usize;
        }
        outcome
    }

    /// Writes `samples` at the head, computing frames as they become final.
    fn append(&mut self, samples: &[f32]) {
        for piece in samples.chunks(PIECE) {
            self.samples.write(piece);
            self.compute_final_frames();
        }
    }

    /// Writes `n` zeros at the head. Past the first `PIECE` zeros every new frame is silent, so
    /// long gaps cost O(history), not O(gap).
    fn append_zeros(&mut self, n: u64) {
        let head = self.samples.head().expect("started");
        let n = n.min(Self::HEAD_LIMIT.saturating_sub(head).max(0) as u64);
        let first = n.min(PIECE as u64);
        self.samples.write_zeros(first);
        self.compute_final_frames();
        if n > first {
            self.samples.write_zeros(n - first);
            let end = final_frame_end(self.samples.head().expect("started"));
            let from = self.mels.end().max(end - self.mels.capacity() as i64);
            if from > self.mels.end() {
                self.mels.reset_to(from);
            }
            for _ in from..end {
                self.mels.push_with(|row| row.fill(silent_log_mel()));
            }
        }
    }

    /// Computes every frame that became final since the last call.
    fn compute_final_frames(&mut self) {
        let end = final_frame_end(self.samples.head().expect("started"));
        let mut k = self.mels.end();
        if end - k > self.mels.capacity() as i64 {
            k = end - self.mels.capacity() as i64;
            self.mels.reset_to(k);
        }
        for k in k..end {
            let expired = self
                .samples
                .read(k * STFT_HOP as i64, &mut self.frame_samples);
            debug_assert!(
                !expired,
                "frame {k} computed after its samples left the ring"
            );
            let (analyzer, samples) = (&mut self.analyzer, &self.frame_samples);
            self.mels.push_with(|row| analyzer.frame(samples, row));
        }
    }

    /// Log-mel frame `k` `[64]` into `out`; updates `coverage`.
    fn frame_into(&mut self, k: i64, out: &mut [f32], coverage: &mut WindowCoverage) {
        let Some(first_audio) = self.first_audio_frame else {
            out.fill(silent_log_mel());
            coverage.pending_frames += 1;
            return;
        };
        if k < first_audio {
            out.fill(silent_log_mel());
        } else if let Some(row) = self.mels.get(k) {
            out.copy_from_slice(row);
        } else if k < self.mels.first() {
            out.fill(silent_log_mel());
            coverage.expired_frames += 1;
        } else {
            // k >= mels.end(): some samples have not arrived; they read as zeros.
            self.samples
                .read(k.saturating_mul(STFT_HOP as i64), &mut self.frame_samples);
            self.analyzer.frame(&self.frame_samples, out);
            coverage.pending_frames += 1;
        }
    }

    /// Log-mel frames `start_frame .. start_frame + n` into `out` `[n, 64]`.
    pub fn frames_into(&mut self, start_frame: i64, out: &mut [f32]) -> WindowCoverage {
        assert_eq!(out.len() % NUM_BANDS, 0);
        let mut coverage = WindowCoverage::default();
        for (i, row) in out.chunks_exact_mut(NUM_BANDS).enumerate() {
            self.frame_into(start_frame.saturating_add(i as i64), row, &mut coverage);
        }
        coverage
    }

    /// Whether every sample of the window starting at `start_frame` has arrived.
    pub fn window_complete(&self, start_frame: i64) -> bool {
        self.head_sample().is_some_and(|h| {
            h >= start_frame
                .saturating_mul(STFT_HOP as i64)
                .saturating_add(WINDOW_SAMPLES as i64)
        })
    }

    /// The model input of the window starting at `start_frame`: `out [9, 1, 112, 192]`.
    pub fn clip_audio_into(&mut self, start_frame: i64, out: &mut [f32]) -> WindowCoverage {
        assert_eq!(out.len(), CLIP_AUDIO_LEN, "clip audio is [9, 1, 112, 192]");
        let mut frames = std::mem::take(&mut self.window_frames);
        let coverage = self.frames_into(start_frame, &mut frames);
        slices_from_frames(&frames, &mut self.resize, out);
        self.window_frames = frames;
        coverage
    }

    /// The model input `[9, 1, 112, 192]` of the clip centred at `center_ns` (running time).
    pub fn clip_audio(&mut self, center_ns: u64) -> (Vec<f32>, WindowCoverage) {
        let mut out = vec![0.0; CLIP_AUDIO_LEN];
        let coverage = self.clip_audio_into(window_start_frame_ns(center_ns), &mut out);
        (out, coverage)
    }
}

/// The zero-filled window `[25600]` of a whole waveform `wave [N]` starting at frame `start_frame`.
pub fn window_samples(wave: &[f32], start_frame: i64) -> Vec<f32> {
    let start = start_frame.saturating_mul(STFT_HOP as i64);
    let mut out = vec![0.0; WINDOW_SAMPLES];
    let lo = start.max(0);
    let hi = start
        .saturating_add(WINDOW_SAMPLES as i64)
        .min(wave.len() as i64);
    if hi > lo {
        out[(lo - start) as usize..(hi - start) as usize]
            .copy_from_slice(&wave[lo as usize..hi as usize]);
    }
    out
}

/// Non-streaming: log-mel frames `[158, 64]` of the window of `wave` (16 kHz mono, sample 0 at
/// running time 0) starting at `start_frame`, computed from scratch.
pub fn clip_log_mel_from_wave(wave: &[f32], start_frame: i64) -> Vec<f32> {
    log_mel(&window_samples(wave, start_frame))
}

/// Non-streaming: the model input `[9, 1, 112, 192]` of the window of `wave` starting at
/// `start_frame` (all 158 frames recomputed). Same as Python `clip_audio(wave, t)` with
/// `start_frame = window_start_frame_secs(t)`.
pub fn clip_audio_from_wave(wave: &[f32], start_frame: i64) -> Vec<f32> {
    let frames = clip_log_mel_from_wave(wave, start_frame);
    let mut out = vec![0.0; CLIP_AUDIO_LEN];
    slices_from_frames(&frames, &mut BilinearResize::slice(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_rounding() {
        assert_eq!(window_start_frame_ns(800_000_000), 0);
        assert_eq!(window_start_frame_ns(0), -80);
        assert_eq!(window_start_frame_ns(1_004_999_999), 20);
        assert_eq!(window_start_frame_ns(1_005_000_000), 21);
        assert_eq!(window_start_frame_secs(1.0), 20);
        assert_eq!(window_start_frame_secs(1.0049), 20);
        assert_eq!(window_start_frame_secs(0.0), -80);
        assert_eq!(sample_index_ns(1_000_000_000), 16_000);
        assert_eq!(sample_index_ns(31_249), 0);
        assert_eq!(sample_index_ns(31_250), 1);
    }

    #[test]
    fn frames_before_any_audio_are_pending_silence() {
        let mut fe = LogMelFrontend::default();
        let mut out = vec![0.0; 3 * NUM_BANDS];
        let cov = fe.frames_into(5, &mut out);
        assert_eq!(cov.pending_frames, 3);
        assert!(out.iter().all(|&v| v == silent_log_mel()));
    }
}
