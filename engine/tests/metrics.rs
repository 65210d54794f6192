//! Saliency metrics vs the numpy port of the MIT benchmark's MATLAB code
//! (`python/dtfsal/metrics_fixtures.py`), through the committed fixture
//! `tests/data/metrics_ref.json` (regenerate with `python -m dtfsal.metrics_fixtures`; the
//! script also cross-checks the port against pysaliency where their conventions coincide).
use dtfsal_engine::metrics::{
    Fixations, FrameScores, Map, SAUC_STEP, auc_judd, cc, imresize_bicubic, kld, nss,
    prepare_prediction, sauc, score_frame, sim,
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
