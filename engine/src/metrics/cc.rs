//! Linear correlation coefficient (MIT `CC.m`).
use super::{Map, check_same_size, mean, std_n1};

/// Pearson correlation of the z-scored maps (`corr2` of `(m - mean) / std`, std with N - 1).
/// NaN when either map is constant.
pub fn cc(pred: &Map, gt: &Map) -> f64 {
    check_same_size((pred.width, pred.height), (gt.width, gt.height), "CC");
    if pred.is_empty() || pred.is_constant() || gt.is_constant() {
        return f64::NAN;
    }
    let z = |m: &Map| -> Vec<f64> {
        let mu = mean(&m.data);
        let sd = std_n1(&m.data, mu);
        m.data.iter().map(|v| (v - mu) / sd).collect()
    };
    let (a, b) = (z(pred), z(gt));
    // corr2: sum((a - mean a)(b - mean b)) / sqrt(sum((a - mean a)^2) sum((b - mean b)^2)).
    let (ma, mb) = (mean(&a), mean(&b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(&b) {
        let (dx, dy) = (x - ma, y - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    ab / (aa * bb).sqrt()
}
