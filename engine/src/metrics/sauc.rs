//! Shuffled AUC (MIT `AUC_shuffled.m`): the deterministic variant [`sauc`] and MIT's random one
//! [`sauc_random`].
//!
//! MIT samples, for each of `Nsplits = 100` splits, `min(Nfix, Nother)` random locations of the
//! other images' fixation map as negatives (`ind(randperm(length(ind)))`, the first
//! `min(Nfix, Nother)`) and averages the split AUCs: [`sauc_random`], with a seeded ChaCha8 RNG
//! instead of MATLAB's. The deterministic variant [`sauc`] takes *all* the other-map locations
//! as the negatives, once. Both give the same value when `Nother <= Nfix` (every split then
//! holds all the negatives); otherwise the deterministic value is the expectation the random
//! splits estimate (the ROC area is linear in the negatives' histogram over the thresholds, and a
//! random subset's histogram has the full set's as its mean; the thresholds above the largest
//! value only add (0, 0) points), so the two differ by the sampling noise of `Nsplits` splits.
//! Everything else is MIT's: the prediction is min-max normalised, the thresholds are
//! `0 : step : max([Sth; Soth])` (step 0.1; `Soth`: the split's negatives) in descending order,
//! `tp` and `fp` count `>= threshold`, (0,0) and (1,1) are added and the score is the trapezoid
//! area.
//!
//! The thresholds are `k * step` for `k = 0 ..= floor(max / step + 1e-9)` (the tolerance keeps
//! e.g. `0.3` in `0:0.1:0.3`, as MATLAB's colon does). MATLAB computes the upper half of a
//! colon range from its end, so a threshold may differ from ours by one ulp; that only matters
//! for a value lying exactly on a multiple of 0.1 after normalisation.
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::{Fixations, Map, check_same_size, min_max_normalise, trapz};

/// MIT's default threshold step.
pub const SAUC_STEP: f64 = 0.1;

/// MIT's default number of random splits (`Nsplits`) of [`sauc_random`].
pub const SAUC_SPLITS: usize = 100;

/// Shuffled AUC of `pred` with the positives `fix` and the negatives `other` (the fixated
/// pixels of the video's other frames). NaN with no fixations, no negatives or a constant
/// prediction.
pub fn sauc(pred: &Map, fix: &Fixations, other: &Fixations, step: f64) -> f64 {
    let Some((s, pos)) = positives(pred, fix, other) else {
        return f64::NAN;
    };
    let neg: Vec<f64> = other.idx.iter().map(|&i| s[i]).collect();
    roc_area(&pos, &neg, step)
}

/// MIT's random shuffled AUC: the mean over `splits` splits of the ROC area with
/// `min(Nfix, Nother)` of the `other` locations drawn without replacement as negatives (a fresh
/// random subset per split, as `randperm`), from a ChaCha8 RNG seeded with `seed`. The same
/// arguments give the same value on every platform. NaN where [`sauc`] is NaN or `splits == 0`.
pub fn sauc_random(
    pred: &Map,
    fix: &Fixations,
    other: &Fixations,
    step: f64,
    splits: usize,
    seed: u64,
) -> f64 {
    let Some((s, pos)) = positives(pred, fix, other) else {
        return f64::NAN;
    };
    if splits == 0 {
        return f64::NAN;
    }
    let k = pos.len().min(other.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ind = other.idx.clone();
    let mut neg = vec![0.0; k];
    let mut total = 0.0;
    for _ in 0..splits {
        // Partial Fisher-Yates: ind[..k] becomes a uniformly random ordered k-subset (from any
        // starting order), the first k of a random permutation.
        for i in 0..k {
            let j = i + below(&mut rng, ind.len() - i);
            ind.swap(i, j);
        }
        for (n, &i) in neg.iter_mut().zip(&ind[..k]) {
            *n = s[i];
        }
        total += roc_area(&pos, &neg, step);
    }
    total / splits as f64
}

/// Uniform integer in `0..n` (`n > 0`), Lemire's multiply-and-reject: unbiased, and only
/// depends on the RNG's `u64` stream.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let n = n as u64;
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as usize;
        }
    }
}

/// Checks the sizes; the min-max normalised prediction and its values at the fixations, or
/// None where the sAUC is undefined (no fixations, no negatives, a constant prediction).
fn positives(pred: &Map, fix: &Fixations, other: &Fixations) -> Option<(Vec<f64>, Vec<f64>)> {
    check_same_size((pred.width, pred.height), (fix.width, fix.height), "sAUC");
    check_same_size(
        (pred.width, pred.height),
        (other.width, other.height),
        "sAUC other map",
    );
    if fix.is_empty() || other.is_empty() || pred.is_constant() {
        return None;
    }
    let s = min_max_normalise(pred);
    let pos = fix.idx.iter().map(|&i| s[i]).collect();
    Some((s, pos))
}

/// MIT's ROC area of positives `pos` vs negatives `neg` (both non-empty) on the thresholds
/// `0 : step : max([pos; neg])`.
fn roc_area(pos: &[f64], neg: &[f64], step: f64) -> f64 {
    let maxv = pos
        .iter()
        .chain(neg)
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let n = (maxv / step + 1e-9).floor() as usize;
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    let mut tp = vec![0.0];
    let mut fp = vec![0.0];
    for k in (0..=n).rev() {
        let t = k as f64 * step;
        tp.push(pos.iter().filter(|&&v| v >= t).count() as f64 / np);
        fp.push(neg.iter().filter(|&&v| v >= t).count() as f64 / nn);
    }
    tp.push(1.0);
    fp.push(1.0);
    trapz(&fp, &tp)
}
