//! Saliency metrics vs the numpy port of the MIT benchmark's MATLAB code
//! (`python/dtfsal/metrics_fixtures.py`), through the committed fixture
//! `tests/data/metrics_ref.json` (regenerate with `python -m dtfsal.metrics_fixtures`; the
//! script also cross-checks the port against pysaliency where their conventions coincide).
use dtfsal_engine::metrics::{
    Fixations, FrameScores, Map, SAUC_SPLITS, SAUC_STEP, SaucVariant, auc_judd, cc,
    imresize_bicubic, kld, nss, prepare_prediction, sauc, sauc_random, score_frame,
    score_frame_with, sim,
};
use serde::Deserialize;

const TOL: f64 = 1e-6;

#[derive(Deserialize)]
struct JMap {
    width: usize,
    height: usize,
    data: Vec<f64>,
}

impl JMap {
    fn map(&self) -> Map {
        Map::new(self.width, self.height, self.data.clone())
    }
}

#[derive(Deserialize)]
struct Expect {
    cc: Option<f64>,
    nss: Option<f64>,
    auc_j: Option<f64>,
    sim: Option<f64>,
    kld: Option<f64>,
    sauc: Option<f64>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    pred: JMap,
    gt: JMap,
    fix: Vec<(usize, usize)>,
    other: Vec<(usize, usize)>,
    prepared: JMap,
    expect: Expect,
}

#[derive(Deserialize)]
struct Resize {
    src: JMap,
    out: JMap,
}

#[derive(Deserialize)]
struct Doc {
    kld_eps: f64,
    sauc_step: f64,
    cases: Vec<Case>,
    resize: Vec<Resize>,
}

fn doc() -> Doc {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/metrics_ref.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("read metrics_ref.json")).unwrap()
}

fn close(case: &str, what: &str, got: f64, want: Option<f64>) {
    match want {
        None => assert!(got.is_nan(), "{case} {what}: got {got}, want NaN"),
        Some(w) => assert!((got - w).abs() <= TOL, "{case} {what}: got {got}, want {w}"),
    }
}

#[test]
fn constants_match_the_fixture() {
    let d = doc();
    assert_eq!(d.kld_eps, dtfsal_engine::metrics::KLD_EPS);
    assert_eq!(d.sauc_step, SAUC_STEP);
}

#[test]
fn resize_matches_matlab_port() {
    for (i, r) in doc().resize.iter().enumerate() {
        let out = imresize_bicubic(&r.src.map(), r.out.width, r.out.height);
        assert_eq!((out.width, out.height), (r.out.width, r.out.height));
        for (j, (a, b)) in out.data.iter().zip(&r.out.data).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9,
                "resize case {i} pixel {j}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn every_metric_matches_the_numpy_port() {
    let d = doc();
    assert!(d.cases.len() >= 8);
    for c in &d.cases {
        let gt = c.gt.map();
        let pred = prepare_prediction(&c.pred.map(), gt.width, gt.height, 0.0, 1.0);
        for (j, (a, b)) in pred.data.iter().zip(&c.prepared.data).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9,
                "{} prepared pixel {j}: {a} vs {b}",
                c.name
            );
        }
        let fix = Fixations::from_points(gt.width, gt.height, &c.fix);
        let other = Fixations::from_points(gt.width, gt.height, &c.other);
        let n = c.name.as_str();
        close(n, "cc", cc(&pred, &gt), c.expect.cc);
        close(n, "nss", nss(&pred, &fix), c.expect.nss);
        close(n, "auc_j", auc_judd(&pred, &fix), c.expect.auc_j);
        close(n, "sim", sim(&pred, &gt), c.expect.sim);
        close(n, "kld", kld(&pred, &gt), c.expect.kld);
        close(
            n,
            "sauc",
            sauc(&pred, &fix, &other, SAUC_STEP),
            c.expect.sauc,
        );
        let s: FrameScores = score_frame(&pred, &gt, &fix, &other);
        close(n, "score_frame.cc", s.cc, c.expect.cc);
        close(n, "score_frame.sauc", s.sauc, c.expect.sauc);
    }
}

#[test]
fn fixture_covers_the_edge_cases() {
    let d = doc();
    let names: Vec<&str> = d.cases.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "ties",
        "constant",
        "no_fixations",
        "upsampled",
        "downsampled",
    ] {
        assert!(names.contains(&want), "fixture lacks case {want}");
    }
}

#[test]
fn fixations_from_map_threshold_at_zero() {
    let m = Map::new(3, 2, vec![0.0, 0.2, 0.0, 1.0, 0.0, 0.0]);
    let f = Fixations::from_map(&m);
    assert_eq!(f.idx, vec![1, 3]);
    assert_eq!(
        Fixations::from_points(3, 2, &[(1, 0), (0, 1), (1, 0)]).idx,
        vec![1, 3]
    );
}

// ---------------------------------------------------------------- random shuffled AUC

/// The random sAUC (MIT's 100 splits) is an unbiased estimate of the deterministic one with a
/// sampling noise. Measured on the fixture cases and the large case below, over 1000 seeds
/// (`sauc_random` with seeds 0..1000 minus `sauc`): standard deviation 0.003-0.007 per frame,
/// largest |difference| 0.026, mean difference within 0.0003. Bounds used here: one frame, one
/// seed within [`RANDOM_TOL_FRAME`]; the mean over [`MEAN_SEEDS`] seeds within
/// [`RANDOM_TOL_MEAN`] (about 5 standard errors). A dataset score averages many frames, so
/// there the two variants differ by far less (see `cli/tests/eval_model.rs`).
const RANDOM_TOL_FRAME: f64 = 0.03;
const RANDOM_TOL_MEAN: f64 = 0.002;
const MEAN_SEEDS: u64 = 200;

fn fixture_inputs(c: &Case) -> (Map, Fixations, Fixations) {
    let gt = c.gt.map();
    let pred = prepare_prediction(&c.pred.map(), gt.width, gt.height, 0.0, 1.0);
    let fix = Fixations::from_points(gt.width, gt.height, &c.fix);
    let other = Fixations::from_points(gt.width, gt.height, &c.other);
    (pred, fix, other)
}

/// A larger case where the random splits really subsample (25 fixations, 400 other locations):
/// a smooth map plus a deterministic ripple, points from a fixed LCG.
type Points = Vec<(usize, usize)>;

fn large_case() -> (Map, Points, Points) {
    let (w, h) = (48usize, 36usize);
    let data = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            let g = (-((x - 20.0).powi(2) + (y - 17.0).powi(2)) / (2.0 * 9.0f64.powi(2))).exp();
            g + 0.15 * ((x * 0.7).sin() * (y * 1.3).cos())
        })
        .collect();
    let mut state = 12345u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let mut pts = |count: usize, spread: usize| -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = Vec::new();
        while v.len() < count {
            let p = (12 + next(spread).min(w - 13), 8 + next(spread).min(h - 9));
            let p = (p.0.min(w - 1), p.1.min(h - 1));
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    };
    let fix = pts(25, 20);
    let other = pts(400, 28);
    (Map::new(w, h, data), fix, other)
}

#[test]
fn random_sauc_is_close_to_the_deterministic_one_and_reproducible() {
    let d = doc();
    let (m, f, o) = large_case();
    let mut cases: Vec<(String, Map, Fixations, Fixations)> = d
        .cases
        .iter()
        .map(|c| {
            let (pred, fix, other) = fixture_inputs(c);
            (c.name.clone(), pred, fix, other)
        })
        .collect();
    let (fix, other) = (
        Fixations::from_points(m.width, m.height, &f),
        Fixations::from_points(m.width, m.height, &o),
    );
    cases.push(("large".into(), m, fix, other));
    let (mut worst, mut worst_mean) = (0.0f64, 0.0f64);
    for (name, pred, fix, other) in &cases {
        let det = sauc(pred, fix, other, SAUC_STEP);
        let values: Vec<f64> = (0..MEAN_SEEDS)
            .map(|seed| sauc_random(pred, fix, other, SAUC_STEP, SAUC_SPLITS, seed))
            .collect();
        if det.is_nan() {
            assert!(
                values.iter().all(|r| r.is_nan()),
                "{name}: random sAUC {values:?}, deterministic NaN"
            );
            continue;
        }
        for (seed, r) in values.iter().enumerate() {
            worst = worst.max((r - det).abs());
            assert!(
                (r - det).abs() <= RANDOM_TOL_FRAME,
                "{name} seed {seed}: random {r} vs all {det}"
            );
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        worst_mean = worst_mean.max((mean - det).abs());
        assert!(
            (mean - det).abs() <= RANDOM_TOL_MEAN,
            "{name}: mean over {MEAN_SEEDS} seeds {mean} vs all {det}"
        );
        // Same seed, same value; the splits really differ between seeds.
        assert_eq!(
            sauc_random(pred, fix, other, SAUC_STEP, SAUC_SPLITS, 7).to_bits(),
            values[7].to_bits()
        );
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() > 10, "{name}: {distinct:?}");
    }
    eprintln!(
        "random sAUC - all: largest per seed {worst:.5}, largest mean over {MEAN_SEEDS} seeds {worst_mean:.5}"
    );
}

#[test]
fn random_sauc_equals_the_deterministic_one_when_every_split_takes_all_negatives() {
    // Nother <= Nfix: each split is a permutation of all the negatives.
    let d = doc();
    let c = d.cases.iter().find(|c| c.name == "smooth").unwrap();
    let (pred, fix, _) = fixture_inputs(c);
    let other = Fixations::from_points(pred.width, pred.height, &c.other[..5]);
    assert!(other.len() <= fix.len());
    let det = sauc(&pred, &fix, &other, SAUC_STEP);
    for seed in [0, 1, 99] {
        let r = sauc_random(&pred, &fix, &other, SAUC_STEP, SAUC_SPLITS, seed);
        assert!((r - det).abs() < 1e-12, "seed {seed}: {r} vs {det}");
    }
    assert!(sauc_random(&pred, &fix, &other, SAUC_STEP, 0, 0).is_nan());
    let s = score_frame_with(
        &pred,
        &pred,
        &fix,
        &other,
        SaucVariant::Random {
            splits: 10,
            seed: 3,
        },
    );
    assert!((s.sauc - det).abs() < 1e-12, "{} vs {det}", s.sauc);
    assert_eq!(s.cc, score_frame(&pred, &pred, &fix, &other).cc);
}

fn python() -> Option<std::path::PathBuf> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = std::env::var_os("DTFSAL_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo.join("python/.venv/bin/python"));
    p.is_file().then_some(p)
}

#[test]
fn random_sauc_agrees_with_the_numpy_port_of_auc_shuffled() {
    let Some(py) = python() else {
        eprintln!(
            "SKIPPED random_sauc_agrees_with_the_numpy_port_of_auc_shuffled: no python venv (run scripts/setup.sh)"
        );
        return;
    };
    // The fixture cases plus the large one, through `metrics_fixtures.sauc_random` (MIT's code
    // with numpy's permutation; the mean over NUMPY_SEEDS seeds) and the deterministic port.
    // The RNGs differ, so the means over seeds are compared: each has a standard error of about
    // 0.007 / sqrt(50) = 0.001.
    const NUMPY_SEEDS: u64 = 50;
    const TOL_MEANS: f64 = 0.005;
    let d = doc();
    let mut cases: Vec<(String, Map, Points, Points)> = d
        .cases
        .iter()
        .map(|c| {
            let gt = c.gt.map();
            let pred = prepare_prediction(&c.pred.map(), gt.width, gt.height, 0.0, 1.0);
            (c.name.clone(), pred, c.fix.clone(), c.other.clone())
        })
        .collect();
    let (m, f, o) = large_case();
    cases.push(("large".into(), m, f, o));
    let doc_in: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, m, f, o)| {
            serde_json::json!({"name": name, "width": m.width, "height": m.height, "data": m.data, "fix": f, "other": o})
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("dtfsal-sauc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("cases.json");
    std::fs::write(&input, serde_json::to_string(&doc_in).unwrap()).unwrap();
    let script = r#"
import json, sys
import numpy as np
from dtfsal import metrics_fixtures as mf
out = {}
for c in json.load(open(sys.argv[1])):
    pred = np.array(c["data"], dtype=np.float64).reshape(c["height"], c["width"])
    fix = mf._fixmap(c["height"], c["width"], c["fix"])
    other = mf._fixmap(c["height"], c["width"], c["other"])
    rnd = [mf.sauc_random(pred, fix, other, rng=np.random.default_rng(s)) for s in range(int(sys.argv[2]))]
    out[c["name"]] = [mf.sauc(pred, fix, other), float(np.mean(rnd))]
print(json.dumps(out).replace("NaN", "null"))
"#;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(&input)
        .arg(NUMPY_SEEDS.to_string())
        .env("PYTHONPATH", repo.join("python"))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: std::collections::HashMap<String, [Option<f64>; 2]> =
        serde_json::from_slice(&out.stdout).expect("python output");
    let _ = std::fs::remove_dir_all(&dir);
    let mut worst = 0.0f64;
    for (name, m, f, o) in &cases {
        let fix = Fixations::from_points(m.width, m.height, f);
        let other = Fixations::from_points(m.width, m.height, o);
        let [np_all, np_random] = got[name];
        let all = sauc(m, &fix, &other, SAUC_STEP);
        let random = (0..NUMPY_SEEDS)
            .map(|s| sauc_random(m, &fix, &other, SAUC_STEP, SAUC_SPLITS, 1000 + s))
            .sum::<f64>()
            / NUMPY_SEEDS as f64;
        close(name, "sauc (all) vs numpy", all, np_all);
        match np_random {
            None => assert!(random.is_nan(), "{name}: random {random}, numpy NaN"),
            Some(v) => {
                worst = worst.max((random - v).abs());
                assert!(
                    (random - v).abs() <= TOL_MEANS,
                    "{name}: random sAUC {random} vs numpy MIT port {v} (means over {NUMPY_SEEDS} seeds)"
                );
            }
        }
    }
    eprintln!(
        "random sAUC: largest |rust - numpy MIT port|, means over {NUMPY_SEEDS} seeds: {worst:.5}"
    );
}
