//! AUC-Judd (MIT `AUC_Judd.m` with `jitter = 0`, i.e. deterministic).
use super::{Fixations, Map, check_same_size, min_max_normalise, trapz};

/// The prediction is min-max normalised; the thresholds are the fixated values sorted
/// descending; at the i-th threshold `tp = i / Nfix` and `fp = (#{S >= t} - i) / (Npix - Nfix)`
/// (MATLAB's counting, ties included), with (0,0) and (1,1) added; the score is the trapezoid
/// area. NaN with no fixations or a constant prediction.
pub fn auc_judd(pred: &Map, fix: &Fixations) -> f64 {
    check_same_size(
        (pred.width, pred.height),
        (fix.width, fix.height),
        "AUC-Judd",
    );
    if fix.is_empty() || pred.is_constant() {
        return f64::NAN;
    }
    let s = min_max_normalise(pred);
    let nfix = fix.len();
    let npix = s.len();
    let mut th: Vec<f64> = fix.idx.iter().map(|&i| s[i]).collect();
    th.sort_unstable_by(|a, b| b.total_cmp(a));
    // #{S >= t} for every threshold: sort S descending once and walk it.
    let mut sorted = s;
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let mut tp = Vec::with_capacity(nfix + 2);
    let mut fp = Vec::with_capacity(nfix + 2);
    tp.push(0.0);
    fp.push(0.0);
    let mut above = 0usize;
    for (i, &t) in th.iter().enumerate() {
        while above < npix && sorted[above] >= t {
            above += 1;
        }
        let k = i + 1;
        tp.push(k as f64 / nfix as f64);
        fp.push((above as f64 - k as f64) / (npix - nfix) as f64);
    }
    tp.push(1.0);
    fp.push(1.0);
    trapz(&fp, &tp)
}
