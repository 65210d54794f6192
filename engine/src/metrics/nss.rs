//! Normalized scanpath saliency (MIT `NSS.m`).
use super::{Fixations, Map, check_same_size, mean, std_n1};

/// Mean of the z-scored prediction (std with N - 1) at the fixated pixels. NaN with no
/// fixations or a constant prediction.
pub fn nss(pred: &Map, fix: &Fixations) -> f64 {
    check_same_size((pred.width, pred.height), (fix.width, fix.height), "NSS");
    if fix.is_empty() || pred.is_constant() {
        return f64::NAN;
    }
    let mu = mean(&pred.data);
    let sd = std_n1(&pred.data, mu);
    fix.idx
        .iter()
        .map(|&i| (pred.data[i] - mu) / sd)
        .sum::<f64>()
        / fix.len() as f64
}
