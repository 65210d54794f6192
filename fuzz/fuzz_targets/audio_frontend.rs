//! Fuzzes the streaming log-mel front end (`dtfsal_engine::audio::LogMelFrontend`): chunks of any
//! size and content (NaN, ±inf, huge, subnormal), timestamps that jump forward, go backwards,
//! overlap or are absent, absurd settings, window requests anywhere on the timeline, resets.
//!
//! Checked, from the module's documentation:
//! - nothing panics (overflow checks are on in fuzz builds);
//! - a window is always `[9, 1, 112, 192]`, and finite whenever every sample pushed since the last
//!   reset was finite (the per-frame maths is `f64`, so even `f32::MAX` samples stay finite);
//! - the timeline is append-only: the head never moves back, and a push drops at most its own
//!   samples;
//! - a push with no timestamp continues at the head, so the chunking does not matter: a second
//!   front end fed the same samples in fixed 4000-sample pieces gives bit-identical windows.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use dtfsal_engine::audio::{CLIP_AUDIO_LEN, FrontendConfig, LogMelFrontend, NUM_BANDS, WINDOW_FRAMES};
use libfuzzer_sys::fuzz_target;

/// Samples of one input at most (keeps an execution under ~50 ms).
const MAX_SAMPLES: usize = 400_000;

#[derive(Debug, Arbitrary)]
enum Fill {
    /// The fuzzer's own values.
    Raw(Vec<f32>),
    /// A value repeated (long chunks, crossing the 16384-sample ring).
    Repeat(f32, u16),
    /// A ramp `a + b·i`, which can overflow to inf for large lengths.
    Ramp(f32, f32, u16),
    /// Special values cycled.
    Specials(u16),
}

impl Fill {
    fn samples(&self) -> Vec<f32> {
        match *self {
            Fill::Raw(ref v) => v.clone(),
            Fill::Repeat(v, n) => vec![v; n as usize * 4],
            Fill::Ramp(a, b, n) => (0..n as usize * 4).map(|i| a + b * i as f32).collect(),
            Fill::Specials(n) => {
                const S: [f32; 8] = [0.0, -0.0, 1.0, -1.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45];
                (0..n as usize).map(|i| S[i % S.len()]).collect()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    /// `push(pts_ns, samples)`.
    Push(Option<u64>, Fill),
    /// `push` at the head's running time plus a signed offset in samples (jitter, gaps, overlaps).
    PushNear(i32, Fill),
    /// `push_at(start, samples)` with any absolute sample index.
    PushAt(Option<i64>, Fill),
    /// `push_silence(pts_ns, n)` (GAP buffers): up to 2^60 samples.
    Silence(Option<u64>, u64),
    /// `clip_audio(center_ns)`.
    Clip(u64),
    /// `clip_audio` centred near the head (offset in 10 ms frames).
    ClipNear(i16),
    /// `clip_audio_into(start_frame)`.
    ClipAt(i64),
    /// `frames_into(start_frame, n frames)`.
    Frames(i64, u8),
    /// `window_complete(start_frame)`.
    Complete(i64),
    Reset,
}

#[derive(Debug)]
struct Input {
    config: FrontendConfig,
    ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // history: the documented minimum (1.58 s) up to 60 s; below it `new` asserts (documented).
        let history_secs = WINDOW_FRAMES as f64 / 100.0 + u.int_in_range(0..=5842u16)? as f64 / 100.0;
        let discont_threshold = match u.int_in_range(0..=3u8)? {
            0 => 640,
            1 => u.int_in_range(0..=100_000)?,
            _ => u.arbitrary()?,
        };
        let ops = u.arbitrary_iter()?.take(64).collect::<arbitrary::Result<_>>()?;
        Ok(Input { config: FrontendConfig { history_secs, discont_threshold }, ops })
    }
}

/// The front end under test and a shadow fed the same samples continuously in fixed pieces.
struct Pair {
    fe: LogMelFrontend,
    shadow: LogMelFrontend,
    /// Every push since the last reset had no timestamp (the shadow is comparable).
    untimed: bool,
    /// Every sample since the last reset was finite.
    finite: bool,
    last_head: Option<i64>,
}

impl Pair {
    fn push(&mut self, start: Option<Option<i64>>, pts: Option<u64>, samples: &[f32]) {
        let outcome = match start {
            Some(s) => {
                self.untimed &= s.is_none();
                self.fe.push_at(s, samples)
            }
            None => {
                self.untimed &= pts.is_none();
                self.fe.push(pts, samples)
            }
        };
        assert!(outcome.dropped_samples <= samples.len(), "{outcome:?} of {} samples", samples.len());
        self.finite &= samples.iter().all(|s| s.is_finite());
        if self.untimed {
            for piece in samples.chunks(4000) {
                self.shadow.push(None, piece);
            }
            if samples.is_empty() {
                self.shadow.push(None, samples);
            }
        }
        let head = self.fe.head_sample();
        assert!(head.is_some(), "no head after a push");
        if let (Some(before), Some(now)) = (self.last_head, head) {
            assert!(now >= before, "head moved back from {before} to {now}");
        }
        self.last_head = head;
    }

    /// `push_silence`; the shadow gets the zeros themselves when they are few (the two must agree).
    fn silence(&mut self, pts: Option<u64>, n: u64) {
        let outcome = self.fe.push_silence(pts, n);
        assert!(outcome.dropped_samples as u64 <= n, "{outcome:?} of {n} samples");
        self.untimed &= pts.is_none();
        if self.untimed {
            if n <= 100_000 {
                for piece in vec![0.0; n as usize].chunks(4000) {
                    self.shadow.push(None, piece);
                }
                if n == 0 {
                    self.shadow.push(None, &[]);
                }
            } else {
                self.shadow.push_silence(None, n);
            }
        }
        let head = self.fe.head_sample();
        if let (Some(before), Some(now)) = (self.last_head, head) {
            assert!(now >= before, "head moved back from {before} to {now}");
        }
        self.last_head = head;
    }

    fn check_window(&mut self, start_frame: i64) {
        let mut out = vec![0.0f32; CLIP_AUDIO_LEN];
        let cov = self.fe.clip_audio_into(start_frame, &mut out);
        assert!(cov.pending_frames + cov.expired_frames <= WINDOW_FRAMES, "{cov:?}");
        if self.finite {
            assert!(out.iter().all(|v| v.is_finite()), "non-finite window at frame {start_frame} from finite audio");
        }
        if self.untimed {
            let mut shadow = vec![0.0f32; CLIP_AUDIO_LEN];
            let scov = self.shadow.clip_audio_into(start_frame, &mut shadow);
            assert_eq!(cov, scov, "coverage depends on the chunking at frame {start_frame}");
            assert!(
                out.iter().zip(&shadow).all(|(a, b)| a.to_bits() == b.to_bits()),
                "window at frame {start_frame} depends on the chunking"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let mut pair = Pair {
        fe: LogMelFrontend::new(input.config.clone()),
        shadow: LogMelFrontend::new(input.config.clone()),
        untimed: true,
        finite: true,
        last_head: None,
    };
    let mut budget = MAX_SAMPLES;
    for op in &input.ops {
        match op {
            Op::Push(_, fill) | Op::PushNear(_, fill) | Op::PushAt(_, fill) => {
                let mut samples = fill.samples();
                samples.truncate(budget);
                budget -= samples.len();
                match op {
                    Op::Push(pts, _) => pair.push(None, *pts, &samples),
                    Op::PushNear(offset, _) => {
                        let head = pair.fe.head_sample().unwrap_or(0);
                        let at = head.saturating_add(*offset as i64).max(0) as u64;
                        // the running time of sample `at` (62.5 µs a sample)
                        pair.push(None, Some(at.saturating_mul(62_500)), &samples)
                    }
                    Op::PushAt(start, _) => pair.push(Some(*start), None, &samples),
                    _ => unreachable!(),
                }
            }
            Op::Silence(pts, n) => pair.silence(*pts, *n),
            Op::Clip(center_ns) => {
                let (out, cov) = pair.fe.clip_audio(*center_ns);
                assert_eq!(out.len(), CLIP_AUDIO_LEN);
                assert!(cov.pending_frames + cov.expired_frames <= WINDOW_FRAMES, "{cov:?}");
                if pair.finite {
                    assert!(out.iter().all(|v| v.is_finite()), "non-finite clip at {center_ns} ns");
                }
            }
            Op::ClipNear(offset) => {
                let head_frame = pair.fe.head_sample().unwrap_or(0) / 160;
                pair.check_window(head_frame.saturating_add(*offset as i64) - WINDOW_FRAMES as i64);
            }
            Op::ClipAt(start_frame) => pair.check_window(*start_frame),
            Op::Frames(start_frame, n) => {
                let mut out = vec![0.0f32; *n as usize * NUM_BANDS];
                let cov = pair.fe.frames_into(*start_frame, &mut out);
                assert!(cov.pending_frames + cov.expired_frames <= *n as usize, "{cov:?}");
                if pair.finite {
                    assert!(out.iter().all(|v| v.is_finite()));
                }
            }
            Op::Complete(start_frame) => {
                let _ = pair.fe.window_complete(*start_frame);
            }
            Op::Reset => {
                pair.fe.reset();
                pair.shadow.reset();
                pair.untimed = true;
                pair.finite = true;
                pair.last_head = None;
            }
        }
    }
});
