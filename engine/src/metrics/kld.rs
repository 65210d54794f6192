//! Kullback-Leibler divergence of the prediction from the GT density (MIT `KLdiv.m`).
use super::{Map, check_same_size};

/// MATLAB's `eps` (2^-52), the regulariser of `KLdiv.m`.
pub const KLD_EPS: f64 = 2.220_446_049_250_313e-16;

/// `sum(gt .* log(eps + gt ./ (pred + eps)))` after dividing each map (unless all zeros) by its
/// sum.
pub fn kld(pred: &Map, gt: &Map) -> f64 {
    check_same_size((pred.width, pred.height), (gt.width, gt.height), "KLD");
    let norm = |m: &Map| -> Vec<f64> {
        if !m.data.iter().any(|&v| v != 0.0) {
            return m.data.clone();
        }
        let s: f64 = m.data.iter().sum();
        m.data.iter().map(|v| v / s).collect()
    };
    let (p, q) = (norm(pred), norm(gt));
    p.iter()
        .zip(&q)
        .map(|(p, q)| q * (KLD_EPS + q / (p + KLD_EPS)).ln())
        .sum()
}
