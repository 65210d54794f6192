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

dispatch! {
    /// `row[(i*|b| + j)*|c| + k] += (a[i] + b[j]) + c[k]`: a decomposed (t, h, w) bias added to a row
    /// laid out over the grid `|a| x |b| x |c|`.
    pub fn add_grid_bias(row: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
        let mut cells = row.chunks_exact_mut(c.len());
        for av in a {
            for bv in b {
                let ab = av + bv;
                let Some(cell) = cells.next() else { return };
                cell.iter_mut().zip(c).for_each(|(dst, cv)| *dst += ab + cv);
            }
        }
    }
}

dispatch! {
    /// Dot product with lane-wise partial sums (vectorises; the order differs from a sequential sum
    /// like a BLAS dot's does).
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        acc.iter().sum::<f32>() + tail
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
    fn dot_and_layer_norm_match_f64_references() {
        for n in [1usize, 7, 16, 24, 61, 96] {
            let a: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin() * 3.0 + 1.5).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() < 1e-5 * (1.0 + want.abs()), "dot n={n}");
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
    fn grid_bias_and_deferred_softmax_match_their_definitions() {
        let (a, b, c) = ([0.5f32, -1.0], [2.0f32, 0.25, 3.0], [1.0f32, -2.0, 0.5, 4.0, 8.0]);
        let mut row = vec![1.0f32; 30];
        add_grid_bias(&mut row, &a, &b, &c);
        for (i, v) in row.iter().enumerate() {
            assert_eq!(*v, 1.0 + ((a[i / 15] + b[(i / 5) % 3]) + c[i % 5]), "cell {i}");
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
