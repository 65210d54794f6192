//! Audio front end (spec §2.2): 16 kHz mono samples → VGGish log-mel frames → the model's
//! audio input `[9, 1, 112, 192]` (9 slices; rows = time, cols = mel).
//!
//! - [`mel`]: one log-mel frame (periodic Hann 400, hop 160, `|rfft 512|`, 64-band HTK mel
//!   125–7500 Hz, `ln(mel + 0.01)`), exactly torchvggish `mel_features`, and batch [`log_mel`].
//! - [`ring`]: bounded sample and log-mel stores on the absolute stream timeline.
//! - [`resize`]: examples (64 frames, hop 11), DiffSal's 9-slice repeat rule, bilinear resize.
//! - [`frontend`]: [`LogMelFrontend`], the streaming front end (timeline, clip window rule,
//!   gaps and overlaps are documented there).
//!
//! Resampling and down-mixing to 16 kHz mono happen upstream. The Python reference is
//! `python/dtfsal/audio_frontend.py`.

pub mod frontend;
pub mod mel;
pub mod resize;
pub mod ring;

pub use frontend::{
    FrontendConfig, LogMelFrontend, PushOutcome, WindowCoverage, clip_audio_from_wave,
    clip_log_mel_from_wave, sample_index_ns, window_samples, window_start_frame_ns,
    window_start_frame_secs,
};
pub use mel::{LogMelAnalyzer, MelFilterbank, log_mel, mel_matrix, num_frames};
pub use resize::{BilinearResize, nine_slice_indices, num_examples, slices_from_frames};
pub use ring::{MelRing, SampleRing, SampleState};

/// Sample rate of the front end's input (Hz).
pub const SAMPLE_RATE: u32 = 16_000;
/// STFT window (25 ms).
pub const STFT_WINDOW: usize = 400;
/// STFT hop (10 ms).
pub const STFT_HOP: usize = 160;
/// FFT length (next power of two of the window).
pub const FFT_LENGTH: usize = 512;
/// Mel bands.
pub const NUM_BANDS: usize = 64;
/// Lower edge of the mel filterbank (Hz).
pub const MEL_MIN_HZ: f64 = 125.0;
/// Upper edge of the mel filterbank (Hz).
pub const MEL_MAX_HZ: f64 = 7500.0;
/// Offset inside the log: `ln(mel + 0.01)`.
pub const LOG_OFFSET: f64 = 0.01;
/// Frames per example (0.64 s).
pub const EXAMPLE_WINDOW: usize = 64;
/// Hop between examples in frames (0.11 s).
pub const EXAMPLE_HOP: usize = 11;
/// Slices (examples) per clip.
pub const NUM_SLICES: usize = 9;
/// Slice height (time) after resizing.
pub const SLICE_H: usize = 112;
/// Slice width (mel) after resizing.
pub const SLICE_W: usize = 192;
/// Samples of a clip window (1.6 s).
pub const WINDOW_SAMPLES: usize = 25_600;
/// STFT frames of a clip window: `1 + (25600 − 400) / 160` = 158.
pub const WINDOW_FRAMES: usize = 1 + (WINDOW_SAMPLES - STFT_WINDOW) / STFT_HOP;
/// Shape of the model's audio input for one clip.
pub const CLIP_AUDIO_SHAPE: [usize; 4] = [NUM_SLICES, 1, SLICE_H, SLICE_W];
/// Number of values of the model's audio input for one clip (9·112·192).
pub const CLIP_AUDIO_LEN: usize = NUM_SLICES * SLICE_H * SLICE_W;
