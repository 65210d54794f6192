//! Saliency metrics with the MIT saliency benchmark's conventions (its MATLAB code:
//! `CC.m`, `NSS.m`, `similarity.m`, `KLdiv.m`, `AUC_Judd.m`, `AUC_shuffled.m`).
//!
//! Maps are [`Map`]s (row-major `f64`, any range; the CLI scales 8/16-bit images to `[0, 1]`
//! as MATLAB's `im2double` does) and fixations are [`Fixations`] (the pixels `> 0` of a binary
//! fixation map). Every metric takes maps of one size: resize the prediction to the ground
//! truth's size first with [`prepare_prediction`] (MATLAB `imresize(.., 'bicubic')`, see
//! [`resize`]). A metric that is undefined for its input returns NaN: a frame with no fixations
//! (NSS, AUC-Judd, sAUC), a constant prediction (CC, NSS, AUC-Judd, sAUC; SIM unless the map is
//! all zeros), an sAUC frame whose video has no other fixations. The caller drops NaNs from the
//! averages and counts them.
//!
//! One deliberate difference from MATLAB: a *constant* map is detected explicitly (`max == min`)
//! and gives NaN for CC and NSS. MATLAB computes `(x - mean) / std` there, whose result depends
//! on the rounding of `mean` (0/0 = NaN when the mean is exact, otherwise ±1-ish noise).
//!
//! The reference is `python/dtfsal/metrics_fixtures.py` (a numpy port of the MATLAB code); the
//! fixture `engine/tests/data/metrics_ref.json` pins every metric to 1e-6.

mod auc_judd;
mod cc;
mod kld;
mod nss;
pub mod resize;
mod sauc;
mod sim;

pub use auc_judd::auc_judd;
pub use cc::cc;
pub use kld::{KLD_EPS, kld};
pub use nss::nss;
pub use resize::imresize_bicubic;
pub use sauc::{SAUC_SPLITS, SAUC_STEP, sauc, sauc_random};
pub use sim::sim;

/// A 2-D map, row-major: `data[y * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Map {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f64>,
}

impl Map {
    pub fn new(width: usize, height: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "map data length != width * height"
        );
        Self {
            width,
            height,
            data,
        }
    }

    pub fn filled(width: usize, height: usize, v: f64) -> Self {
        Self::new(width, height, vec![v; width * height])
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// (min, max); (NaN, NaN) for an empty map.
    pub fn min_max(&self) -> (f64, f64) {
        if self.data.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        self.data
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// True when every value is the same (and the map is not empty).
    pub fn is_constant(&self) -> bool {
        let (lo, hi) = self.min_max();
        lo == hi
    }
}

/// The fixated pixels of a frame: row-major indices `y * width + x`, sorted, unique.
#[derive(Clone, Debug, PartialEq)]
pub struct Fixations {
    pub width: usize,
    pub height: usize,
    pub idx: Vec<usize>,
}

impl Fixations {
    /// The pixels `> 0` of a fixation map (MATLAB `F > 0`).
    pub fn from_map(m: &Map) -> Self {
        let idx = m
            .data
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, _)| i)
            .collect();
        Self {
            width: m.width,
            height: m.height,
            idx,
        }
    }

    /// From `(x, y)` points; duplicates collapse (a fixation map is binary).
    pub fn from_points(width: usize, height: usize, pts: &[(usize, usize)]) -> Self {
        let mut idx: Vec<usize> = pts
            .iter()
            .map(|&(x, y)| {
                assert!(
                    x < width && y < height,
                    "fixation ({x}, {y}) outside {width}x{height}"
                );
                y * width + x
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        Self { width, height, idx }
    }

    pub fn len(&self) -> usize {
        self.idx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }
}

/// The prediction at the ground truth's size: MATLAB `imresize(pred, [h w], 'bicubic')` (a
/// no-op when the size already matches), then clamped to `[lo, hi]`, the range of the input
/// maps (`[0, 1]` for images). The clamp stands in for the saturation MATLAB applies when it
/// resizes the benchmark's `uint8` maps; unlike MATLAB we do not round to 8 bits.
pub fn prepare_prediction(pred: &Map, width: usize, height: usize, lo: f64, hi: f64) -> Map {
    let mut m = imresize_bicubic(pred, width, height);
    if (m.width, m.height) != (pred.width, pred.height) {
        for v in &mut m.data {
            *v = v.clamp(lo, hi);
        }
    }
    m
}

/// The six metrics of one frame (NaN where undefined).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameScores {
    pub cc: f64,
    pub nss: f64,
    pub auc_j: f64,
    pub sim: f64,
    pub kld: f64,
    pub sauc: f64,
}

impl FrameScores {
    pub const NAMES: [&'static str; 6] = ["cc", "nss", "auc_j", "sim", "kld", "sauc"];

    pub fn as_array(&self) -> [f64; 6] {
        [self.cc, self.nss, self.auc_j, self.sim, self.kld, self.sauc]
    }
}

/// Which shuffled AUC [`score_frame_with`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaucVariant {
    /// [`sauc`]: every negative location once (deterministic).
    All,
    /// [`sauc_random`]: MIT's random splits, the RNG seeded with `seed`.
    Random { splits: usize, seed: u64 },
}

/// Every metric of one frame. `pred` must already have the ground truth's size
/// ([`prepare_prediction`]); `density` is the GT density map, `fix` the frame's fixations and
/// `other` the negatives of the shuffled AUC (the video's other frames' fixations).
/// The sAUC is the deterministic variant ([`SaucVariant::All`]).
pub fn score_frame(pred: &Map, density: &Map, fix: &Fixations, other: &Fixations) -> FrameScores {
    score_frame_with(pred, density, fix, other, SaucVariant::All)
}

/// [`score_frame`] with the sAUC variant chosen.
pub fn score_frame_with(
    pred: &Map,
    density: &Map,
    fix: &Fixations,
    other: &Fixations,
    variant: SaucVariant,
) -> FrameScores {
    FrameScores {
        cc: cc(pred, density),
        nss: nss(pred, fix),
        auc_j: auc_judd(pred, fix),
        sim: sim(pred, density),
        kld: kld(pred, density),
        sauc: match variant {
            SaucVariant::All => sauc(pred, fix, other, SAUC_STEP),
            SaucVariant::Random { splits, seed } => {
                sauc_random(pred, fix, other, SAUC_STEP, splits, seed)
            }
        },
    }
}

fn check_same_size(a: (usize, usize), b: (usize, usize), what: &str) {
    assert_eq!(
        a, b,
        "{what}: maps of different sizes (resize the prediction first)"
    );
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (N - 1), as MATLAB `std`.
fn std_n1(v: &[f64], mean: f64) -> f64 {
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (ss / (v.len() as f64 - 1.0)).sqrt()
}

/// MATLAB `(S - min(S)) / (max(S) - min(S))`: all NaN for a constant map (0/0).
fn min_max_normalise(m: &Map) -> Vec<f64> {
    let (lo, hi) = m.min_max();
    m.data.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

/// MATLAB `trapz(x, y)`.
fn trapz(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum()
}
