//! Reuse of a forward pass's large temporaries across blocks and calls.
//!
//! glibc serves allocations above its mmap threshold (32 MB at most) with fresh pages on every call,
//! and the kernel faults and zeroes each 4 KiB page on first touch: the first MViT blocks of the full
//! model did so for about 1 GB per clip (250k page faults, over a second of system time). Buffers
//! handed back here are taken again by the next block or the next call, already mapped.

use std::sync::{Mutex, PoisonError};

/// Buffers kept at most; beyond it the smallest is freed.
const MAX_KEPT: usize = 8;

/// A thread-safe set of spare `Vec<f32>`s. Concurrent forward passes each take their own buffers.
#[derive(Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<f32>>>,
}

impl BufferPool {
    /// A buffer of `len` values whose contents are unspecified (left from an earlier use, or zero):
    /// the caller overwrites every value. Takes the smallest spare that holds `len`, else grows the
    /// largest one.
    pub fn take(&self, len: usize) -> Vec<f32> {
        let spare = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            let fits = free.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity());
            let pick = fits.or_else(|| free.iter().enumerate().max_by_key(|(_, b)| b.capacity())).map(|(i, _)| i);
            pick.map(|i| free.swap_remove(i))
        };
        let mut buf = spare.unwrap_or_default();
        // shrinking keeps the pages; growing within the capacity writes zeros to pages touched before
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0.0);
        }
        buf
    }

    /// Hands `buf` back for a later [`take`](Self::take).
    pub fn give(&self, buf: Vec<f32>) {
        if buf.capacity() == 0 {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.push(buf);
        if free.len() > MAX_KEPT {
            let smallest = free.iter().enumerate().min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
            if let Some(i) = smallest {
                free.swap_remove(i);
            }
        }
    }

    /// Values held by the spare buffers (their capacity), for tests and memory accounting.
    pub fn kept_values(&self) -> usize {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_smallest_spare_that_fits_and_reuses_its_memory() {
        let pool = BufferPool::default();
        let big = pool.take(1000);
        let small = pool.take(100);
        let (big_ptr, small_ptr) = (big.as_ptr(), small.as_ptr());
        pool.give(big);
        pool.give(small);
        let b = pool.take(90);
        assert_eq!((b.len(), b.as_ptr()), (90, small_ptr), "smallest fitting spare");
        let a = pool.take(500);
        assert_eq!((a.len(), a.as_ptr()), (500, big_ptr), "the next one that fits");
        assert_eq!(pool.kept_values(), 0);
        // none fits: a fresh buffer, or the largest spare grown
        pool.give(b);
        let grown = pool.take(2000);
        assert_eq!(grown.len(), 2000);
        assert_eq!(pool.kept_values(), 0);
    }

    #[test]
    fn keeps_at_most_max_kept_dropping_the_smallest() {
        let pool = BufferPool::default();
        for n in 1..=MAX_KEPT + 3 {
            pool.give(Vec::with_capacity(n * 10));
        }
        let kept: usize = (4..=MAX_KEPT + 3).map(|n| n * 10).sum();
        assert_eq!(pool.kept_values(), kept);
        pool.give(Vec::new());
        assert_eq!(pool.kept_values(), kept, "empty buffers are not kept");
    }
}
