//! Cost of one clip's audio input `[9, 1, 112, 192]`: taken from the streaming front end's ring
//! of final log-mel frames vs recomputing all 158 STFT frames, plus the streaming cost itself.
//!
//!     cargo bench -p dtfsal-engine --bench audio_window
use std::hint::black_box;
use std::time::Instant;

use dtfsal_engine::audio::{
    BilinearResize, CLIP_AUDIO_LEN, LogMelAnalyzer, LogMelFrontend, NUM_BANDS, STFT_HOP,
    STFT_WINDOW, WINDOW_FRAMES, clip_audio_from_wave, slices_from_frames, window_samples,
};

/// Median wall time of `f` in microseconds over `iters` runs (after a warm-up).
fn median_us(iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.div_ceil(10) {
        f();
    }
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[iters / 2]
}

/// 12 s of deterministic speech-band noise plus tones.
fn test_signal() -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..12 * 16_000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let t = i as f32 / 16_000.0;
            0.2 * noise + 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
        })
        .collect()
}

fn main() {
    let wave = test_signal();
    let mut fe = LogMelFrontend::default();
    // Streaming: 10 ms chunks, as a GStreamer pipeline would deliver them.
    let t0 = Instant::now();
    for c in wave.chunks(160) {
        fe.push(None, c);
    }
    let stream_s = t0.elapsed().as_secs_f64();
    let audio_s = wave.len() as f64 / 16_000.0;

    let starts: Vec<i64> = (0..50).map(|i| 300 + 11 * i).collect(); // windows inside the history
    let mut out = vec![0.0f32; CLIP_AUDIO_LEN];
    let mut i = 0;
    let ring = median_us(400, || {
        let s = starts[i % starts.len()];
        i += 1;
        assert!(fe.clip_audio_into(s, &mut out).is_final());
        black_box(&out);
    });

    let mut frames = vec![0.0f32; WINDOW_FRAMES * NUM_BANDS];
    let ring_frames = median_us(400, || {
        black_box(fe.frames_into(starts[3], &mut frames));
    });

    // Full recompute of the 158 frames (analyzer and resize tables reused) + the same resize.
    let mut analyzer = LogMelAnalyzer::new();
    let mut resize = BilinearResize::slice();
    let mut recompute_frames = |s: i64, frames: &mut [f32]| {
        let win = window_samples(&wave, s);
        for (k, row) in frames.chunks_exact_mut(NUM_BANDS).enumerate() {
            analyzer.frame(&win[k * STFT_HOP..k * STFT_HOP + STFT_WINDOW], row);
        }
    };
    let full_frames = median_us(200, || {
        recompute_frames(starts[3], &mut frames);
        black_box(&frames);
    });
    let mut i = 0;
    let full = median_us(200, || {
        let s = starts[i % starts.len()];
        i += 1;
        recompute_frames(s, &mut frames);
        slices_from_frames(&frames, &mut resize, &mut out);
        black_box(&out);
    });
    let resize_only = median_us(400, || {
        slices_from_frames(&frames, &mut resize, &mut out);
        black_box(&out);
    });
    let batch_api = median_us(100, || {
        black_box(clip_audio_from_wave(&wave, starts[5]));
    });

    println!("audio front end, one clip window ([158 frames] -> [9,1,112,192]), median of runs:");
    println!("  from the ring (cached frames + resize)   {ring:9.1} us");
    println!("  full recompute (158 STFT frames + resize) {full:9.1} us");
    println!(
        "  ratio full / ring                        {:9.2}x",
        full / ring
    );
    println!(
        "  frames only: ring copy {ring_frames:.1} us vs recompute {full_frames:.1} us ({:.0}x)",
        full_frames / ring_frames
    );
    println!("  resize only (9 x 64x64 -> 112x192)       {resize_only:9.1} us");
    println!("  batch API clip_audio_from_wave (plans FFT) {batch_api:7.1} us");
    println!(
        "  streaming: {audio_s:.0} s of audio in 10 ms chunks took {:.1} ms ({:.1} us per 10 ms frame, {:.0}x real time)",
        stream_s * 1e3,
        stream_s * 1e6 / (audio_s * 100.0),
        audio_s / stream_s
    );
}
