//! `dtfsal eval`: score saliency maps against a dataset's ground truth with the MIT saliency
//! benchmark's metrics (CC, NSS, AUC-Judd, SIM, KLD, shuffled AUC; `dtfsal_engine::metrics`).
//! The maps come from a folder (`--predictions`), from the model run here (the default), or
//! from a centre-bias baseline (`--baseline centre`).
//!
//! Layouts (`--layout`):
//! - `stavis` (the STAViS audio-visual release): videos from
//!   `ROOT/fold_lists/<DB>_list_<SPLIT>_fps.txt` (lines `name nframes fps`), frames `1..=nframes`;
//!   GT density `ROOT/annotations/<DB>/<vid>/maps/eyeMap_%05d.jpg`; fixations
//!   `ROOT/annotations/<DB>/<vid>/fixMap_%05d.mat` (MATLAB v5, variable `eyeMap`, dense numeric
//!   or logical; sparse matrices are not read), or `fixMap_%05d.png` (a binary image) when the
//!   `.mat` is absent. Model runs also read the frames `ROOT/video_frames/<DB>/<vid>/img_%05d.jpg`
//!   and, for audio-visual models, the audio `ROOT/video_audio/<DB>/<vid>/<vid>.wav`.
//! - `dhf1k`: every folder of `ROOT/annotation/`, frames = the files of `<vid>/maps/` in name
//!   order (frame number = the digits of the name), fixations = the same name in
//!   `<vid>/fixation/`. DHF1K ships its frames as videos, not images: the model cannot run on
//!   this layout here (an error says so); score maps written by `dtfsal predict` with
//!   `--predictions`, or the centre baseline.
//!
//! Frames scored (`--every N`): frames `1, 1+N, 1+2N, ...` of each video (default every frame),
//! in every mode. The other frames still provide the shuffled AUC's negatives.
//!
//! Where the maps come from:
//! - `--predictions DIR`: `DIR/<vid>/<frame:05d>.png`, 1-based, 8- or 16-bit gray (colour
//!   images are converted to gray), scaled to `[0, 1]`. A prediction of another size than the GT
//!   is resized to it (MATLAB `imresize` bicubic, clamped to `[0, 1]`): the normal path.
//! - the model (no `--predictions`, no `--baseline`; stavis layout): `--weights W.safetensors`,
//!   default the embedded demo model (as `dtfsal predict`); `--threads` engine threads. Frame `n`
//!   is the labelled frame of the clip the Python trainer builds (`dtfsal.data.StavisClips`):
//!   the model's `clip_len` frames `n - label_frame ..= n - label_frame + clip_len - 1`, clamped
//!   to `1..=nframes` (the first and last frames repeat at the ends); each frame decoded to RGB
//!   0-255, resized bilinearly to the model's size (`align_corners=False`, no antialias: the
//!   engine's `ops::resize`) and normalised with the config's `video_mean` / `video_std`.
//!   Audio-visual models also get the audio of the clip: the WAV as 16 kHz mono (other rates or
//!   channel counts are converted by GStreamer, `wavparse ! audioconvert ! audioresample`; the
//!   trainer uses scipy's `resample_poly` there, so only 16 kHz mono files give identical input),
//!   through the engine's audio front end (`clip_audio_from_wave`, as `dtfsal mel`) for the
//!   window centred at `(n - 1) / fps` (fps from the fold list). The model runs one clip at a
//!   time (it is multithreaded itself), with a progress bar on stderr; the map is resized to
//!   the GT size as predictions are (bicubic, clamped) and quantised to 8 bits
//!   (`round(255 m) / 255`): what is scored is exactly what `--save-predictions` writes, so a
//!   later `--predictions` run on that folder gives the same numbers.
//! - `--baseline centre`: a centred Gaussian at the GT size, `exp(-((x-cx)^2 / (2 sx^2) +
//!   (y-cy)^2 / (2 sy^2)))` with `cx = (W-1)/2`, `cy = (H-1)/2`, `sx = W/4`, `sy = H/4` in GT
//!   pixels, quantised to 8 bits like the model's maps: the centre-bias reference a model should
//!   beat (any layout).
//!
//! `--save-predictions DIR` (model or baseline): writes the scored maps as
//! `DIR/<vid>/<frame:05d>.png`, 8-bit gray at the GT size, the layout `--predictions` reads.
//!
//! Fixations are the pixels `> 0` of the fixation map.
//!
//! Shuffled AUC (`--sauc`): the negatives are the fixated pixels of the same video's other
//! frames (the union of their fixation maps, minus the current frame's map; a pixel fixated in
//! both counts when another frame has it), all frames of the video, scored or not.
//! - `all` (default): every negative once, one ROC (the deterministic variant of
//!   `AUC_shuffled.m`, `dtfsal_engine::metrics::sauc`).
//! - `random`: MIT's `AUC_shuffled.m` as written: 100 splits, each with `min(Nfix, Nother)`
//!   negatives drawn at random, the mean of the split AUCs (`metrics::sauc_random`). The RNG of
//!   each frame is ChaCha8 seeded from `--seed` (default 0), the video name and the frame number,
//!   so a result does not depend on the thread count, `--every` or the other videos. It is an
//!   unbiased estimate of `all` with a sampling noise of about 0.005 per frame (less over a
//!   dataset); `all` has none.
//!
//! Averaging (`--average`): `video` (default) = the mean over each video's frames, then the mean
//! over videos; `frame` = the mean over all frames. A metric that is NaN on a frame (no fixations:
//! NSS, AUC-Judd, sAUC; a constant prediction: CC, NSS, AUC-Judd, sAUC, SIM) is dropped from
//! that metric's means and counted in the table's `NaN` column.
//!
//! Bad input (a missing or unreadable file, a fixation map of another size than the density, a
//! missing frame of a clip; a missing or unreadable WAV or fps skips the video's frames): a
//! message on stderr, the frame is skipped and counted in `skipped`; the evaluation goes on.
//!
//! Output: a table on stdout; `--json`: `{cc, nss, auc_j, sim, kld, sauc, frames, videos,
//! skipped}` (a metric with no value is `null`); `--csv`: one row per video (its means);
//! `--figure OUT.png`: the metrics as labelled bars and up to three example frames (the frame,
//! the GT density, the prediction over the frame), see `eval_figure`.
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use dtfsal_engine::metrics::{
    Fixations, FrameScores, Map, SAUC_SPLITS, SaucVariant, prepare_prediction, score_frame_with,
};
use dtfsal_engine::model::{Backend, Clip, Model, SaliencyMap};
use dtfsal_engine::tensor::Tensor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::eval_figure::{Example, Figure};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// A centred Gaussian, sigma = W/4 horizontally and H/4 vertically (GT pixels).
    Centre,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaucArg {
    /// Every negative location once (deterministic).
    All,
    /// MIT's AUC_shuffled.m: 100 random splits of min(Nfix, Nother) negatives (--seed).
    Random,
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
    /// Precomputed maps: DIR/<video>/<frame:05d>.png (1-based, 8- or 16-bit gray). Without it
    /// (and without --baseline) the model runs.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Score a baseline instead of a model: `centre` (a centred Gaussian, sigma W/4 x H/4).
    #[arg(long, value_enum, conflicts_with = "predictions")]
    pub baseline: Option<Baseline>,
    /// Model weight file (default: the embedded demo model, as `dtfsal predict`).
    #[arg(long, conflicts_with_all = ["predictions", "baseline"])]
    pub weights: Option<PathBuf>,
    /// Engine threads for the model (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Score frames 1, 1+N, 1+2N, ... of each video only.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
    /// Write the scored maps (model or baseline) as DIR/<video>/<frame:05d>.png, 8-bit, GT size.
    #[arg(long, value_name = "DIR", conflicts_with = "predictions")]
    pub save_predictions: Option<PathBuf>,
    /// Shuffled AUC: `all` negatives once (deterministic), or MIT's `random` splits.
    #[arg(long, value_enum, default_value = "all")]
    pub sauc: SaucArg,
    /// Seed of the random shuffled AUC (--sauc random).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Averaging protocol.
    #[arg(long, value_enum, default_value = "video")]
    pub average: Average,
    /// Write the summary as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write per-video means as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write a PNG figure: the metrics as bars and a few example frames.
    #[arg(long, value_name = "OUT.png")]
    pub figure: Option<PathBuf>,
    /// Testing aid: write each model input as DIR/<video>/<frame:05d>.safetensors (`video`
    /// [3,T,H,W], `audio` [9,1,112,192]).
    #[arg(long, hide = true, value_name = "DIR")]
    pub dump_clips: Option<PathBuf>,
}

/// Messages printed for one video before the rest are only counted.
const MAX_MESSAGES_PER_VIDEO: usize = 10;
/// Model outputs computed before they are scored together (bounds the maps held in memory).
const MODEL_CHUNK: usize = 8;
/// Example frames on the figure.
const FIGURE_EXAMPLES: usize = 3;

/// One GT frame: where its files are.
struct FrameSpec {
    number: usize,
    density: PathBuf,
    /// Candidates, first existing one wins.
    fixations: Vec<PathBuf>,
}

struct VideoSpec {
    name: String,
    /// Frame rate from the fold list (stavis layout).
    fps: Option<f64>,
    frames: Vec<FrameSpec>,
}

/// What one video gave.
struct VideoResult {
    name: String,
    scores: Vec<FrameScores>,
    skipped: usize,
    no_fixations: usize,
    examples: Vec<Example>,
}

/// The model and where its inputs are.
struct ModelRun {
    model: Model,
    frames_dir: PathBuf,
    audio_dir: PathBuf,
    dump: Option<PathBuf>,
}

/// Where the maps come from.
enum Source {
    Dir(PathBuf),
    Centre,
    Model(Box<ModelRun>),
}

/// Everything `eval_video` needs besides the video.
struct Ctx {
    source: Source,
    every: usize,
    save: Option<PathBuf>,
    sauc: SaucArg,
    seed: u64,
    /// (video index, frame number) of the figure's examples.
    examples: Vec<(usize, usize)>,
    /// Where example frames are read (stavis layout).
    frames_dir: Option<PathBuf>,
    bar: Option<ProgressBar>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(p) = &a.predictions
        && !p.is_dir()
    {
        bail!("--predictions {}: not a directory", p.display());
    }
    let videos = match a.layout {
        Layout::Stavis => stavis_videos(&a)?,
        Layout::Dhf1k => dhf1k_videos(&a.root)?,
    };
    if videos.is_empty() {
        bail!("no video to evaluate under {}", a.root.display());
    }
    let every = usize::try_from(a.every).unwrap_or(usize::MAX);
    let stavis_dir = |sub: &str| a.db.as_ref().map(|db| a.root.join(sub).join(db));
    let (source, what) = match (&a.predictions, a.baseline) {
        (Some(dir), _) => (
            Source::Dir(dir.clone()),
            format!("predictions {}", dir.display()),
        ),
        (None, Some(Baseline::Centre)) => (Source::Centre, "centre baseline".to_string()),
        (None, None) => {
            if a.layout != Layout::Stavis {
                bail!(
                    "running the model needs --layout stavis (frames from video_frames/, audio from \
                     video_audio/); DHF1K ships videos, not frames: write maps with `dtfsal predict` \
                     and pass --predictions DIR, or use --baseline centre"
                );
            }
            let model = match &a.weights {
                Some(w) => {
                    if !w.is_file() {
                        bail!("weight file not found: {}", w.display());
                    }
                    Model::load_with_threads(w, Backend::Cpu, a.threads)
                        .with_context(|| format!("loading {}", w.display()))?
                }
                None => Model::load_default(Backend::Cpu, a.threads)
                    .context("loading the default model")?,
            };
            let what = match &a.weights {
                Some(w) => format!("model {}", w.display()),
                None => format!("model {}", dtfsal_engine::default_model::NAME),
            };
            let run = ModelRun {
                model,
                frames_dir: stavis_dir("video_frames").expect("stavis layout has --db"),
                audio_dir: stavis_dir("video_audio").expect("stavis layout has --db"),
                dump: a.dump_clips.clone(),
            };
            (Source::Model(Box::new(run)), what)
        }
    };
    if a.dump_clips.is_some() && !matches!(source, Source::Model(_)) {
        bail!("--dump-clips needs a model run (no --predictions, no --baseline)");
    }
    let scored: Vec<Vec<usize>> = videos
        .iter()
        .map(|v| {
            v.frames
                .iter()
                .filter(|f| is_scored(f.number, every))
                .map(|f| f.number)
                .collect()
        })
        .collect();
    let total: usize = scored.iter().map(Vec::len).sum();
    let bar = matches!(source, Source::Model(_)).then(|| {
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            if std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{wide_bar} {pos}/{len} frames {msg} ETA {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar
    });
    let ctx = Ctx {
        source,
        every,
        save: a.save_predictions.clone(),
        sauc: a.sauc,
        seed: a.seed,
        examples: if a.figure.is_some() {
            pick_examples(&scored, FIGURE_EXAMPLES)
        } else {
            Vec::new()
        },
        frames_dir: (a.layout == Layout::Stavis)
            .then(|| stavis_dir("video_frames"))
            .flatten(),
        bar,
    };
    if let Some(dir) = &ctx.save {
        for v in &videos {
            let d = dir.join(&v.name);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
    }
    let mut results: Vec<VideoResult> = Vec::with_capacity(videos.len());
    for (vi, v) in videos.iter().enumerate() {
        results.push(eval_video(&ctx, vi, v));
    }
    if let Some(b) = &ctx.bar {
        b.finish_and_clear();
    }

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
    if let Some(p) = &a.figure {
        let examples: Vec<Example> = results
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.examples))
            .collect();
        let figure = Figure {
            title: format!("dtfsal eval: {what}"),
            subtitle: format!(
                "{}: {} frames of {} video{}{}; sAUC {}; averaging {}",
                match a.layout {
                    Layout::Stavis =>
                        format!("STAViS {} {}", a.db.as_deref().unwrap_or(""), a.split),
                    Layout::Dhf1k => "DHF1K".to_string(),
                },
                summary.frames,
                summary.videos,
                if summary.videos == 1 { "" } else { "s" },
                if every > 1 {
                    format!(" (every {every})")
                } else {
                    String::new()
                },
                match a.sauc {
                    SaucArg::All => "all negatives".to_string(),
                    SaucArg::Random => format!("random (seed {})", a.seed),
                },
                match a.average {
                    Average::Video => "per video",
                    Average::Frame => "per frame",
                },
            ),
            means: summary.means,
            examples,
        };
        figure
            .write(p)
            .with_context(|| format!("writing the figure {}", p.display()))?;
        eprintln!("wrote the figure {}", p.display());
    }
    if summary.frames == 0 {
        bail!("no frame could be scored ({} skipped)", summary.skipped);
    }
    Ok(())
}

/// Frame `n` (1-based) is scored with `--every N` when `(n - 1) % N == 0`.
fn is_scored(number: usize, every: usize) -> bool {
    number.saturating_sub(1).is_multiple_of(every)
}

/// Up to `k` (video, frame) pairs spread evenly over all scored frames.
fn pick_examples(scored: &[Vec<usize>], k: usize) -> Vec<(usize, usize)> {
    let all: Vec<(usize, usize)> = scored
        .iter()
        .enumerate()
        .flat_map(|(vi, f)| f.iter().map(move |&n| (vi, n)))
        .collect();
    let k = k.min(all.len());
    let mut out: Vec<(usize, usize)> = (0..k)
        .map(|i| all[(2 * i + 1) * all.len() / (2 * k)])
        .collect();
    out.dedup();
    out
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
            fps: f.get(2).and_then(|s| s.parse().ok()),
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
        out.push(VideoSpec {
            name,
            fps: None,
            frames,
        });
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

/// Collects a video's messages, printing the first few (above the progress bar, if any).
struct Messages<'a> {
    video: &'a str,
    n: usize,
    bar: Option<&'a ProgressBar>,
}

impl Messages<'_> {
    fn say(&mut self, msg: impl std::fmt::Display) {
        if self.n < MAX_MESSAGES_PER_VIDEO {
            let line = format!("{}: {msg}", self.video);
            match self.bar {
                Some(b) => b.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
        self.n += 1;
    }

    fn finish(&mut self) {
        if self.n > MAX_MESSAGES_PER_VIDEO {
            let extra = self.n - MAX_MESSAGES_PER_VIDEO;
            self.n = 0;
            self.say(format!("... and {extra} more messages"));
        }
    }
}

/// The shuffled AUC's negatives of every frame of a video: how many frames fixate each pixel.
struct Negatives {
    size: Option<(usize, usize)>,
    count: Vec<u32>,
    fixated: Vec<usize>,
}

impl Negatives {
    fn new(fixations: &[anyhow::Result<Fixations>]) -> Self {
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
        let fixated = (0..count.len()).filter(|&i| count[i] > 0).collect();
        Self {
            size,
            count,
            fixated,
        }
    }

    /// The pixels fixated in another frame than the one with fixations `fix`.
    fn other_than(&self, fix: &Fixations) -> Fixations {
        let idx = if Some((fix.width, fix.height)) == self.size {
            let own: std::collections::HashSet<usize> = fix.idx.iter().copied().collect();
            self.fixated
                .iter()
                .copied()
                .filter(|&i| self.count[i] > u32::from(own.contains(&i)))
                .collect()
        } else {
            Vec::new()
        };
        Fixations {
            width: fix.width,
            height: fix.height,
            idx,
        }
    }
}

fn eval_video(ctx: &Ctx, vi: usize, v: &VideoSpec) -> VideoResult {
    let mut msg = Messages {
        video: &v.name,
        n: 0,
        bar: ctx.bar.as_ref(),
    };
    let mut res = VideoResult {
        name: v.name.clone(),
        scores: Vec::new(),
        skipped: 0,
        no_fixations: 0,
        examples: Vec::new(),
    };
    let scored: Vec<usize> = (0..v.frames.len())
        .filter(|&i| is_scored(v.frames[i].number, ctx.every))
        .collect();
    let skip_all = |res: &mut VideoResult, msg: &mut Messages, why: String| {
        msg.say(format!("{why}; its {} frames skipped", scored.len()));
        res.skipped = scored.len();
        if let Some(b) = &ctx.bar {
            b.inc(scored.len() as u64);
        }
        msg.finish();
    };
    if let Source::Dir(dir) = &ctx.source
        && !dir.join(&v.name).is_dir()
    {
        skip_all(
            &mut res,
            &mut msg,
            format!("no prediction folder {}", dir.join(&v.name).display()),
        );
        return res;
    }
    let mut inputs = match &ctx.source {
        Source::Model(run) => match VideoInputs::open(run, v) {
            Ok(i) => Some(i),
            Err(e) => {
                skip_all(&mut res, &mut msg, format!("{e:#}"));
                return res;
            }
        },
        _ => None,
    };
    // Pass 1: every frame's fixations (sparse), for the shuffled AUC's negatives.
    let fixations: Vec<anyhow::Result<Fixations>> = v
        .frames
        .par_iter()
        .map(|f| read_fixations(&f.fixations))
        .collect();
    let negatives = Negatives::new(&fixations);

    // Pass 2: the scored frames, a chunk of model outputs at a time (all at once without a model).
    let chunk = if inputs.is_some() {
        MODEL_CHUNK
    } else {
        scored.len().max(1)
    };
    for part in scored.chunks(chunk) {
        let outputs: Vec<Option<Result<SaliencyMap, String>>> = match inputs.as_mut() {
            Some(inp) => part
                .iter()
                .map(|&i| {
                    let out = inp.predict(v.frames[i].number);
                    if let Some(b) = &ctx.bar {
                        b.inc(1);
                    }
                    Some(out)
                })
                .collect(),
            None => part.iter().map(|_| None).collect(),
        };
        let outcomes: Vec<Result<(FrameScores, Option<Example>), String>> = part
            .par_iter()
            .zip(outputs)
            .map(|(&i, out)| {
                let f = &v.frames[i];
                score_one(ctx, vi, v, f, &fixations[i], &negatives, out)
                    .map_err(|e| format!("frame {}: {e}; skipped", f.number))
            })
            .collect();
        for (o, &i) in outcomes.into_iter().zip(part) {
            match o {
                Ok((s, ex)) => {
                    if fixations[i].as_ref().is_ok_and(|x| x.is_empty()) {
                        res.no_fixations += 1;
                    }
                    res.scores.push(s);
                    res.examples.extend(ex);
                }
                Err(e) => {
                    msg.say(e);
                    res.skipped += 1;
                }
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

/// Scores one frame: its prediction (read, model output or baseline) against its GT.
fn score_one(
    ctx: &Ctx,
    vi: usize,
    v: &VideoSpec,
    f: &FrameSpec,
    fix: &anyhow::Result<Fixations>,
    negatives: &Negatives,
    model_out: Option<Result<SaliencyMap, String>>,
) -> Result<(FrameScores, Option<Example>), String> {
    let fix = fix.as_ref().map_err(|e| format!("{e:#}"))?;
    let density = read_gray(&f.density).map_err(|e| format!("{e:#}"))?;
    if (fix.width, fix.height) != (density.width, density.height) {
        return Err(format!(
            "fixation map {}x{} but density map {}x{}",
            fix.width, fix.height, density.width, density.height
        ));
    }
    let (w, h) = (density.width, density.height);
    let pred = match &ctx.source {
        Source::Dir(dir) => {
            let ppath = dir.join(&v.name).join(format!("{:05}.png", f.number));
            if !ppath.is_file() {
                return Err(format!("missing prediction {}", ppath.display()));
            }
            let pred = read_gray(&ppath).map_err(|e| format!("{e:#}"))?;
            prepare_prediction(&pred, w, h, 0.0, 1.0)
        }
        Source::Centre => quantise(centre_gaussian(w, h)),
        Source::Model(_) => {
            let m = model_out.ok_or("no model output")??;
            let map = Map::new(
                m.width,
                m.height,
                m.data.iter().map(|&x| f64::from(x)).collect(),
            );
            quantise(prepare_prediction(&map, w, h, 0.0, 1.0))
        }
    };
    if let Some(dir) = &ctx.save {
        let path = dir.join(&v.name).join(format!("{:05}.png", f.number));
        write_png8(&path, &pred).map_err(|e| format!("{e:#}"))?;
    }
    let variant = match ctx.sauc {
        SaucArg::All => SaucVariant::All,
        SaucArg::Random => SaucVariant::Random {
            splits: SAUC_SPLITS,
            seed: frame_seed(ctx.seed, &v.name, f.number),
        },
    };
    let scores = score_frame_with(&pred, &density, fix, &negatives.other_than(fix), variant);
    let example = ctx.examples.contains(&(vi, f.number)).then(|| Example {
        video: v.name.clone(),
        frame: f.number,
        image: ctx.frames_dir.as_ref().and_then(|d| {
            let p = d.join(&v.name).join(format!("img_{:05}.jpg", f.number));
            image::open(p).ok().map(|i| i.to_rgb8())
        }),
        density,
        pred,
        scores,
    });
    Ok((scores, example))
}

/// The map as an 8-bit image stores it: `round(255 v) / 255` (v clamped to `[0, 1]`), the same
/// values `read_gray` gives back for the PNG.
fn quantise(mut m: Map) -> Map {
    for v in &mut m.data {
        *v = f64::from(to_u8(*v)) / 255.0;
    }
    m
}

fn to_u8(v: f64) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn write_png8(path: &Path, m: &Map) -> anyhow::Result<()> {
    let px: Vec<u8> = m.data.iter().map(|&v| to_u8(v)).collect();
    image::GrayImage::from_raw(m.width as u32, m.height as u32, px)
        .ok_or_else(|| anyhow!("bad map size"))?
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// The centre-bias baseline at `w x h`: a Gaussian centred at `((w-1)/2, (h-1)/2)` with
/// standard deviations `w/4` and `h/4`, peak 1.
pub fn centre_gaussian(w: usize, h: usize) -> Map {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sx, sy) = (w as f64 / 4.0, h as f64 / 4.0);
    let data = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f64, (i / w) as f64);
            (-0.5 * (((x - cx) / sx).powi(2) + ((y - cy) / sy).powi(2))).exp()
        })
        .collect();
    Map::new(w, h, data)
}

/// The random sAUC's seed for one frame: `seed`, the video name and the frame number mixed
/// (FNV-1a of the name, SplitMix64 finaliser).
fn frame_seed(seed: u64, video: &str, frame: usize) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let name = video.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    mix(seed ^ mix(name ^ mix(frame as u64)))
}

/// The frames (1-based) of the clip whose labelled frame is `n`: `n - label_frame ..`, `len`
/// of them, clamped to `1..=nframes` (as `dtfsal.data.StavisClips`, which repeats the last
/// frame past the end; the first frame repeats before the start).
pub fn clip_frames(n: usize, label_frame: usize, len: usize, nframes: usize) -> Vec<usize> {
    (0..len)
        .map(|k| {
            (n as i64 - label_frame as i64 + k as i64).clamp(1, nframes.max(1) as i64) as usize
        })
        .collect()
}

/// One video's model inputs: its frames (decoded once, kept while a clip needs them) and audio.
struct VideoInputs<'a> {
    run: &'a ModelRun,
    name: &'a str,
    nframes: usize,
    /// 16 kHz mono samples and the frame rate (audio-visual models).
    audio: Option<(Vec<f32>, f64)>,
    /// Frame number -> normalised `[3, H, W]`.
    cache: HashMap<usize, Arc<Vec<f32>>>,
}

impl<'a> VideoInputs<'a> {
    fn open(run: &'a ModelRun, v: &'a VideoSpec) -> anyhow::Result<Self> {
        let audio = if run.model.config().variant.has_audio() {
            let fps = v.fps.filter(|f| f.is_finite() && *f > 0.0).ok_or_else(|| {
                anyhow!("no valid fps in the fold list (the audio-visual model needs it to place the audio)")
            })?;
            let path = run.audio_dir.join(&v.name).join(format!("{}.wav", v.name));
            Some((read_audio_16k_mono(&path)?, fps))
        } else {
            None
        };
        Ok(Self {
            run,
            name: &v.name,
            nframes: v.frames.iter().map(|f| f.number).max().unwrap_or(0),
            audio,
            cache: HashMap::new(),
        })
    }

    /// The model input for labelled frame `n`.
    fn clip(&mut self, n: usize) -> Result<Clip, String> {
        let c = self.run.model.config();
        let (t, h, w) = (c.clip_len, c.height, c.width);
        let idx = clip_frames(n, c.label_frame, t, self.nframes);
        let lo = idx[0];
        self.cache.retain(|&k, _| k >= lo);
        let mut missing: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|k| !self.cache.contains_key(k))
            .collect();
        missing.dedup();
        let dir = self.run.frames_dir.join(self.name);
        let (mean, std) = (c.video_mean, c.video_std);
        let loaded: Vec<(usize, anyhow::Result<Vec<f32>>)> = missing
            .par_iter()
            .map(|&k| {
                (
                    k,
                    load_frame(&dir.join(format!("img_{k:05}.jpg")), h, w, mean, std),
                )
            })
            .collect();
        for (k, r) in loaded {
            self.cache.insert(
                k,
                Arc::new(r.map_err(|e| format!("clip frame {k}: {e:#}"))?),
            );
        }
        let plane = h * w;
        let mut video = vec![0.0f32; 3 * t * plane];
        for (ti, k) in idx.iter().enumerate() {
            let fr = &self.cache[k];
            for ch in 0..3 {
                video[(ch * t + ti) * plane..(ch * t + ti + 1) * plane]
                    .copy_from_slice(&fr[ch * plane..(ch + 1) * plane]);
            }
        }
        let audio = self.audio.as_ref().map(|(wave, fps)| {
            let start = dtfsal_engine::audio::window_start_frame_secs((n - 1) as f64 / fps);
            let a = dtfsal_engine::audio::clip_audio_from_wave(wave, start);
            Tensor::from_vec(&[c.audio_slices, 1, c.audio_height, c.audio_width], a)
        });
        Ok(Clip {
            video: Tensor::from_vec(&[3, t, h, w], video),
            audio,
        })
    }

    fn predict(&mut self, n: usize) -> Result<SaliencyMap, String> {
        let clip = self.clip(n)?;
        if let Some(dir) = &self.run.dump {
            dump_clip(&dir.join(self.name), n, &clip).map_err(|e| format!("{e:#}"))?;
        }
        self.run.model.predict(&clip).map_err(|e| e.to_string())
    }
}

fn dump_clip(dir: &Path, n: usize, clip: &Clip) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut t = std::collections::BTreeMap::from([("video".to_string(), clip.video.clone())]);
    if let Some(a) = &clip.audio {
        t.insert("audio".into(), a.clone());
    }
    let path = dir.join(format!("{n:05}.safetensors"));
    dtfsal_engine::tensor_file::write_tensors(&path, &t, None)
        .with_context(|| format!("writing {}", path.display()))
}

/// A frame as the model's input `[3, h, w]`: RGB 0-255, resized bilinearly (`align_corners=False`,
/// no antialias; the engine's resampler), `(x - mean) / std` per channel.
pub fn load_frame(
    path: &Path,
    h: usize,
    w: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> anyhow::Result<Vec<f32>> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode {}", path.display()))?
        .to_rgb8();
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let mut planar = vec![0.0f32; 3 * iw * ih];
    for (i, px) in img.pixels().enumerate() {
        for ch in 0..3 {
            planar[ch * iw * ih + i] = f32::from(px[ch]);
        }
    }
    let src = Tensor::from_vec(&[3, 1, ih, iw], planar);
    let mut out = dtfsal_engine::ops::resize::trilinear(&src, [1, h, w]).into_vec();
    for (ch, plane) in out.chunks_mut(h * w).enumerate() {
        for x in plane {
            *x = (*x - mean[ch]) / std[ch];
        }
    }
    Ok(out)
}

/// A WAV file as 16 kHz mono f32: read directly when it is 16 kHz mono 16-bit or float (as
/// `dtfsal mel`), otherwise decoded, down-mixed and resampled by GStreamer.
pub fn read_audio_16k_mono(path: &Path) -> anyhow::Result<Vec<f32>> {
    if !path.is_file() {
        bail!("missing audio {}", path.display());
    }
    if let Ok(r) = hound::WavReader::open(path) {
        let s = r.spec();
        let direct = s.sample_rate == dtfsal_engine::audio::SAMPLE_RATE
            && s.channels == 1
            && matches!(
                (s.sample_format, s.bits_per_sample),
                (hound::SampleFormat::Int, 16) | (hound::SampleFormat::Float, 32)
            );
        if direct {
            return super::mel::read_wav_16k_mono(path);
        }
    }
    decode_with_gstreamer(path)
        .with_context(|| format!("decoding {} with GStreamer", path.display()))
}

/// `filesrc ! wavparse ! audioconvert ! audioresample ! F32LE 16 kHz mono ! appsink`.
fn decode_with_gstreamer(path: &Path) -> anyhow::Result<Vec<f32>> {
    use gst::prelude::*;
    gst::init().context("initialising GStreamer")?;
    let make = |f: &str| {
        gst::ElementFactory::make(f)
            .build()
            .map_err(|_| anyhow!("GStreamer element `{f}` is not available (missing plugin?)"))
    };
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()?;
    let (parse, conv, resample) = (
        make("wavparse")?,
        make("audioconvert")?,
        make("audioresample")?,
    );
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", "interleaved")
        .field("rate", dtfsal_engine::audio::SAMPLE_RATE as i32)
        .field("channels", 1i32)
        .build();
    let sink = gst_app::AppSink::builder().sync(false).caps(&caps).build();
    pipeline.add_many([&src, &parse, &conv, &resample, sink.upcast_ref()])?;
    gst::Element::link_many([&src, &parse, &conv, &resample, sink.upcast_ref()])?;
    let result = (|| -> anyhow::Result<Vec<f32>> {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| anyhow!("the pipeline failed to start"))?;
        let mut out = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            let buf = sample
                .buffer()
                .ok_or_else(|| anyhow!("sample without a buffer"))?;
            let map = buf.map_readable()?;
            out.extend(
                map.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        if let Some(msg) = pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
            && let gst::MessageView::Error(e) = msg.view()
        {
            bail!("{}", e.error());
        }
        Ok(out)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let out = result?;
    if out.is_empty() {
        bail!("no audio samples");
    }
    Ok(out)
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
        for (k, label) in labels.iter().enumerate() {
            println!(
                "{:<10} {:>10} {:>8}",
                label,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_clamp_at_both_ends() {
        assert_eq!(clip_frames(17, 16, 32, 40), (1..=32).collect::<Vec<_>>());
        let start = clip_frames(1, 16, 32, 40);
        assert_eq!(&start[..17], &[1; 17]);
        assert_eq!(start[31], 16);
        let end = clip_frames(17, 16, 32, 20);
        assert_eq!(&end[..20], &(1..=20).collect::<Vec<_>>()[..]);
        assert!(end[20..].iter().all(|&k| k == 20));
    }

    #[test]
    fn every_n_scores_1_1_plus_n() {
        let s: Vec<usize> = (1..=25).filter(|&n| is_scored(n, 10)).collect();
        assert_eq!(s, [1, 11, 21]);
        assert!((1..=5).all(|n| is_scored(n, 1)));
    }

    #[test]
    fn centre_gaussian_peaks_at_the_centre_with_quarter_sigmas() {
        let m = centre_gaussian(9, 5);
        assert_eq!(m.data[2 * 9 + 4], 1.0);
        // 8x4: centre (3.5, 1.5), sigmas 2 and 1.
        let c = centre_gaussian(8, 4);
        let at = |x: f64| (-0.5 * ((x - 3.5) / 2.0).powi(2) - 0.5 * (0.5f64).powi(2)).exp();
        assert!((c.data[8 + 7] - at(7.0)).abs() < 1e-12);
        // 9x5: centre (4, 2), sigmas 2.25 and 1.25.
        let corner = (-0.5 * ((4.0 / 2.25f64).powi(2) + (2.0 / 1.25f64).powi(2))).exp();
        assert!((m.data[0] - corner).abs() < 1e-12);
    }

    #[test]
    fn quantised_maps_read_back_identically() {
        let m = Map::new(3, 1, vec![0.123456, 0.5, 1.2]);
        let q = quantise(m);
        assert_eq!(q.data, [31.0 / 255.0, 128.0 / 255.0, 1.0]);
    }

    #[test]
    fn examples_spread_over_videos_and_seeds_differ_per_frame() {
        let scored = vec![vec![1, 11, 21, 31], vec![1, 11]];
        assert_eq!(pick_examples(&scored, 3), [(0, 11), (0, 31), (1, 11)]);
        assert_eq!(pick_examples(&[vec![1]], 3), [(0, 1)]);
        assert!(pick_examples(&[vec![]], 3).is_empty());
        assert_ne!(frame_seed(0, "a", 1), frame_seed(0, "a", 2));
        assert_ne!(frame_seed(0, "a", 1), frame_seed(0, "b", 1));
        assert_ne!(frame_seed(0, "a", 1), frame_seed(1, "a", 1));
        assert_eq!(frame_seed(5, "vid", 7), frame_seed(5, "vid", 7));
    }
}
