//! Similarity / histogram intersection (MIT `similarity.m`).
use super::{Map, check_same_size, min_max_normalise};

/// Each map, unless all zeros, is min-max normalised then divided by its sum; the score is the
/// sum of the pixelwise minima. NaN when a map is constant and not all zeros (MATLAB's 0/0).
pub fn sim(pred: &Map, gt: &Map) -> f64 {
    check_same_size((pred.width, pred.height), (gt.width, gt.height), "SIM");
    let norm = |m: &Map| -> Vec<f64> {
        if !m.data.iter().any(|&v| v != 0.0) {
            return m.data.clone();
        }
        let n = min_max_normalise(m);
        let s: f64 = n.iter().sum();
        n.iter().map(|v| v / s).collect()
    };
    let (a, b) = (norm(pred), norm(gt));
    if a.iter().chain(&b).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    a.iter().zip(&b).map(|(x, y)| x.min(*y)).sum()
}
