//! `dtfsal eval`: score saliency maps against a dataset's ground truth with the MIT saliency
//! benchmark's metrics (CC, NSS, AUC-Judd, SIM, KLD, shuffled AUC; `dtfsal_engine::metrics`).
//!
//! Layouts (`--layout`):
//! - `stavis` (the STAViS audio-visual release): videos from
//!   `ROOT/fold_lists/<DB>_list_<SPLIT>_fps.txt` (lines `name nframes fps`), frames `1..=nframes`;
//!   GT density `ROOT/annotations/<DB>/<vid>/maps/eyeMap_%05d.jpg`; fixations
//!   `ROOT/annotations/<DB>/<vid>/fixMap_%05d.mat` (MATLAB v5, variable `eyeMap`, dense numeric
//!   or logical; sparse matrices are not read), or `fixMap_%05d.png` (a binary image) when the
//!   `.mat` is absent.
//! - `dhf1k`: every folder of `ROOT/annotation/`, frames = the files of `<vid>/maps/` in name
//!   order (frame number = the digits of the name), fixations = the same name in
//!   `<vid>/fixation/`.
//!
//! Predictions (`--predictions DIR`): `DIR/<vid>/<frame:05d>.png`, 1-based, 8- or 16-bit gray
//! (colour images are converted to gray), scaled to `[0, 1]`. A prediction of another size than
//! the GT is resized to it (MATLAB `imresize` bicubic, clamped to `[0, 1]`): the normal path.
//! Fixations are the pixels `> 0` of the fixation map.
//!
//! Shuffled AUC negatives: the fixated pixels of the same video's other frames (the union of their
//! fixation maps, minus the current frame's map; a pixel fixated in both counts when another frame
//! has it), all of them, once (the deterministic variant of `AUC_shuffled.m`, see
//! `dtfsal_engine::metrics::sauc`).
//!
//! Averaging (`--average`): `video` (default) = the mean over each video's frames, then the mean
//! over videos; `frame` = the mean over all frames. A metric that is NaN on a frame (no fixations:
//! NSS, AUC-Judd, sAUC; a constant prediction: CC, NSS, AUC-Judd, sAUC, SIM) is dropped from
//! that metric's means and counted in the table's `NaN` column.
//!
//! Bad input (a missing or unreadable file, a fixation map of another size than the density): a
//! message on stderr, the frame is skipped and counted in `skipped`; the evaluation goes on.
//!
//! Output: a table on stdout; `--json`: `{cc, nss, auc_j, sim, kld, sauc, frames, videos,
//! skipped}` (a metric with no value is `null`); `--csv`: one row per video (its means).
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use dtfsal_engine::metrics::{Fixations, FrameScores, Map, prepare_prediction, score_frame};
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// STAViS release: fold_lists/, annotations/<DB>/<vid>/{maps/eyeMap_%05d.jpg, fixMap_%05d.mat}.
    Stavis,
    /// DHF1K: annotation/<vid>/{maps,fixation}/*.png.
    Dhf1k,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Average {
    /// Mean over each video's frames, then mean over videos.
    Video,
    /// Mean over all frames of all videos.
    Frame,
}

#[derive(clap::Args)]
pub struct Args {
    /// Dataset layout.
    #[arg(long, value_enum)]
    pub layout: Layout,
    /// Dataset root.
    #[arg(long)]
    pub root: PathBuf,
    /// Database name (stavis layout), e.g. AVAD, Coutrot_db1, DIEM, ETMD_av, SumMe.
    #[arg(long)]
    pub db: Option<String>,
    /// Fold list (stavis layout): fold_lists/<DB>_list_<SPLIT>_fps.txt.
    #[arg(long, default_value = "test_1")]
    pub split: String,
    /// Precomputed maps: DIR/<video>/<frame:05d>.png (1-based, 8- or 16-bit gray).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Averaging protocol.
    #[arg(long, value_enum, default_value = "video")]
    pub average: Average,
    /// Write the summary as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write per-video means as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Messages printed for one video before the rest are only counted.
const MAX_MESSAGES_PER_VIDEO: usize = 10;

/// One GT frame: where its files are.
struct FrameSpec {
    number: usize,
    density: PathBuf,
    /// Candidates, first existing one wins.
    fixations: Vec<PathBuf>,
}

struct VideoSpec {
    name: String,
    frames: Vec<FrameSpec>,
}

/// What one video gave.
struct VideoResult {
    name: String,
    scores: Vec<FrameScores>,
    skipped: usize,
    no_fixations: usize,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Some(pred_dir) = a.predictions.clone() else {
        bail!(
            "not implemented yet: pass --predictions DIR (running the model from `dtfsal eval` \
             is not implemented yet; score maps written by another tool)"
        );
    };
    if !pred_dir.is_dir() {
        bail!("--predictions {}: not a directory", pred_dir.display());
    }
    let videos = match a.layout {
        Layout::Stavis => stavis_videos(&a)?,
        Layout::Dhf1k => dhf1k_videos(&a.root)?,
    };
    if videos.is_empty() {
        bail!("no video to evaluate under {}", a.root.display());
    }
    let results: Vec<VideoResult> = videos.iter().map(|v| eval_video(v, &pred_dir)).collect();

    let summary = Summary::new(&results, a.average);
    summary.print(a.average);
    if let Some(p) = &a.json {
        let mut o = serde_json::Map::new();
        for (k, v) in FrameScores::NAMES.iter().zip(summary.means) {
            o.insert((*k).into(), Value::from(v));
        }
        o.insert("frames".into(), json!(summary.frames));
        o.insert("videos".into(), json!(summary.videos));
        o.insert("skipped".into(), json!(summary.skipped));
        std::fs::write(p, serde_json::to_string_pretty(&Value::Object(o))? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.csv {
        write_csv(p, &results).with_context(|| format!("writing {}", p.display()))?;
    }
    if summary.frames == 0 {
        bail!("no frame could be scored ({} skipped)", summary.skipped);
    }
    Ok(())
}

fn stavis_videos(a: &Args) -> anyhow::Result<Vec<VideoSpec>> {
    let db =
        a.db.as_deref()
            .ok_or_else(|| anyhow!("--layout stavis needs --db"))?;
    let list = a
        .root
        .join("fold_lists")
        .join(format!("{db}_list_{}_fps.txt", a.split));
    let text = std::fs::read_to_string(&list)
        .with_context(|| format!("reading the fold list {}", list.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let n: usize = match f.get(1).map(|s| s.parse()) {
            Some(Ok(n)) => n,
            _ => {
                eprintln!(
                    "{}:{}: expected \"name nframes fps\", got {line:?}; line skipped",
                    list.display(),
                    i + 1
                );
                continue;
            }
        };
        let vdir = a.root.join("annotations").join(db).join(f[0]);
        let frames = (1..=n)
            .map(|k| FrameSpec {
                number: k,
                density: vdir.join("maps").join(format!("eyeMap_{k:05}.jpg")),
                fixations: vec![
                    vdir.join(format!("fixMap_{k:05}.mat")),
                    vdir.join(format!("fixMap_{k:05}.png")),
                ],
            })
            .collect();
        out.push(VideoSpec {
            name: f[0].to_string(),
            frames,
        });
    }
    Ok(out)
}

fn dhf1k_videos(root: &Path) -> anyhow::Result<Vec<VideoSpec>> {
    let ann = root.join("annotation");
    let mut names: Vec<String> = std::fs::read_dir(&ann)
        .with_context(|| format!("listing {}", ann.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let vdir = ann.join(&name);
        let mut files: Vec<String> = match std::fs::read_dir(vdir.join("maps")) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                eprintln!(
                    "{name}: cannot list {}: {e}; video skipped",
                    vdir.join("maps").display()
                );
                continue;
            }
        };
        files.sort();
        let frames = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let digits: String = f.chars().filter(|c| c.is_ascii_digit()).collect();
                FrameSpec {
                    number: digits.parse().unwrap_or(i + 1),
                    density: vdir.join("maps").join(f),
                    fixations: vec![vdir.join("fixation").join(f)],
                }
            })
            .collect();
        out.push(VideoSpec { name, frames });
    }
    Ok(out)
}

/// A gray image scaled to `[0, 1]` (16-bit images by 65535, others by 255).
pub fn read_gray(path: &Path) -> anyhow::Result<Map> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode {}", path.display()))?;
    use image::DynamicImage as D;
    let wide = matches!(
        img,
        D::ImageLuma16(_) | D::ImageLumaA16(_) | D::ImageRgb16(_) | D::ImageRgba16(_)
    );
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<f64> = if wide {
        img.to_luma16()
            .into_raw()
            .into_iter()
            .map(|v| v as f64 / 65535.0)
            .collect()
    } else {
        img.to_luma8()
            .into_raw()
            .into_iter()
            .map(|v| v as f64 / 255.0)
            .collect()
    };
    Ok(Map::new(w, h, data))
}

/// The `eyeMap` matrix of a MATLAB v5 .mat file, as a row-major map.
pub fn read_mat_fixations(path: &Path) -> anyhow::Result<Map> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mat = matfile::MatFile::parse(std::io::BufReader::new(f)).map_err(|e| {
        anyhow!(
            "cannot parse {} as a MATLAB v5 .mat file: {e:?}",
            path.display()
        )
    })?;
    let arr = mat.find_by_name("eyeMap").ok_or_else(|| {
        anyhow!(
            "{}: no dense numeric variable `eyeMap` (found: {:?}; sparse matrices are not read)",
            path.display(),
            mat.arrays().iter().map(|a| a.name()).collect::<Vec<_>>()
        )
    })?;
    let size = arr.size();
    if size.len() != 2 {
        bail!(
            "{}: `eyeMap` has shape {size:?}, expected a 2-D matrix",
            path.display()
        );
    }
    let (rows, cols) = (size[0], size[1]);
    use matfile::NumericData as N;
    let col_major: Vec<f64> = match arr.data() {
        N::Double { real, .. } => real.clone(),
        N::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::UInt8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::Int8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::UInt16 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::Int16 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::UInt32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::Int32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::UInt64 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        N::Int64 { real, .. } => real.iter().map(|&v| v as f64).collect(),
    };
    if col_major.len() != rows * cols {
        bail!(
            "{}: `eyeMap` holds {} values for {rows}x{cols}",
            path.display(),
            col_major.len()
        );
    }
    let mut data = vec![0.0; rows * cols];
    for c in 0..cols {
        for r in 0..rows {
            data[r * cols + c] = col_major[c * rows + r];
        }
    }
    Ok(Map::new(cols, rows, data))
}

fn read_fixations(candidates: &[PathBuf]) -> anyhow::Result<Fixations> {
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        let names: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        bail!("missing fixation map ({})", names.join(" or "));
    };
    let map = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mat"))
    {
        read_mat_fixations(path)?
    } else {
        read_gray(path)?
    };
    Ok(Fixations::from_map(&map))
}

/// Collects a video's messages, printing the first few.
struct Messages<'a> {
    video: &'a str,
    n: usize,
}

impl Messages<'_> {
    fn say(&mut self, msg: impl std::fmt::Display) {
        if self.n < MAX_MESSAGES_PER_VIDEO {
            eprintln!("{}: {msg}", self.video);
        }
        self.n += 1;
    }

    fn finish(&self) {
        if self.n > MAX_MESSAGES_PER_VIDEO {
            eprintln!(
                "{}: ... and {} more messages",
                self.video,
                self.n - MAX_MESSAGES_PER_VIDEO
            );
        }
    }
}

fn eval_video(v: &VideoSpec, pred_dir: &Path) -> VideoResult {
    let mut msg = Messages {
        video: &v.name,
        n: 0,
    };
    let mut res = VideoResult {
        name: v.name.clone(),
        scores: Vec::new(),
        skipped: 0,
        no_fixations: 0,
    };
    let vpred = pred_dir.join(&v.name);
    if !vpred.is_dir() {
        msg.say(format!(
            "no prediction folder {}; its {} frames skipped",
            vpred.display(),
            v.frames.len()
        ));
        res.skipped = v.frames.len();
        msg.finish();
        return res;
    }
    // Pass 1: every frame's fixations (sparse), for the shuffled AUC's negatives.
    let fixations: Vec<anyhow::Result<Fixations>> = v
        .frames
        .par_iter()
        .map(|f| read_fixations(&f.fixations))
        .collect();
    let size = fixations
        .iter()
        .find_map(|f| f.as_ref().ok().map(|f| (f.width, f.height)));
    let mut count = vec![0u32; size.map_or(0, |(w, h)| w * h)];
    for f in fixations.iter().flatten() {
        if Some((f.width, f.height)) == size {
            for &i in &f.idx {
                count[i] += 1;
            }
        }
    }
    let fixated: Vec<usize> = (0..count.len()).filter(|&i| count[i] > 0).collect();

    // Pass 2: score every frame.
    let outcomes: Vec<Result<FrameScores, String>> = v
        .frames
        .par_iter()
        .zip(&fixations)
        .map(|(f, fix)| {
            let fix = fix
                .as_ref()
                .map_err(|e| format!("frame {}: {e:#}; skipped", f.number))?;
            let density =
                read_gray(&f.density).map_err(|e| format!("frame {}: {e:#}; skipped", f.number))?;
            if (fix.width, fix.height) != (density.width, density.height) {
                return Err(format!(
                    "frame {}: fixation map {}x{} but density map {}x{}; skipped",
                    f.number, fix.width, fix.height, density.width, density.height
                ));
            }
            let ppath = vpred.join(format!("{:05}.png", f.number));
            if !ppath.is_file() {
                return Err(format!(
                    "frame {}: missing prediction {}; skipped",
                    f.number,
                    ppath.display()
                ));
            }
            let pred =
                read_gray(&ppath).map_err(|e| format!("frame {}: {e:#}; skipped", f.number))?;
            let pred = prepare_prediction(&pred, density.width, density.height, 0.0, 1.0);
            let other = if Some((fix.width, fix.height)) == size {
                let own: std::collections::HashSet<usize> = fix.idx.iter().copied().collect();
                let idx = fixated
                    .iter()
                    .copied()
                    .filter(|&i| count[i] > u32::from(own.contains(&i)))
                    .collect();
                Fixations {
                    width: fix.width,
                    height: fix.height,
                    idx,
                }
            } else {
                Fixations {
                    width: fix.width,
                    height: fix.height,
                    idx: Vec::new(),
                }
            };
            Ok(score_frame(&pred, &density, fix, &other))
        })
        .collect();
    for (o, fix) in outcomes.into_iter().zip(&fixations) {
        match o {
            Ok(s) => {
                if fix.as_ref().is_ok_and(|x| x.is_empty()) {
                    res.no_fixations += 1;
                }
                res.scores.push(s);
            }
            Err(e) => {
                msg.say(e);
                res.skipped += 1;
            }
        }
    }
    if res.no_fixations > 0 {
        msg.say(format!(
            "{} frames without fixations (NSS, AUC-Judd and sAUC dropped there)",
            res.no_fixations
        ));
    }
    msg.finish();
    res
}

/// Mean of the non-NaN values (NaN when none).
fn nan_mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v
        .filter(|x| !x.is_nan())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn video_means(r: &VideoResult) -> [f64; 6] {
    std::array::from_fn(|k| nan_mean(r.scores.iter().map(|s| s.as_array()[k])))
}

struct Summary {
    means: [f64; 6],
    nan: [usize; 6],
    frames: usize,
    videos: usize,
    skipped: usize,
    no_fixations: usize,
}

impl Summary {
    fn new(results: &[VideoResult], avg: Average) -> Self {
        let scored: Vec<&VideoResult> = results.iter().filter(|r| !r.scores.is_empty()).collect();
        let means = match avg {
            Average::Video => {
                let vm: Vec<[f64; 6]> = scored.iter().map(|r| video_means(r)).collect();
                std::array::from_fn(|k| nan_mean(vm.iter().map(|m| m[k])))
            }
            Average::Frame => std::array::from_fn(|k| {
                nan_mean(
                    scored
                        .iter()
                        .flat_map(|r| r.scores.iter().map(move |s| s.as_array()[k])),
                )
            }),
        };
        let nan = std::array::from_fn(|k| {
            scored
                .iter()
                .flat_map(|r| &r.scores)
                .filter(|s| s.as_array()[k].is_nan())
                .count()
        });
        Self {
            means,
            nan,
            frames: scored.iter().map(|r| r.scores.len()).sum(),
            videos: scored.len(),
            skipped: results.iter().map(|r| r.skipped).sum(),
            no_fixations: results.iter().map(|r| r.no_fixations).sum(),
        }
    }

    fn print(&self, avg: Average) {
        let labels = ["CC", "NSS", "AUC-Judd", "SIM", "KLD", "sAUC"];
        println!("{:<10} {:>10} {:>8}", "metric", "value", "NaN");
        for k in 0..6 {
            println!(
                "{:<10} {:>10} {:>8}",
                labels[k],
                fmt(self.means[k]),
                self.nan[k]
            );
        }
        println!(
            "frames {} in {} videos; skipped {}; frames without fixations {}",
            self.frames, self.videos, self.skipped, self.no_fixations
        );
        println!(
            "averaging: {}; NaN values are dropped from the means",
            match avg {
                Average::Video => "per frame, then mean per video, then mean over videos",
                Average::Frame => "mean over all frames",
            }
        );
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.4}")
    }
}

fn write_csv(path: &Path, results: &[VideoResult]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "video,frames,skipped,cc,nss,auc_j,sim,kld,sauc")?;
    for r in results {
        let m = video_means(r);
        let vals: Vec<String> = m
            .iter()
            .map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v:.6}")
                }
            })
            .collect();
        writeln!(
            f,
            "{},{},{},{}",
            r.name,
            r.scores.len(),
            r.skipped,
            vals.join(",")
        )?;
    }
    f.flush()
}
