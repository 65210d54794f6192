//! [`ClipRing`]: the last pre-processed frames (model resolution, normalised planes `[3, H, W]`)
//! with their running times, from which clips `[3, T, H, W]` are assembled.
//!
//! Frames are numbered from 0 (the first frame after start or a flush). A clip is a window of `T`
//! consecutive frame numbers; numbers before the first frame repeat the first frame and numbers
//! past the newest repeat the newest (the reference loaders' rule for the start and the end of a
//! video). The ring keeps at least the last `T` frames; [`ClipRing::trim_before`] drops older ones
//! once no pending clip needs them.

use std::collections::VecDeque;
use std::sync::Arc;

use dtfsal_engine::tensor::Tensor;

/// One pre-processed frame.
#[derive(Debug, Clone)]
pub struct RingFrame {
    /// Frame number.
    pub index: u64,
    /// Running time of the frame's start (ns), when known.
    pub running_time: Option<u64>,
    /// Normalised planes `[3, H, W]`.
    pub planes: Arc<Vec<f32>>,
}

/// The pre-processed frame store (see the module docs).
#[derive(Debug, Clone)]
pub struct ClipRing {
    clip_len: usize,
    width: usize,
    height: usize,
    frames: VecDeque<RingFrame>,
}

impl ClipRing {
    /// An empty ring for clips of `clip_len` frames of `width × height`.
    pub fn new(clip_len: usize, width: usize, height: usize) -> Self {
        Self { clip_len: clip_len.max(1), width, height, frames: VecDeque::with_capacity(clip_len * 2) }
    }

    pub fn clip_len(&self) -> usize {
        self.clip_len
    }

    /// `(width, height)` of the frames.
    pub fn frame_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Number of the newest frame.
    pub fn newest(&self) -> Option<u64> {
        self.frames.back().map(|f| f.index)
    }

    /// Number of the oldest frame kept.
    pub fn oldest(&self) -> Option<u64> {
        self.frames.front().map(|f| f.index)
    }

    /// Forgets every frame (flush, seek).
    pub fn clear(&mut self) {
        self.frames.clear();
    }

    /// Appends the next frame; its number is one past the newest (0 for the first).
    /// Returns the number given. Panics if `planes` is not `3·H·W` long.
    pub fn push(&mut self, running_time: Option<u64>, planes: Vec<f32>) -> u64 {
        assert_eq!(planes.len(), 3 * self.width * self.height, "frame planes are [3, H, W]");
        let index = self.newest().map_or(0, |n| n + 1);
        self.frames.push_back(RingFrame { index, running_time, planes: Arc::new(planes) });
        index
    }

    /// Drops frames numbered below `index`, always keeping the last `T` frames.
    pub fn trim_before(&mut self, index: u64) {
        while self.frames.len() > self.clip_len && self.frames.front().is_some_and(|f| f.index < index) {
            self.frames.pop_front();
        }
    }

    /// The frame kept for number `index` clamped to the kept range (numbers before the oldest
    /// kept frame read the oldest, past the newest the newest).
    pub fn get_clamped(&self, index: i64) -> Option<&RingFrame> {
        let first = self.frames.front()?.index as i64;
        let last = self.frames.back()?.index as i64;
        let k = index.clamp(first, last);
        self.frames.get((k - first) as usize)
    }

    /// The frame numbered `index`, if kept.
    pub fn get(&self, index: u64) -> Option<&RingFrame> {
        let first = self.frames.front()?.index;
        if index < first {
            return None;
        }
        self.frames.get((index - first) as usize)
    }

    /// The clip `[3, T, H, W]` of frames `start .. start + T` (clamped as in the module docs).
    /// `None` when the ring is empty.
    pub fn clip(&self, start: i64) -> Option<Tensor> {
        if self.frames.is_empty() {
            return None;
        }
        let (t, hw) = (self.clip_len, self.width * self.height);
        let mut data = vec![0.0f32; 3 * t * hw];
        for k in 0..t {
            let frame = self.get_clamped(start + k as i64)?;
            for c in 0..3 {
                let dst = (c * t + k) * hw;
                data[dst..dst + hw].copy_from_slice(&frame.planes[c * hw..(c + 1) * hw]);
            }
        }
        Some(Tensor::from_vec(&[3, t, self.height, self.width], data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: f32) -> Vec<f32> {
        let mut f = vec![v; 3 * 2];
        f[2..4].fill(v + 100.0); // channel 1
        f[4..6].fill(v + 200.0); // channel 2
        f
    }

    #[test]
    fn clip_repeats_first_and_last_frames() {
        let mut r = ClipRing::new(4, 2, 1);
        for i in 0..3 {
            assert_eq!(r.push(Some(i * 40), frame(i as f32)), i);
        }
        let c = r.clip(-2).unwrap();
        assert_eq!(c.shape(), &[3, 4, 1, 2]);
        // channel 0, frames -2, -1, 0, 1 -> 0, 0, 0, 1
        assert_eq!(&c.data()[0..8], &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        // channel 2, frames 1..5 -> 1, 2, 2, 2
        let c = r.clip(1).unwrap();
        assert_eq!(&c.data()[16..24], &[201.0, 201.0, 202.0, 202.0, 202.0, 202.0, 202.0, 202.0]);
    }

    #[test]
    fn trim_keeps_a_clip() {
        let mut r = ClipRing::new(2, 2, 1);
        for i in 0..6 {
            r.push(None, frame(i as f32));
        }
        r.trim_before(5);
        assert_eq!((r.oldest(), r.newest()), (Some(4), Some(5)));
        r.trim_before(0);
        assert_eq!(r.len(), 2);
        assert!(r.get(3).is_none());
        assert_eq!(r.get(4).unwrap().planes[0], 4.0);
    }
}
