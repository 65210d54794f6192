//! `dtfsal eval` running the model (no `--predictions`), the centre baseline, the random shuffled
//! AUC and the figure, on a tiny STAViS-layout dataset written here: two videos of JPEG frames
//! (40 frames of 160x96 at 25 fps, the tiny model's size; 20 frames of 212x124 at 30 fps, resized
//! by the loader; the 32-frame clips clamp at both ends), a 16 kHz mono WAV each, 120x72 JPEG
//! density maps and PNG fixation maps. The model is the random tiny AV test model
//! (`tests/data/tiny-av.weights.safetensors`).
//!
//! The clip the model gets is compared with the Python trainer's (`dtfsal.data.StavisClips`)
//! when the venv is there (`DTFSAL_PYTHON` or python/.venv; skipped with a message without it).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dtfsal_engine::tensor_file::read_tensors;
use serde_json::Value;

const DB: &str = "TESTDB";
/// (name, frames, fps, frame width, frame height)
const VIDEOS: [(&str, usize, u32, u32, u32); 2] =
    [("vidA", 40, 25, 160, 96), ("vidB", 20, 30, 212, 124)];
const GW: u32 = 120;
const GH: u32 = 72;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weights() -> PathBuf {
    repo().join("tests/data/tiny-av.weights.safetensors")
}

fn dtfsal(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(args)
        .args(extra)
        .output()
        .expect("running dtfsal")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "dtfsal failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Where the salient object of video `v` is in frame `k` (fractions of the width and height).
fn object(v: usize, k: usize) -> (f64, f64) {
    let t = k as f64 / 40.0;
    (
        0.2 + 0.6 * t + 0.06 * v as f64,
        0.3 + 0.3 * (6.0 * t + v as f64).sin().abs(),
    )
}

/// The dataset; returns its root (kept alive by the TempDir).
fn dataset() -> tempfile::TempDir {
    dataset_with(false)
}

/// `lossless`: the frames are PNG data under their `.jpg` names (both loaders go by content),
/// so that decoding is exact and only the resize and normalisation are compared.
fn dataset_with(lossless: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("fold_lists")).unwrap();
    let list: String = VIDEOS
        .iter()
        .map(|(n, f, fps, _, _)| format!("{n} {f} {fps}\n"))
        .collect();
    std::fs::write(
        root.join(format!("fold_lists/{DB}_list_test_1_fps.txt")),
        list,
    )
    .unwrap();
    for (v, &(name, frames, fps, fw, fh)) in VIDEOS.iter().enumerate() {
        let fdir = root.join("video_frames").join(DB).join(name);
        let adir = root.join("video_audio").join(DB).join(name);
        let gdir = root.join("annotations").join(DB).join(name);
        for d in [&fdir, &adir, &gdir.join("maps")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for k in 1..=frames {
            let (ox, oy) = object(v, k);
            let img = image::RgbImage::from_fn(fw, fh, |x, y| {
                let inside = (x as f64 - ox * fw as f64).abs() < 12.0
                    && (y as f64 - oy * fh as f64).abs() < 12.0;
                if inside {
                    image::Rgb([230, 40 + 5 * k as u8, 30])
                } else {
                    image::Rgb([
                        (x * 255 / fw) as u8,
                        (y * 255 / fh) as u8,
                        (60 + 40 * v + k) as u8,
                    ])
                }
            });
            let path = fdir.join(format!("img_{k:05}.jpg"));
            if lossless {
                img.save_with_format(path, image::ImageFormat::Png).unwrap();
            } else {
                img.save(path).unwrap();
            }
            // GT at 120x72: a Gaussian on the object plus a weaker one at the centre.
            let (gx, gy) = (ox * GW as f64, oy * GH as f64);
            let density = image::GrayImage::from_fn(GW, GH, |x, y| {
                let d1 = (x as f64 - gx).powi(2) + (y as f64 - gy).powi(2);
                let d2 = (x as f64 - 60.0).powi(2) + (y as f64 - 36.0).powi(2);
                let s = (-d1 / 50.0).exp() + 0.4 * (-d2 / 200.0).exp();
                image::Luma([(s.min(1.0) * 255.0).round() as u8])
            });
            density
                .save(gdir.join(format!("maps/eyeMap_{k:05}.jpg")))
                .unwrap();
            let mut fix = image::GrayImage::new(GW, GH);
            for (dx, dy) in [(0i32, 0i32), (2, 1), (-3, 2), (1, -2), (20, 10)] {
                let (x, y) = (
                    (gx as i32 + dx + (k % 3) as i32).clamp(0, GW as i32 - 1),
                    (gy as i32 + dy).clamp(0, GH as i32 - 1),
                );
                fix.put_pixel(x as u32, y as u32, image::Luma([255]));
            }
            fix.save(gdir.join(format!("fixMap_{k:05}.png"))).unwrap();
        }
        // 16 kHz mono s16: a tone whose loudness follows the object.
        let n = frames * 16_000 / fps as usize;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(adir.join(format!("{name}.wav")), spec).unwrap();
        for i in 0..n {
            let t = i as f64 / 16_000.0;
            let amp = 0.2 + 0.6 * (t * 3.0 + v as f64).sin().abs();
            let s = amp * (2.0 * std::f64::consts::PI * (440.0 + 200.0 * v as f64) * t).sin();
            w.write_sample((s * 20_000.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    dir
}

fn base_args(root: &Path) -> Vec<String> {
    vec![
        "eval".into(),
        "--layout".into(),
        "stavis".into(),
        "--db".into(),
        DB.into(),
        "--root".into(),
        root.display().to_string(),
    ]
}

fn eval(root: &Path, extra: &[&str]) -> (Value, String) {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json = root.join(format!("out-{n}.json"));
    let mut args = base_args(root);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--json".to_string(), json.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dtfsal(&argv, &[]);
    let stderr = ok(&out);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    (v, stderr)
}

const METRICS: [&str; 6] = ["cc", "nss", "auc_j", "sim", "kld", "sauc"];

fn check_keys(json: &Value) {
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "auc_j", "cc", "frames", "kld", "nss", "sauc", "sim", "skipped", "videos"
        ]
    );
}

fn finite(json: &Value) {
    for m in METRICS {
        let v = json[m]
            .as_f64()
            .unwrap_or_else(|| panic!("{m} is {}", json[m]));
        assert!(v.is_finite(), "{m} = {v}");
    }
}

#[test]
fn model_run_scores_every_nth_frame_and_saved_maps_rescore_identically() {
    let ds = dataset();
    let root = ds.path();
    let w = weights();
    let saved = root.join("saved");
    let fig = root.join("fig/eval.png");
    let (json, _) = eval(
        root,
        &[
            "--weights",
            w.to_str().unwrap(),
            "--every",
            "10",
            "--threads",
            "2",
            "--save-predictions",
            saved.to_str().unwrap(),
            "--figure",
            fig.to_str().unwrap(),
        ],
    );
    check_keys(&json);
    // vidA: frames 1, 11, 21, 31; vidB: 1, 11.
    assert_eq!(json["frames"], 6, "{json}");
    assert_eq!(json["videos"], 2);
    assert_eq!(json["skipped"], 0);
    finite(&json);
    let mut pngs: Vec<String> = std::fs::read_dir(saved.join("vidA"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    assert_eq!(pngs, ["00001.png", "00011.png", "00021.png", "00031.png"]);
    let img = image::open(saved.join("vidB/00011.png")).unwrap();
    assert!(
        matches!(img, image::DynamicImage::ImageLuma8(_)),
        "8-bit gray"
    );
    assert_eq!((img.width(), img.height()), (GW, GH), "GT size");

    // Rescoring the saved maps gives the same numbers: they are exactly what was scored.
    let (again, _) = eval(
        root,
        &["--predictions", saved.to_str().unwrap(), "--every", "10"],
    );
    for k in METRICS.iter().chain(&["frames", "videos", "skipped"]) {
        let (a, b) = (json[*k].as_f64().unwrap(), again[*k].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-9, "{k}: model run {a}, rescored {b}");
    }

    // The figure: a valid PNG of the documented size, not blank.
    let f = image::open(&fig).expect("figure is a PNG").to_rgb8();
    assert_eq!(f.width(), 1200);
    assert!(f.height() > 500, "height {}", f.height());
    let non_white = f.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let frac = non_white as f64 / (f.width() * f.height()) as f64;
    assert!(
        frac > 0.1,
        "only {:.1}% of the figure is drawn",
        100.0 * frac
    );
    let mut colours: Vec<[u8; 3]> = f.pixels().map(|p| p.0).collect();
    colours.sort();
    colours.dedup();
    assert!(colours.len() > 200, "only {} colours", colours.len());
    if Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file() {
        // Text: the title band (above the bars) holds dark anti-aliased glyphs.
        let dark = (0..40)
            .flat_map(|y| (0..600).map(move |x| (x, y)))
            .filter(|&(x, y)| f.get_pixel(x, y).0[0] < 100)
            .count();
        assert!(dark > 200, "no title text ({dark} dark pixels)");
    }
}

#[test]
fn default_model_and_threads_run() {
    let ds = dataset();
    let (json, _) = eval(ds.path(), &["--every", "20", "--threads", "1"]);
    assert_eq!(json["frames"], 3, "{json}"); // vidA 1, 21; vidB 1
    finite(&json);
}

#[test]
fn centre_baseline_and_random_sauc() {
    let ds = dataset();
    let root = ds.path();
    let (all, _) = eval(root, &["--baseline", "centre"]);
    check_keys(&all);
    assert_eq!(all["frames"], 60);
    assert_eq!(all["skipped"], 0);
    finite(&all);
    let (r1, _) = eval(
        root,
        &["--baseline", "centre", "--sauc", "random", "--seed", "3"],
    );
    let (r2, _) = eval(
        root,
        &["--baseline", "centre", "--sauc", "random", "--seed", "3"],
    );
    let (r3, _) = eval(
        root,
        &["--baseline", "centre", "--sauc", "random", "--seed", "4"],
    );
    assert_eq!(r1, r2, "same seed, same numbers");
    let (a, b, c) = (
        all["sauc"].as_f64().unwrap(),
        r1["sauc"].as_f64().unwrap(),
        r3["sauc"].as_f64().unwrap(),
    );
    assert_ne!(b, c, "another seed, other splits");
    // Averaged over 60 frames the random variant is within its sampling noise of `all`.
    assert!(
        (a - b).abs() < 0.01 && (a - c).abs() < 0.01,
        "sAUC all {a}, random {b} / {c}"
    );
    for m in ["cc", "nss", "auc_j", "sim", "kld"] {
        assert_eq!(all[m], r1[m], "{m} does not depend on --sauc");
    }
    // The baseline map itself: a Gaussian peaking at the centre, saved at the GT size.
    let saved = root.join("centre");
    eval(
        root,
        &[
            "--baseline",
            "centre",
            "--every",
            "40",
            "--save-predictions",
            saved.to_str().unwrap(),
        ],
    );
    let m = image::open(saved.join("vidA/00001.png"))
        .unwrap()
        .to_luma8();
    assert_eq!((m.width(), m.height()), (GW, GH));
    assert!(m.get_pixel(60, 36)[0] >= 254 && m.get_pixel(0, 0)[0] < 10);
}

#[test]
fn model_runs_need_the_stavis_layout_and_its_inputs() {
    let ds = dataset();
    let root = ds.path();
    let out = dtfsal(&["eval", "--layout", "dhf1k", "--root"], &[root]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // No annotation/ folder: the layout error comes first; with one, the model error.
    std::fs::create_dir_all(root.join("annotation/v1/maps")).unwrap();
    image::GrayImage::new(8, 8)
        .save(root.join("annotation/v1/maps/0001.png"))
        .unwrap();
    let out = dtfsal(&["eval", "--layout", "dhf1k", "--root"], &[root]);
    assert!(!out.status.success());
    let err2 = String::from_utf8_lossy(&out.stderr);
    assert!(
        err2.contains("running the model needs --layout stavis"),
        "{err}\n{err2}"
    );
    // A video without its WAV: named, its frames skipped, the other video scored.
    std::fs::remove_file(root.join(format!("video_audio/{DB}/vidB/vidB.wav"))).unwrap();
    let w = weights();
    let (json, stderr) = eval(root, &["--weights", w.to_str().unwrap(), "--every", "40"]);
    assert!(stderr.contains("vidB: missing audio"), "{stderr}");
    assert_eq!(json["frames"], 1);
    assert_eq!(json["skipped"], 1);
    // A missing frame inside a clip skips the frames whose clip needs it: frame 1's clip is
    // frames 1..=16 (clamped), frame 21's is 5..=36.
    std::fs::remove_file(root.join(format!("video_frames/{DB}/vidA/img_00003.jpg"))).unwrap();
    let (json, stderr) = eval(root, &["--weights", w.to_str().unwrap(), "--every", "20"]);
    assert!(
        stderr.contains("vidA: frame 1: clip frame 3: cannot open"),
        "{stderr}"
    );
    assert_eq!(json["frames"], 1, "{json}");
    assert_eq!(json["skipped"], 2, "{json}"); // vidA frame 1, vidB frame 1 (no audio)
}

/// A WAV at another rate and channel count goes through GStreamer.
#[test]
fn other_audio_formats_are_converted() {
    let ds = dataset();
    let root = ds.path();
    let (name, frames, fps, _, _) = VIDEOS[1];
    let path = root.join(format!("video_audio/{DB}/{name}/{name}.wav"));
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..frames * 44_100 / fps as usize {
        let s = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 44_100.0).sin();
        w.write_sample((s * 10_000.0) as i16).unwrap();
        w.write_sample((s * 5_000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    let wts = weights();
    let (json, _) = eval(root, &["--weights", wts.to_str().unwrap(), "--every", "20"]);
    assert_eq!(json["frames"], 3, "{json}");
    assert_eq!(json["skipped"], 0);
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DTFSAL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("python/.venv/bin/python"));
    p.is_file().then_some(p)
}

/// The Python trainer's clips: for each item of `StavisClips(stride=8)`, `<vid>_<label>.safetensors`.
const PY_CLIPS: &str = r#"
import sys
from pathlib import Path
from safetensors import safe_open
from safetensors.torch import save_file
from dtfsal.config import DTFSalConfig
from dtfsal.data import StavisClips
root, db, weights, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
with safe_open(weights, "pt") as f:
    cfg = DTFSalConfig.from_json(f.metadata()["config"])
ds = StavisClips(root, db, "test_1", cfg, stride=8)
out.mkdir(parents=True, exist_ok=True)
for i in range(len(ds)):
    v, start = ds.index[i]
    label = min(start + cfg.label_frame, v.frames - 1) + 1
    item = ds[i]
    save_file({"video": item["video"].contiguous(), "audio": item["audio"].contiguous()}, str(out / f"{v.name}_{label:05d}.safetensors"))
    print(v.name, label)
"#;

/// The clip the model gets vs the Python trainer's, on the frames written losslessly (the
/// resize and normalisation: float rounding only) and as JPEG (plus the image crate's JPEG
/// decoder against Pillow's libjpeg-turbo: a few 0-255 levels at most, see the bounds below;
/// the test prints what it measures). The audio differs by float rounding only.
#[test]
fn model_input_matches_the_python_trainer() {
    let Some(py) = python() else {
        eprintln!(
            "SKIPPED model_input_matches_the_python_trainer: no python venv (run scripts/setup.sh)"
        );
        return;
    };
    for lossless in [true, false] {
        let (max, mean, audio) = compare_clips(&py, lossless);
        let what = if lossless {
            "lossless frames"
        } else {
            "JPEG frames"
        };
        eprintln!(
            "clip vs python, {what}: video max |diff| {max:.5} levels (0-255), mean {mean:.5} levels; audio max |diff| {audio:.2e}"
        );
        let (max_bound, mean_bound) = if lossless {
            (1e-3, 1e-4)
        } else {
            (VIDEO_MAX_LEVELS, VIDEO_MEAN_LEVELS)
        };
        assert!(
            max <= max_bound,
            "{what}: video differs by up to {max} levels"
        );
        assert!(
            mean <= mean_bound,
            "{what}: video differs by {mean} levels on average"
        );
        assert!(audio <= 1e-5, "audio differs by up to {audio}");
    }
}

/// Runs both loaders on a fresh dataset: (video max |diff| and mean |diff| in 0-255 levels, audio max |diff|).
fn compare_clips(py: &Path, lossless: bool) -> (f32, f64, f32) {
    let ds = dataset_with(lossless);
    let root = ds.path();
    let w = weights();
    let dump = root.join("rust-clips");
    eval(
        root,
        &[
            "--weights",
            w.to_str().unwrap(),
            "--every",
            "8",
            "--dump-clips",
            dump.to_str().unwrap(),
        ],
    );
    let pydir = root.join("py-clips");
    let out = Command::new(py)
        .arg("-c")
        .arg(PY_CLIPS)
        .arg(root)
        .arg(DB)
        .arg(&w)
        .arg(&pydir)
        .env("PYTHONPATH", repo().join("python"))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items: Vec<(String, usize)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut p = l.split_whitespace();
            (
                p.next().unwrap().to_string(),
                p.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // vidA: clips starting at frames 1 and 9 (labels 17, 25); vidB (20 frames): one clip, its
    // end clamped (label 17). --every 8 scores (and dumps) frames 1, 9, 17, 25, 33.
    assert_eq!(
        items,
        [
            ("vidA".to_string(), 17),
            ("vidA".to_string(), 25),
            ("vidB".to_string(), 17)
        ]
    );
    let std = dtfsal_engine::config::ModelConfig::tiny(dtfsal_engine::config::Variant::AudioVisual)
        .video_std;
    let (mut worst, mut sum, mut count, mut worst_audio) = (0.0f32, 0.0f64, 0usize, 0.0f32);
    for (name, label) in &items {
        let rust = read_tensors(dump.join(name).join(format!("{label:05}.safetensors"))).unwrap();
        let pyt = read_tensors(pydir.join(format!("{name}_{label:05}.safetensors"))).unwrap();
        let (rv, pv) = (&rust["video"], &pyt["video"]);
        assert_eq!(rv.shape(), pv.shape(), "{name} {label}: video shape");
        let [c, t, h, w] = rv.dims4();
        assert_eq!(c, 3);
        let plane = t * h * w;
        for (i, (a, b)) in rv.data().iter().zip(pv.data()).enumerate() {
            let levels = (a - b).abs() * std[i / plane];
            worst = worst.max(levels);
            sum += f64::from(levels);
            count += 1;
        }
        let (ra, pa) = (&rust["audio"], &pyt["audio"]);
        assert_eq!(ra.shape(), pa.shape(), "{name} {label}: audio shape");
        for (a, b) in ra.data().iter().zip(pa.data()) {
            worst_audio = worst_audio.max((a - b).abs());
        }
    }
    (worst, sum / count as f64, worst_audio)
}

/// Bounds of the JPEG decoder difference (0-255 levels), see `model_input_matches_the_python_trainer`.
const VIDEO_MAX_LEVELS: f32 = 6.0;
const VIDEO_MEAN_LEVELS: f64 = 0.1;
