//! Shuffled AUC (MIT `AUC_shuffled.m`), deterministic variant.
//!
//! MIT samples, for each of `Nsplits = 100` splits, `min(Nfix, Nother)` random locations of the
//! other images' fixation map as negatives and averages the split AUCs. The deterministic
//! variant here takes *all* the other-map locations as the negatives, once (the expectation the
//! random splits estimate when `Nother <= Nfix`; with `Nother > Nfix` each MIT split is a random
//! subset of these). Everything else is MIT's: the prediction is min-max normalised, the
//! thresholds are `0 : step : max([Sth; Soth])` (step 0.1) in descending order, `tp` and `fp`
//! count `>= threshold`, (0,0) and (1,1) are added and the score is the trapezoid area.
//!
//! The thresholds are `k * step` for `k = 0 ..= floor(max / step + 1e-9)` (the tolerance keeps
//! e.g. `0.3` in `0:0.1:0.3`, as MATLAB's colon does). MATLAB computes the upper half of a
//! colon range from its end, so a threshold may differ from ours by one ulp; that only matters
//! for a value lying exactly on a multiple of 0.1 after normalisation.
use super::{Fixations, Map, check_same_size, min_max_normalise, trapz};

/// MIT's default threshold step.
pub const SAUC_STEP: f64 = 0.1;

/// Shuffled AUC of `pred` with the positives `fix` and the negatives `other` (the fixated
/// pixels of the video's other frames). NaN with no fixations, no negatives or a constant
/// prediction.
pub fn sauc(pred: &Map, fix: &Fixations, other: &Fixations, step: f64) -> f64 {
    check_same_size((pred.width, pred.height), (fix.width, fix.height), "sAUC");
    check_same_size(
        (pred.width, pred.height),
        (other.width, other.height),
        "sAUC other map",
    );
    if fix.is_empty() || other.is_empty() || pred.is_constant() {
        return f64::NAN;
    }
    let s = min_max_normalise(pred);
    let pos: Vec<f64> = fix.idx.iter().map(|&i| s[i]).collect();
    let neg: Vec<f64> = other.idx.iter().map(|&i| s[i]).collect();
    let maxv = pos
        .iter()
        .chain(&neg)
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
