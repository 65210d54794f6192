//! Audio front end vs the Python reference (`python/dtfsal/audio_frontend.py`), through the
//! committed fixture `tests/data/audio_ref.safetensors` (regenerate with
//! `python -m dtfsal.audio_fixtures`), plus streaming properties: chunking invariance, gaps,
//! windows past the start/end of the stream, late and overlapping chunks.

use std::collections::HashMap;

use dtfsal_engine::audio::{
    BilinearResize, CLIP_AUDIO_LEN, FrontendConfig, LogMelFrontend, NUM_BANDS, WINDOW_FRAMES,
    clip_audio_from_wave, clip_log_mel_from_wave, log_mel, slices_from_frames,
    window_start_frame_secs,
};
use safetensors::SafeTensors;

const TOL: f32 = 1e-4;
const NS_PER_SAMPLE: u64 = 62_500;

struct Fixture {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    meta: HashMap<String, String>,
}

#[derive(serde::Deserialize)]
struct Case {
    key: String,
    wave: String,
    center_s: f64,
}

impl Fixture {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/audio_ref.safetensors"
        );
        let bytes = std::fs::read(path).expect("fixture (python -m dtfsal.audio_fixtures)");
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let data = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                (name, (view.shape().to_vec(), data))
            })
            .collect();
        Self {
            tensors,
            meta: meta.metadata().clone().unwrap_or_default(),
        }
    }

    fn get(&self, key: &str) -> &[f32] {
        &self
            .tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no {key}"))
            .1
    }

    fn shape(&self, key: &str) -> &[usize] {
        &self.tensors[key].0
    }

    fn wave(&self, name: &str) -> Vec<f32> {
        if name == "gap" {
            let (a, b) = self.gap();
            let mut w = self.get("wave.speech").to_vec();
            w[a..b].fill(0.0);
            w
        } else {
            self.get(&format!("wave.{name}")).to_vec()
        }
    }

    fn gap(&self) -> (usize, usize) {
        let g: Vec<usize> = serde_json::from_str(&self.meta["gap"]).unwrap();
        (g[0], g[1])
    }

    fn cases(&self, entry: &str) -> Vec<Case> {
        serde_json::from_str(&self.meta[entry]).unwrap()
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let d = max_abs_diff(got, want);
    println!("{what}: max |Δ| = {d:.3e}");
    assert!(d <= TOL, "{what}: max |Δ| = {d} > {TOL}");
}

/// Streams `wave` (sample 0 at running time 0) in chunks of `chunk` samples with timestamps.
fn stream(wave: &[f32], chunk: usize) -> LogMelFrontend {
    let mut fe = LogMelFrontend::new(FrontendConfig {
        history_secs: 5.0,
        ..Default::default()
    });
    for (i, c) in wave.chunks(chunk).enumerate() {
        let out = fe.push(Some((i * chunk) as u64 * NS_PER_SAMPLE), c);
        assert_eq!((out.gap_samples, out.dropped_samples), (0, 0));
    }
    fe
}

/// The stream of the fixture's "gap" case: speech with a timestamp jump over the gap.
fn gap_stream(fx: &Fixture, chunk: usize) -> LogMelFrontend {
    let speech = fx.get("wave.speech");
    let (a, b) = fx.gap();
    let mut fe = LogMelFrontend::new(FrontendConfig {
        history_secs: 5.0,
        ..Default::default()
    });
    for (i, c) in speech[..a].chunks(chunk).enumerate() {
        fe.push(Some((i * chunk) as u64 * NS_PER_SAMPLE), c);
    }
    let out = fe.push(
        Some(b as u64 * NS_PER_SAMPLE),
        &speech[b..b + chunk.min(speech.len() - b)],
    );
    assert_eq!(out.gap_samples, (b - a) as u64);
    for c in speech[b + chunk.min(speech.len() - b)..].chunks(chunk) {
        fe.push(None, c);
    }
    fe
}

fn window_frames(fe: &mut LogMelFrontend, start: i64) -> Vec<f32> {
    let mut out = vec![0.0; WINDOW_FRAMES * NUM_BANDS];
    fe.frames_into(start, &mut out);
    out
}

#[test]
fn batch_log_mel_matches_reference() {
    let fx = Fixture::load();
    for name in ["speech", "noise", "tones"] {
        let want = fx.get(&format!("logmel.{name}"));
        assert_eq!(fx.shape(&format!("logmel.{name}"))[1], NUM_BANDS);
        assert_close(&format!("log_mel({name})"), &log_mel(&fx.wave(name)), want);
    }
}

#[test]
fn streamed_frames_match_reference() {
    let fx = Fixture::load();
    for name in ["speech", "noise", "tones"] {
        let want = fx.get(&format!("logmel.{name}"));
        let mut fe = stream(&fx.wave(name), 1000);
        let mut got = vec![0.0; want.len()];
        let cov = fe.frames_into(0, &mut got);
        assert!(cov.is_final(), "{cov:?}");
        assert_close(&format!("streamed frames ({name})"), &got, want);
    }
}

#[test]
fn clip_windows_match_reference() {
    let fx = Fixture::load();
    for case in fx.cases("clips") {
        let want = fx.get(&case.key);
        assert_eq!(fx.shape(&case.key), [WINDOW_FRAMES, NUM_BANDS]);
        let wave = fx.wave(&case.wave);
        let start = window_start_frame_secs(case.center_s);
        let what = format!("{} @ {} s", case.wave, case.center_s);
        assert_close(
            &format!("batch window {what}"),
            &clip_log_mel_from_wave(&wave, start),
            want,
        );
        let mut fe = if case.wave == "gap" {
            gap_stream(&fx, 37)
        } else {
            stream(&wave, 37)
        };
        assert_close(
            &format!("streamed window {what}"),
            &window_frames(&mut fe, start),
            want,
        );
    }
}

#[test]
fn full_clips_match_reference() {
    let fx = Fixture::load();
    for case in fx.cases("full_clips") {
        let want = fx.get(&case.key);
        assert_eq!(fx.shape(&case.key), [9, 1, 112, 192]);
        let wave = fx.wave(&case.wave);
        let start = window_start_frame_secs(case.center_s);
        let what = format!("{} @ {} s", case.wave, case.center_s);
        assert_close(
            &format!("batch clip {what}"),
            &clip_audio_from_wave(&wave, start),
            want,
        );
        let mut fe = stream(&wave, 37);
        let mut got = vec![0.0; CLIP_AUDIO_LEN];
        fe.clip_audio_into(start, &mut got);
        assert_close(&format!("streamed clip {what}"), &got, want);
        // The resize alone, from the reference frames.
        let ref_frames = fx
            .cases("clips")
            .into_iter()
            .find(|c| c.wave == case.wave && c.center_s == case.center_s)
            .map(|c| fx.get(&c.key).to_vec())
            .expect("full clip cases have a clip_logmel case");
        slices_from_frames(&ref_frames, &mut BilinearResize::slice(), &mut got);
        assert_close(&format!("resize only {what}"), &got, want);
    }
}

#[test]
fn chunking_does_not_change_output() {
    let fx = Fixture::load();
    let wave = fx.wave("speech");
    let starts = [-80, -20, 0, 57, 130, 250];
    let clips = |fe: &mut LogMelFrontend| -> Vec<Vec<f32>> {
        starts
            .iter()
            .map(|&s| {
                let mut out = vec![0.0; CLIP_AUDIO_LEN];
                fe.clip_audio_into(s, &mut out);
                out
            })
            .collect()
    };
    let reference: Vec<Vec<f32>> = starts
        .iter()
        .map(|&s| clip_audio_from_wave(&wave, s))
        .collect();
    for chunk in [1, 37, 16_000, wave.len()] {
        assert_eq!(clips(&mut stream(&wave, chunk)), reference, "chunk {chunk}");
    }
    for chunk in [1, 37, 16_000] {
        let mut untimed = LogMelFrontend::default();
        wave.chunks(chunk).for_each(|c| {
            untimed.push(None, c);
        });
        assert_eq!(clips(&mut untimed), reference, "untimed chunk {chunk}");
    }
}

#[test]
fn gap_is_silence() {
    let fx = Fixture::load();
    let gap_wave = fx.wave("gap");
    for chunk in [1, 37, 16_000] {
        let mut fe = gap_stream(&fx, chunk);
        for start in [0, 20, 60, 100, 140] {
            let mut got = vec![0.0; CLIP_AUDIO_LEN];
            assert!(fe.clip_audio_into(start, &mut got).is_final());
            assert_eq!(
                got,
                clip_audio_from_wave(&gap_wave, start),
                "chunk {chunk}, start {start}"
            );
        }
    }
}

#[test]
fn long_gap_and_late_start() {
    // Stream starts at 2.0 s; 1 s of audio; a 100 s gap; 1 s more.
    let fx = Fixture::load();
    let speech = fx.get("wave.speech");
    let (a, b) = (&speech[..16_000], &speech[16_000..32_000]);
    let mut fe = LogMelFrontend::default();
    fe.push(Some(2_000_000_000), a);
    let out = fe.push(Some(103_000_000_000), b);
    assert_eq!(out.gap_samples, 100 * 16_000);
    // Reference timeline: zeros, a at 2 s, zeros, b at 103 s.
    let mut wave = vec![0.0; 104 * 16_000];
    wave[32_000..48_000].copy_from_slice(a);
    wave[103 * 16_000..].copy_from_slice(b);
    // Windows across the gap's end; the last runs past the end of the stream.
    for start in [10_130, 10_200, 10_240, 10_300] {
        let mut got = vec![0.0; CLIP_AUDIO_LEN];
        let cov = fe.clip_audio_into(start, &mut got);
        assert_eq!(cov.is_final(), start <= 10_240, "{start}: {cov:?}");
        assert_eq!(got, clip_audio_from_wave(&wave, start), "start {start}");
    }
    // The audio at 2 s has left the 10 s history: its frames are reported expired.
    let mut got = vec![0.0; CLIP_AUDIO_LEN];
    assert!(fe.clip_audio_into(150, &mut got).expired_frames > 0);
    // Windows before the stream started are silence, and final.
    let mut fe = LogMelFrontend::default();
    fe.push(Some(2_000_000_000), a);
    let mut early = vec![0.0; CLIP_AUDIO_LEN];
    assert!(fe.clip_audio_into(0, &mut early).is_final());
    assert_eq!(early, clip_audio_from_wave(&wave, 0));
}

#[test]
fn window_past_the_end_is_pending_then_final() {
    let fx = Fixture::load();
    let wave = fx.wave("speech");
    let mut fe = stream(&wave[..32_000], 37);
    let start = window_start_frame_secs(1.8); // window [1.0 s, 2.6 s), audio so far up to 2.0 s
    let mut got = vec![0.0; CLIP_AUDIO_LEN];
    let cov = fe.clip_audio_into(start, &mut got);
    assert!(cov.pending_frames > 0 && !fe.window_complete(start));
    assert_eq!(
        got,
        clip_audio_from_wave(&wave[..32_000], start),
        "pending frames are zero-filled"
    );
    for c in wave[32_000..].chunks(37) {
        fe.push(None, c);
    }
    let cov = fe.clip_audio_into(start, &mut got);
    assert!(cov.is_final() && fe.window_complete(start));
    assert_eq!(
        got,
        clip_audio_from_wave(&wave, start),
        "final frames are not the cached pending ones"
    );
}

#[test]
fn late_and_overlapping_chunks_are_dropped() {
    let fx = Fixture::load();
    let wave = fx.wave("noise");
    let mut fe = LogMelFrontend::default();
    let (a, rest) = wave.split_at(20_000);
    fe.push(Some(0), a);
    // Entirely late: dropped.
    let out = fe.push(Some(5_000 * NS_PER_SAMPLE), &[1.0; 3_000]);
    assert_eq!(out.dropped_samples, 3_000);
    // Overlapping by 1,000 samples: the first 1,000 are dropped, the rest appended.
    let mut overlapping = vec![9.0; 1_000];
    overlapping.extend_from_slice(&rest[..5_000]);
    let out = fe.push(Some(19_000 * NS_PER_SAMPLE), &overlapping);
    assert_eq!((out.dropped_samples, out.gap_samples), (1_000, 0));
    // Jitter within 40 ms: appended contiguously.
    let out = fe.push(Some(25_100 * NS_PER_SAMPLE), &rest[5_000..]);
    assert_eq!((out.dropped_samples, out.gap_samples), (0, 0));
    assert_eq!(fe.head_sample(), Some(wave.len() as i64));
    for start in [0, 50, 100, 150] {
        let mut got = vec![0.0; CLIP_AUDIO_LEN];
        fe.clip_audio_into(start, &mut got);
        assert_eq!(got, clip_audio_from_wave(&wave, start));
    }
    // Degenerate input never panics.
    fe.push(Some(0), &[]);
    fe.push(None, &[]);
    fe.push(Some(u64::MAX), &[0.5; 10]);
    fe.push(Some(0), &[0.5; 10]);
    fe.push_at(Some(i64::MIN), &[0.5; 10]);
    fe.push_at(Some(i64::MAX), &[0.5; 10]);
    let mut got = vec![0.0; CLIP_AUDIO_LEN];
    fe.clip_audio_into(i64::MAX, &mut got);
    fe.clip_audio_into(i64::MIN, &mut got);
    assert!(!fe.window_complete(i64::MAX) && fe.window_complete(i64::MIN));
    let _ = clip_audio_from_wave(&wave, i64::MAX);
    let _ = clip_audio_from_wave(&wave, i64::MIN);
    fe.reset();
    assert_eq!(fe.head_sample(), None);
}
