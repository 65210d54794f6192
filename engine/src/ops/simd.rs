//! Vectorisable element-wise kernels (exp, erf-GELU, softmax) with run-time CPU dispatch.
//!
//! The loops are written branch-free over lanes so LLVM vectorises them; each public function compiles
//! them three times (AVX-512, AVX2+FMA, baseline) and picks one per call from the CPU's features, so
//! one binary runs everywhere and uses what the machine has.

/// Lanes of the manual accumulators: enough for a 512-bit register.
const LANES: usize = 16;

/// Defines `fn $name` that dispatches to copies of `$body` compiled with AVX-512 / AVX2 enabled.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn kernel($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { kernel($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { kernel($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
                    // SAFETY: the CPU supports the features this copy was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            kernel($($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// `e^x`, Cephes-style: `2^n * p(r)` with `r = x - n ln 2`; ~1 ulp on [-87, 88], branch-free.
#[inline(always)]
pub fn exp_lane(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to nearest
    let x = x.clamp(-87.3, 88.7);
    // t holds n = round(x / ln 2) in its low mantissa bits: read it as an integer with integer ops,
    // because a float -> int `as` cast (saturating) does not vectorise.
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((k + 127) as u32) << 23)
}

/// GELU with PyTorch's vectorised CPU erf (Abramowitz-Stegun 7.1.26, |error| < 1.5e-7).
#[inline(always)]
pub fn gelu_lane(v: f32) -> f32 {
    let x = v * std::f32::consts::FRAC_1_SQRT_2;
    let a = x.abs();
    let t = 1.0 / (0.327_591_1 * a + 1.0);
    let r = ((((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6) * t;
    let erf_abs = 1.0 - r * exp_lane(-a * a);
    0.5 * v * (1.0 + erf_abs.copysign(x))
}

dispatch! {
    /// In place `x = exp(x)`.
    pub fn exp_inplace(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = exp_lane(*v));
    }
}

dispatch! {
    /// In place exact-form GELU.
    pub fn gelu_inplace(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = gelu_lane(*v));
    }
}

dispatch! {
    /// In place logistic sigmoid.
    pub fn sigmoid_inplace(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + exp_lane(-*v)));
    }
}

/// `row = exp(row - max(row))` in place; returns the sum (lane-wise partials, total in f64).
#[inline(always)]
fn exp_shifted_sum(row: &mut [f32]) -> f64 {
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            mx[l] = mx[l].max(c[l]);
        }
    }
    let max = chunks.remainder().iter().fold(mx.iter().copied().fold(f32::NEG_INFINITY, f32::max), |m, &v| m.max(v));
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            c[l] = exp_lane(c[l] - max);
            sums[l] += c[l];
        }
    }
    let mut sum: f64 = sums.iter().map(|&s| s as f64).sum();
    for v in chunks.into_remainder() {
        *v = exp_lane(*v - max);
        sum += *v as f64;
    }
    sum
}

dispatch! {
    /// In place softmax of one row; max and sum use lane-wise partials (like PyTorch's vector kernels).
    pub fn softmax_inplace(row: &mut [f32]) {
        let inv = (1.0 / exp_shifted_sum(row)) as f32;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

dispatch! {
    /// Softmax without its last pass: `row = exp(row - max)`, returning `1 / sum` for the caller to
    /// apply later (attention scales the few outputs of `P·V` instead of every probability).
    pub fn softmax_unnormalised(row: &mut [f32]) -> f32 {
        (1.0 / exp_shifted_sum(row)) as f32
    }
}

/// Lanes of a relative-position table's padded key axis (one 512-bit register).
pub const REL_LANES: usize = 16;

/// `out = q · table` for a row-major `table [q.len(), out.len()]` whose width is a multiple of
/// [`REL_LANES`] (zero-padded): broadcast-and-FMA over the table's rows into register accumulators, so
/// no horizontal sums (which dominate dot products as short as a head's width).
#[inline(always)]
fn vec_mat_padded(q: &[f32], table: &[f32], out: &mut [f32]) {
    let width = out.len();
    for (c0, acc_out) in out.chunks_exact_mut(REL_LANES).enumerate() {
        let mut acc = [0.0f32; REL_LANES];
        for (&qc, trow) in q.iter().zip(table.chunks_exact(width)) {
            let tr = &trow[c0 * REL_LANES..][..REL_LANES];
            for l in 0..REL_LANES {
                acc[l] += qc * tr[l];
            }
        }
        acc_out.copy_from_slice(&acc);
    }
}

dispatch! {
    /// MViTv2's decomposed relative-position bias for one logits row over the key grid `kt x kh x kw`:
    /// `row[(i*kh + j)*kw + k] += (q·t[:, i] + q·h[:, j]) + q·w[:, k]`. The tables are `[d, K]` row-major
    /// (those of this query's t, h and w) with `K` = the key count rounded up to [`REL_LANES`], zero
    /// beyond it; `scratch` holds the three `K`s.
    pub fn add_rel_pos_row(row: &mut [f32], q: &[f32], t: &[f32], h: &[f32], w: &[f32], keys: [usize; 3], scratch: &mut [f32]) {
        let [kt, kh, kw] = keys;
        let d = q.len();
        let (rt, rest) = scratch.split_at_mut(t.len() / d);
        let (rh, rw) = rest.split_at_mut(h.len() / d);
        let rw = &mut rw[..w.len() / d];
        vec_mat_padded(q, t, rt);
        vec_mat_padded(q, h, rh);
        vec_mat_padded(q, w, rw);
        let rw = &rw[..kw];
        let mut cells = row.chunks_exact_mut(kw);
        for a in &rt[..kt] {
            for b in &rh[..kh] {
                let ab = a + b;
                let Some(cell) = cells.next() else { return };
                cell.iter_mut().zip(rw).for_each(|(dst, c)| *dst += ab + c);
            }
        }
    }
}

dispatch! {
    /// LayerNorm of one row: mean and biased variance in f64 (two passes, f64 lane partials), then
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`.
    pub fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        const L: usize = 8;
        let n = row.len() as f64;
        let mut acc = [0.0f64; L];
        let chunks = row.chunks_exact(L);
        let mut sum: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
        for c in chunks {
            for l in 0..L {
                acc[l] += c[l] as f64;
            }
        }
        sum += acc.iter().sum::<f64>();
        let mean64 = sum / n;
        let mut acc = [0.0f64; L];
        let chunks = row.chunks_exact(L);
        let mut sq: f64 = chunks.remainder().iter().map(|&v| (v as f64 - mean64) * (v as f64 - mean64)).sum();
        for c in chunks {
            for l in 0..L {
                let d = c[l] as f64 - mean64;
                acc[l] += d * d;
            }
        }
        sq += acc.iter().sum::<f64>();
        let var = (sq / n) as f32;
        let mean = mean64 as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8700..8800 {
            let x = i as f32 * 0.01;
            let got = exp_lane(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "max relative error {worst}");
    }

    #[test]
    fn gelu_is_close_to_the_erf_form() {
        for i in -600..600 {
            let x = i as f32 * 0.01;
            let want = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            let got = gelu_lane(x) as f64;
            assert!((got - want).abs() < 2e-7 * (1.0 + x.abs() as f64), "{x}: {got} vs {want}");
        }
    }

    #[test]
    fn layer_norm_matches_f64_reference() {
        for n in [1usize, 7, 16, 24, 61, 96] {
            let a: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin() * 3.0 + 1.5).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos()).collect();
            let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let mut row = a.clone();
            layer_norm_row(&mut row, &b, &a, 1e-6);
            for i in 0..n {
                let want = (a[i] as f64 - mean) / (var + 1e-6).sqrt() * b[i] as f64 + a[i] as f64;
                assert!((row[i] as f64 - want).abs() < 2e-5 * (1.0 + want.abs()), "layer norm n={n} i={i}");
            }
        }
    }

    #[test]
    fn rel_pos_bias_and_deferred_softmax_match_their_definitions() {
        // key grid 2 x 3 x 17 (kw above one 16-lane register), head width 5
        let (d, kt, kh, kw) = (5usize, 2usize, 3usize, 17usize);
        // [d, K] tables, K padded to 16 lanes (t, h) and 32 (w), padding zero
        let f = |n: usize, s: f32| -> Vec<f32> {
            let padded = n.next_multiple_of(REL_LANES);
            (0..d * padded).map(|i| if i % padded < n { ((i as f32 + s) * 0.37).sin() } else { 0.0 }).collect()
        };
        let q: Vec<f32> = (0..d).map(|i| (i as f32 * 0.53).cos()).collect();
        let (t, h, w) = (f(kt, 1.0), f(kh, 2.0), f(kw, 3.0));
        let dot = |tab: &[f32], k: usize| -> f64 {
            let padded = tab.len() / d;
            (0..d).map(|c| q[c] as f64 * tab[c * padded + k] as f64).sum()
        };
        let mut row = vec![1.0f32; kt * kh * kw];
        add_rel_pos_row(&mut row, &q, &t, &h, &w, [kt, kh, kw], &mut [0.0; 64]);
        for (i, v) in row.iter().enumerate() {
            let want = 1.0 + dot(&t, i / (kh * kw)) + dot(&h, (i / kw) % kh) + dot(&w, i % kw);
            assert!((*v as f64 - want).abs() < 1e-6, "cell {i}: {v} vs {want}");
        }
        let mut p = row.clone();
        softmax_inplace(&mut p);
        let inv = softmax_unnormalised(&mut row);
        for (u, n) in row.iter().zip(&p) {
            assert!((u * inv - n).abs() < 1e-7);
        }
    }

    #[test]
    fn dispatched_softmax_sums_to_one() {
        let mut row: Vec<f32> = (0..1345).map(|i| ((i as f32) * 0.37).sin() * 8.0).collect();
        let want: Vec<f64> = {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        softmax_inplace(&mut row);
        for (a, b) in row.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-7);
        }
    }
}
