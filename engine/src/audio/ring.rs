//! Bounded stores on the absolute stream timeline: [`SampleRing`] (the latest samples, indexed by
//! absolute sample number) and [`MelRing`] (the latest final log-mel frames, indexed by absolute
//! STFT frame number).

use super::NUM_BANDS;

/// The state of one absolute sample index, as seen by a [`SampleRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleState {
    /// Before the first sample ever written: zero, and final.
    BeforeStart,
    /// Held in the ring (real audio or zeros written for a gap): final.
    Held,
    /// Written once but since overwritten: unknown, read as zero.
    Expired,
    /// Not written yet: read as zero for now, not final.
    Future,
}

/// The last `capacity` samples of a stream, addressed by absolute sample index.
///
/// The timeline only moves forward: [`SampleRing::write`] appends at the head. Indices before the
/// first written sample, and not yet written, read as zero.
#[derive(Debug, Clone)]
pub struct SampleRing {
    buf: Vec<f32>,
    /// Absolute index of the first sample ever written (`None` before the first write).
    origin: Option<i64>,
    /// One past the last written absolute index.
    head: i64,
}

impl SampleRing {
    /// A ring holding the latest `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Self {
            buf: vec![0.0; capacity],
            origin: None,
            head: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Absolute index of the first sample ever written.
    pub fn origin(&self) -> Option<i64> {
        self.origin
    }

    /// One past the last written sample; `None` before the first write.
    pub fn head(&self) -> Option<i64> {
        self.origin.map(|_| self.head)
    }

    /// Starts the timeline at `origin` (no-op if already started).
    pub fn start_at(&mut self, origin: i64) {
        if self.origin.is_none() {
            self.origin = Some(origin);
            self.head = origin;
        }
    }

    fn slot(&self, index: i64) -> usize {
        index.rem_euclid(self.buf.len() as i64) as usize
    }

    /// Appends `samples` at the head. The timeline must have been started.
    pub fn write(&mut self, samples: &[f32]) {
        assert!(self.origin.is_some(), "SampleRing::write before start_at");
        let cap = self.buf.len();
        // Only the last `cap` samples can survive.
        let skip = samples.len().saturating_sub(cap);
        self.head += skip as i64;
        let mut rest = &samples[skip..];
        while !rest.is_empty() {
            let at = self.slot(self.head);
            let n = rest.len().min(cap - at);
            self.buf[at..at + n].copy_from_slice(&rest[..n]);
            self.head += n as i64;
            rest = &rest[n..];
        }
    }

    /// Appends `n` zeros at the head (a gap). O(min(n, capacity)).
    pub fn write_zeros(&mut self, n: u64) {
        assert!(
            self.origin.is_some(),
            "SampleRing::write_zeros before start_at"
        );
        let cap = self.buf.len() as u64;
        if n >= cap {
            self.buf.fill(0.0);
            self.head += n as i64;
            return;
        }
        let mut left = n as usize;
        while left > 0 {
            let at = self.slot(self.head);
            let k = left.min(self.buf.len() - at);
            self.buf[at..at + k].fill(0.0);
            self.head += k as i64;
            left -= k;
        }
    }

    /// The state of absolute sample `index`.
    pub fn state(&self, index: i64) -> SampleState {
        match self.origin {
            None => SampleState::Future,
            Some(o) if index < o => SampleState::BeforeStart,
            Some(_) if index >= self.head => SampleState::Future,
            Some(_) if index < self.head - self.buf.len() as i64 => SampleState::Expired,
            Some(_) => SampleState::Held,
        }
    }

    /// Copies absolute samples `[start, start + out.len())` into `out`, zeros where not
    /// [`SampleState::Held`]. Returns whether any of them was `Expired`.
    pub fn read(&self, start: i64, out: &mut [f32]) -> bool {
        out.fill(0.0);
        let Some(origin) = self.origin else {
            return false;
        };
        let end = start.saturating_add(out.len() as i64);
        let held_lo = origin.max(self.head - self.buf.len() as i64);
        let lo = start.max(held_lo);
        let hi = end.min(self.head);
        let mut i = lo;
        while i < hi {
            let at = self.slot(i);
            let n = ((hi - i) as usize).min(self.buf.len() - at);
            let o = (i - start) as usize;
            out[o..o + n].copy_from_slice(&self.buf[at..at + n]);
            i += n as i64;
        }
        held_lo > origin && start < held_lo && end > origin
    }
}

/// The latest `capacity` final log-mel frames `[64]`, a contiguous run of absolute frame indices
/// `[first, end)`, appended in order.
#[derive(Debug, Clone)]
pub struct MelRing {
    /// `[capacity, 64]` row-major; frame `k` lives in row `k mod capacity`.
    frames: Vec<f32>,
    capacity: usize,
    first: i64,
    end: i64,
}

impl MelRing {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Self {
            frames: vec![0.0; capacity * NUM_BANDS],
            capacity,
            first: 0,
            end: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the ring and makes `frame` the next frame to append.
    pub fn reset_to(&mut self, frame: i64) {
        self.first = frame;
        self.end = frame;
    }

    /// First frame held.
    pub fn first(&self) -> i64 {
        self.first
    }

    /// One past the last frame held: the next frame to append.
    pub fn end(&self) -> i64 {
        self.end
    }

    fn row(&self, frame: i64) -> usize {
        frame.rem_euclid(self.capacity as i64) as usize * NUM_BANDS
    }

    /// Appends frame `end()`; `fill` writes its `[64]` values. Evicts the oldest frame when full.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut [f32])) {
        let r = self.row(self.end);
        fill(&mut self.frames[r..r + NUM_BANDS]);
        self.end += 1;
        self.first = self.first.max(self.end - self.capacity as i64);
    }

    /// Frame `frame` `[64]` if held.
    pub fn get(&self, frame: i64) -> Option<&[f32]> {
        (self.first..self.end).contains(&frame).then(|| {
            let r = self.row(frame);
            &self.frames[r..r + NUM_BANDS]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_ring_wraps_and_reports_states() {
        let mut r = SampleRing::new(8);
        r.start_at(100);
        r.write(&[1.0, 2.0, 3.0]);
        r.write_zeros(2);
        let data: Vec<f32> = (10..20).map(|v| v as f32).collect();
        r.write(&data); // head = 115, held = [107, 115)
        assert_eq!(r.head(), Some(115));
        assert_eq!(r.state(99), SampleState::BeforeStart);
        assert_eq!(r.state(106), SampleState::Expired);
        assert_eq!(r.state(107), SampleState::Held);
        assert_eq!(r.state(115), SampleState::Future);
        let mut out = [9.0; 12];
        assert!(!r.read(107, &mut out[..10]));
        assert_eq!(
            &out[..10],
            &[12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 0.0, 0.0]
        );
        assert!(r.read(105, &mut out[..4]));
        assert!(!r.read(90, &mut out[..10]));
        assert_eq!(out[..10], [0.0; 10]);
    }

    #[test]
    fn mel_ring_evicts_oldest() {
        let mut m = MelRing::new(3);
        m.reset_to(-2);
        for v in 0..5 {
            m.push_with(|row| row.fill(v as f32));
        }
        assert_eq!((m.first(), m.end()), (0, 3));
        assert!(m.get(-1).is_none() && m.get(3).is_none());
        assert_eq!(m.get(2).unwrap()[0], 4.0);
        m.reset_to(10);
        assert!(m.get(2).is_none() && m.get(10).is_none());
    }
}
