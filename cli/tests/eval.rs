//! `dtfsal eval` on a tiny STAViS-layout dataset written here (2 videos x 5 frames, JPEG density
//! maps, PNG fixation maps and one MATLAB v5 .mat fixation map), with predictions = the GT
//! itself, a constant, resized maps and a missing frame; the JSON is checked against direct
//! calls of the engine's metrics.
use std::path::{Path, PathBuf};
use std::process::Command;

use dtfsal_engine::metrics::{Fixations, FrameScores, Map, prepare_prediction, score_frame};
use serde_json::Value;

const W: u32 = 24;
const H: u32 = 18;
const DB: &str = "TESTDB";
const VIDEOS: [&str; 2] = ["vidA", "vidB"];
const FRAMES: usize = 5;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
}

/// Fixations of video `v`, frame `k` (1-based): a few points; vidB frame 3 has none.
fn fix_points(v: usize, k: usize) -> Vec<(u32, u32)> {
    if v == 1 && k == 3 {
        return Vec::new();
    }
    let cx = 4 + 2 * k as u32 + v as u32;
    let cy = 5 + k as u32 + v as u32;
    vec![
        (cx, cy),
        (cx + 1, cy),
        (cx - 2, cy + 3),
        (cx + 5, cy - 2),
        (3 + k as u32, 14 - v as u32),
    ]
}

fn density(v: usize, k: usize) -> image::GrayImage {
    let pts = fix_points(v, k);
    image::GrayImage::from_fn(W, H, |x, y| {
        let mut s = 0.05;
        for &(px, py) in &pts {
            let d2 = (x as f64 - px as f64).powi(2) + (y as f64 - py as f64).powi(2);
            s += (-d2 / 8.0).exp();
        }
        image::Luma([(s.min(1.0) * 255.0).round() as u8])
    })
}

/// A MATLAB v5 .mat file holding one real double matrix `name` (uncompressed).
fn write_mat(path: &Path, name: &str, rows: usize, cols: usize, col_major: &[f64]) {
    fn tag(out: &mut Vec<u8>, ty: u32, n: usize) {
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    fn pad(out: &mut Vec<u8>) {
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
    }
    let mut body = Vec::new();
    tag(&mut body, 6, 8); // miUINT32 array flags
    body.extend_from_slice(&6u32.to_le_bytes()); // mxDOUBLE_CLASS
    body.extend_from_slice(&0u32.to_le_bytes());
    tag(&mut body, 5, 8); // miINT32 dimensions
    body.extend_from_slice(&(rows as i32).to_le_bytes());
    body.extend_from_slice(&(cols as i32).to_le_bytes());
    tag(&mut body, 1, name.len()); // miINT8 name
    body.extend_from_slice(name.as_bytes());
    pad(&mut body);
    tag(&mut body, 9, col_major.len() * 8); // miDOUBLE real part
    for v in col_major {
        body.extend_from_slice(&v.to_le_bytes());
    }
    pad(&mut body);
    let mut out = vec![b' '; 116];
    let text = b"MATLAB 5.0 MAT-file, written by dtfsal tests";
    out[..text.len()].copy_from_slice(text);
    out.extend_from_slice(&[0u8; 8]); // subsystem data offset
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    tag(&mut out, 14, body.len()); // miMATRIX
    out.extend_from_slice(&body);
    std::fs::write(path, out).unwrap();
}

/// The dataset: fold list, densities (JPEG), fixations (PNG; vidA frame 1 as .mat only).
fn dataset() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("fold_lists")).unwrap();
    std::fs::write(
        root.join(format!("fold_lists/{DB}_list_test_1_fps.txt")),
        format!("{} {FRAMES} 25\n{} {FRAMES} 30\n", VIDEOS[0], VIDEOS[1]),
    )
    .unwrap();
    for (v, name) in VIDEOS.iter().enumerate() {
        let vdir = root.join("annotations").join(DB).join(name);
        std::fs::create_dir_all(vdir.join("maps")).unwrap();
        for k in 1..=FRAMES {
            density(v, k)
                .save(vdir.join(format!("maps/eyeMap_{k:05}.jpg")))
                .unwrap();
            let mut fix = image::GrayImage::new(W, H);
            for &(x, y) in &fix_points(v, k) {
                fix.put_pixel(x, y, image::Luma([255]));
            }
            if v == 0 && k == 1 {
                let mut cm = vec![0.0; (W * H) as usize];
                for &(x, y) in &fix_points(v, k) {
                    cm[(x * H + y) as usize] = 1.0;
                }
                write_mat(
                    &vdir.join(format!("fixMap_{k:05}.mat")),
                    "eyeMap",
                    H as usize,
                    W as usize,
                    &cm,
                );
            } else {
                fix.save(vdir.join(format!("fixMap_{k:05}.png"))).unwrap();
            }
        }
    }
    dir
}

fn gt_path(root: &Path, v: usize, k: usize) -> PathBuf {
    root.join("annotations")
        .join(DB)
        .join(VIDEOS[v])
        .join(format!("maps/eyeMap_{k:05}.jpg"))
}

/// The density as the evaluator decodes it (the JPEG read back), in [0, 1].
fn decoded_density(root: &Path, v: usize, k: usize) -> image::GrayImage {
    image::open(gt_path(root, v, k)).unwrap().to_luma8()
}

fn to_map(img: &image::GrayImage) -> Map {
    Map::new(
        img.width() as usize,
        img.height() as usize,
        img.as_raw().iter().map(|&v| v as f64 / 255.0).collect(),
    )
}

fn fixations(v: usize, k: usize) -> Fixations {
    let pts: Vec<(usize, usize)> = fix_points(v, k)
        .iter()
        .map(|&(x, y)| (x as usize, y as usize))
        .collect();
    Fixations::from_points(W as usize, H as usize, &pts)
}

/// The video's other frames' fixations (union), straight from the definition.
fn other(v: usize, k: usize) -> Fixations {
    let pts: Vec<(usize, usize)> = (1..=FRAMES)
        .filter(|&j| j != k)
        .flat_map(|j| fix_points(v, j))
        .map(|(x, y)| (x as usize, y as usize))
        .collect();
    Fixations::from_points(W as usize, H as usize, &pts)
}

/// Expected summary (per frame, mean per video, mean over videos; NaN dropped) for predictions
/// given by `pred(v, k)` (None = missing).
fn expected(pred: impl Fn(usize, usize) -> Option<Map>, root: &Path) -> ([f64; 6], usize) {
    let mut per_video = Vec::new();
    let mut frames = 0;
    for v in 0..2 {
        let mut scores: Vec<FrameScores> = Vec::new();
        for k in 1..=FRAMES {
            let Some(p) = pred(v, k) else { continue };
            let gt = to_map(&decoded_density(root, v, k));
            let p = prepare_prediction(&p, gt.width, gt.height, 0.0, 1.0);
            scores.push(score_frame(&p, &gt, &fixations(v, k), &other(v, k)));
        }
        frames += scores.len();
        per_video.push(std::array::from_fn::<f64, 6, _>(|m| {
            nan_mean(scores.iter().map(|s| s.as_array()[m]))
        }));
    }
    (
        std::array::from_fn(|m| nan_mean(per_video.iter().map(|pv| pv[m]))),
        frames,
    )
}

fn nan_mean(v: impl Iterator<Item = f64>) -> f64 {
    let x: Vec<f64> = v.filter(|x| !x.is_nan()).collect();
    if x.is_empty() {
        f64::NAN
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

fn run_eval(root: &Path, preds: &Path, extra: &[&str]) -> (Value, String, String) {
    let json = preds.with_extension("json");
    let out = bin()
        .args([
            "eval", "--layout", "stavis", "--db", DB, "--split", "test_1",
        ])
        .arg("--root")
        .arg(root)
        .arg("--predictions")
        .arg(preds)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "eval failed:\n{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (v, stdout, stderr)
}

fn write_preds(dir: &Path, img: impl Fn(usize, usize) -> Option<image::DynamicImage>) {
    for (v, name) in VIDEOS.iter().enumerate() {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for k in 1..=FRAMES {
            if let Some(i) = img(v, k) {
                i.save(dir.join(name).join(format!("{k:05}.png"))).unwrap();
            }
        }
    }
}

fn check(json: &Value, want: [f64; 6], frames: usize, videos: usize, skipped: usize) {
    let obj = json.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "auc_j", "cc", "frames", "kld", "nss", "sauc", "sim", "skipped", "videos"
        ]
    );
    for (name, w) in FrameScores::NAMES.iter().zip(want) {
        if w.is_nan() {
            assert!(
                obj[*name].is_null(),
                "{name}: {} but expected null",
                obj[*name]
            );
        } else {
            let got = obj[*name]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} not a number"));
            assert!((got - w).abs() < 1e-9, "{name}: got {got}, want {w}");
        }
    }
    assert_eq!(obj["frames"], frames);
    assert_eq!(obj["videos"], videos);
    assert_eq!(obj["skipped"], skipped);
}

#[test]
fn gt_as_prediction_scores_perfectly() {
    let ds = dataset();
    let root = ds.path();
    let preds = root.join("pred_gt");
    write_preds(&preds, |v, k| {
        Some(image::DynamicImage::ImageLuma8(decoded_density(root, v, k)))
    });
    let (json, stdout, stderr) = run_eval(
        root,
        &preds,
        &["--csv", root.join("v.csv").to_str().unwrap()],
    );
    let (want, frames) = expected(|v, k| Some(to_map(&decoded_density(root, v, k))), root);
    assert_eq!(frames, 10);
    check(&json, want, 10, 2, 0);
    assert!((json["cc"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!((json["sim"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!(json["nss"].as_f64().unwrap() > 1.0);
    assert!(json["kld"].as_f64().unwrap().abs() < 1e-9);
    // The frame without fixations: counted, NSS/AUC dropped there.
    assert!(stdout.contains("frames without fixations 1"), "{stdout}");
    assert!(stderr.contains("1 frames without fixations"), "{stderr}");
    let csv = std::fs::read_to_string(root.join("v.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.starts_with("video,frames,skipped,cc,nss,auc_j,sim,kld,sauc\nvidA,5,0,1.000000,"),
        "{csv}"
    );
}

#[test]
fn constant_prediction_gives_nan_like_mit() {
    let ds = dataset();
    let root = ds.path();
    let preds = root.join("pred_const");
    write_preds(&preds, |_, _| {
        Some(image::DynamicImage::ImageLuma8(
            image::GrayImage::from_pixel(W, H, image::Luma([128])),
        ))
    });
    let (json, stdout, _) = run_eval(root, &preds, &[]);
    let (want, _) = expected(
        |_, _| Some(Map::filled(W as usize, H as usize, 128.0 / 255.0)),
        root,
    );
    // CC, NSS, AUC-Judd, SIM and sAUC are undefined for a constant map (MIT: NaN): null in the
    // JSON; KLD is defined.
    for k in [0, 1, 2, 3, 5] {
        assert!(want[k].is_nan());
    }
    assert!(want[4].is_finite());
    check(&json, want, 10, 2, 0);
    assert!(stdout.contains("CC"), "{stdout}");
}

#[test]
fn missing_frame_and_resized_16bit_predictions() {
    let ds = dataset();
    let root = ds.path();
    let preds = root.join("pred_mixed");
    // 16-bit predictions at twice the GT size (bicubic resize path), vidA frame 3 missing.
    let big = |v: usize, k: usize| -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
        let d = density(v, (k % FRAMES) + 1); // not the GT itself: a neighbouring frame's map
        image::ImageBuffer::from_fn(2 * W, 2 * H, |x, y| {
            image::Luma([d.get_pixel(x / 2, y / 2)[0] as u16 * 256 + (x % 3) as u16])
        })
    };
    write_preds(&preds, |v, k| {
        ((v, k) != (0, 3)).then(|| image::DynamicImage::ImageLuma16(big(v, k)))
    });
    let (json, _, stderr) = run_eval(root, &preds, &["--average", "video"]);
    let (want, frames) = expected(
        |v, k| {
            ((v, k) != (0, 3)).then(|| {
                let b = big(v, k);
                Map::new(
                    b.width() as usize,
                    b.height() as usize,
                    b.as_raw().iter().map(|&x| x as f64 / 65535.0).collect(),
                )
            })
        },
        root,
    );
    assert_eq!(frames, 9);
    check(&json, want, 9, 2, 1);
    assert!(stderr.contains("frame 3: missing prediction"), "{stderr}");
    let cc = json["cc"].as_f64().unwrap();
    assert!(cc > 0.0 && cc < 0.99, "cc {cc}");
}

#[test]
fn without_predictions_runs_the_model_and_names_missing_inputs() {
    // This dataset has no frames or audio: the model run names what is missing for every
    // video, skips their frames and fails with nothing scored.
    let ds = dataset();
    let out = bin()
        .args(["eval", "--layout", "stavis", "--db", DB, "--root"])
        .arg(ds.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vidA: missing audio"), "{err}");
    assert!(
        err.contains("no frame could be scored (10 skipped)"),
        "{err}"
    );
}

#[test]
fn unreadable_files_are_skipped_with_a_message() {
    let ds = dataset();
    let root = ds.path();
    // A corrupt density map and a corrupt prediction: both frames skipped, the rest scored.
    let preds = root.join("pred_bad");
    write_preds(&preds, |v, k| {
        Some(image::DynamicImage::ImageLuma8(decoded_density(root, v, k)))
    });
    std::fs::write(gt_path(root, 1, 2), b"not a jpeg").unwrap();
    std::fs::write(preds.join("vidA/00004.png"), b"garbage").unwrap();
    let (json, _, stderr) = run_eval(root, &preds, &["--average", "frame"]);
    assert_eq!(json["frames"], 8);
    assert_eq!(json["skipped"], 2);
    assert!(stderr.contains("vidB: frame 2"), "{stderr}");
    assert!(stderr.contains("vidA: frame 4"), "{stderr}");
    assert!((json["cc"].as_f64().unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn dhf1k_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let preds = root.join("pred");
    for (v, name) in VIDEOS.iter().enumerate() {
        let vdir = root.join("annotation").join(name);
        std::fs::create_dir_all(vdir.join("maps")).unwrap();
        std::fs::create_dir_all(vdir.join("fixation")).unwrap();
        std::fs::create_dir_all(preds.join(name)).unwrap();
        for k in 1..=FRAMES {
            density(v, k)
                .save(vdir.join(format!("maps/{k:04}.png")))
                .unwrap();
            let mut fix = image::GrayImage::new(W, H);
            for &(x, y) in &fix_points(v, k) {
                fix.put_pixel(x, y, image::Luma([255]));
            }
            fix.save(vdir.join(format!("fixation/{k:04}.png"))).unwrap();
            density(v, k)
                .save(preds.join(name).join(format!("{k:05}.png")))
                .unwrap();
        }
    }
    let json = root.join("out.json");
    let out = bin()
        .args(["eval", "--layout", "dhf1k", "--root"])
        .arg(root)
        .arg("--predictions")
        .arg(&preds)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["frames"], 10);
    assert_eq!(v["videos"], 2);
    assert_eq!(v["skipped"], 0);
    assert!((v["cc"].as_f64().unwrap() - 1.0).abs() < 1e-12);
}
