//! `dtfsal eval --figure OUT.png`: one PNG summing up an evaluation.
//!
//! Layout ([`WIDTH`] = 1200 pixels wide; the height follows the examples): a title and the
//! evaluation's description; the six metrics as horizontal bars, each on its own scale (CC, SIM,
//! AUC-Judd, sAUC on 0-1 with AUC chance at 0.5 marked; NSS and KLD on 0 to the larger of 4 and
//! the value) and labelled with its value; then up to three example frames, each as three
//! panels: the frame, the GT density (inferno colours) and the prediction over the frame (jet
//! colours, half transparent), both maps min-max normalised for display, with the frame's
//! metrics in its caption.
//!
//! Drawn with `plotters` (bitmap backend); text uses a TrueType font read at run time
//! (`DTFSAL_FONT`, else DejaVu Sans from Debian's `fonts-dejavu-core`, else Liberation Sans or
//! Noto Sans). Without one the figure is written without text, with a warning.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use dtfsal_engine::metrics::{FrameScores, Map};
use gstdtfsal::dtfsal::render::Palette;
use image::{GrayImage, RgbImage, imageops};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of the figure in pixels.
pub const WIDTH: u32 = 1200;
const MARGIN: i32 = 24;
const GAP: i32 = 12;
const ROW_H: i32 = 34;
const METRICS_TOP: i32 = 84;
const TRACK_X: i32 = 150;
const TRACK_W: i32 = 560;
/// Panel height bounds (the panels keep the GT's aspect ratio within these).
const PANEL_H: (u32, u32) = (96, 320);

/// One example frame of the figure.
pub struct Example {
    pub video: String,
    pub frame: usize,
    /// The video frame, when it could be read.
    pub image: Option<RgbImage>,
    /// GT density and the scored prediction, at the GT size.
    pub density: Map,
    pub pred: Map,
    pub scores: FrameScores,
}

pub struct Figure {
    pub title: String,
    pub subtitle: String,
    /// CC, NSS, AUC-Judd, SIM, KLD, sAUC (NaN: no value).
    pub means: [f64; 6],
    pub examples: Vec<Example>,
}

const FONT: &str = "sans-serif";

/// Registers a font with plotters once; false when none was found.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("DTFSAL_FONT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
            ]
            .map(PathBuf::from),
        );
        for p in candidates {
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                let bold = p.with_file_name("DejaVuSans-Bold.ttf");
                if let Ok(b) = std::fs::read(bold) {
                    let _ = plotters::style::register_font(
                        FONT,
                        FontStyle::Bold,
                        Box::leak(b.into_boxed_slice()),
                    );
                }
                return true;
            }
        }
        false
    })
}

/// A panel to paste into the canvas after plotters has drawn.
struct Paste {
    x: u32,
    y: u32,
    img: RgbImage,
}

struct Scale {
    name: &'static str,
    max: f64,
    note: &'static str,
    chance: Option<f64>,
    lower_better: bool,
}

fn scales(means: &[f64; 6]) -> [Scale; 6] {
    let open = |v: f64| {
        if v.is_finite() {
            v.max(4.0).ceil()
        } else {
            4.0
        }
    };
    [
        Scale {
            name: "CC",
            max: 1.0,
            note: "0 to 1, higher is better",
            chance: None,
            lower_better: false,
        },
        Scale {
            name: "NSS",
            max: open(means[1]),
            note: "0 up, higher is better",
            chance: None,
            lower_better: false,
        },
        Scale {
            name: "AUC-Judd",
            max: 1.0,
            note: "0.5 = chance, higher is better",
            chance: Some(0.5),
            lower_better: false,
        },
        Scale {
            name: "SIM",
            max: 1.0,
            note: "0 to 1, higher is better",
            chance: None,
            lower_better: false,
        },
        Scale {
            name: "KLD",
            max: open(means[4]),
            note: "0 up, lower is better",
            chance: None,
            lower_better: true,
        },
        Scale {
            name: "sAUC",
            max: 1.0,
            note: "0.5 = chance, higher is better",
            chance: Some(0.5),
            lower_better: false,
        },
    ]
}

fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".into()
    }
}

impl Figure {
    /// Panel size for the examples: three across, the GT's aspect ratio.
    fn panel_size(&self) -> (u32, u32) {
        let pw = (WIDTH as i32 - 2 * MARGIN - 2 * GAP) / 3;
        let aspect = self.examples.first().map_or(0.6, |e| {
            e.density.height as f64 / e.density.width.max(1) as f64
        });
        let ph = ((pw as f64 * aspect).round() as u32).clamp(PANEL_H.0, PANEL_H.1);
        (pw as u32, ph)
    }

    fn examples_top(&self) -> i32 {
        METRICS_TOP + 30 + 6 * ROW_H + 16
    }

    fn example_row_h(&self) -> i32 {
        let (_, ph) = self.panel_size();
        24 + 20 + ph as i32 + 18
    }

    /// The figure's height in pixels.
    pub fn height(&self) -> u32 {
        let rows = self.examples.len().max(1) as i32;
        (self.examples_top() + 30 + rows * self.example_row_h() + MARGIN / 2) as u32
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let (w, h) = (WIDTH, self.height());
        let text = font_ready();
        if !text {
            eprintln!(
                "warning: no TrueType font found (install fonts-dejavu-core or set DTFSAL_FONT): the figure has no text"
            );
        }
        let mut buf = vec![255u8; (w * h * 3) as usize];
        let pastes = {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            let pastes = self
                .draw(&root, text)
                .map_err(|e| anyhow!("drawing the figure: {e}"))?;
            root.present()
                .map_err(|e| anyhow!("drawing the figure: {e}"))?;
            pastes
        };
        let mut canvas = RgbImage::from_raw(w, h, buf).expect("buffer of the canvas size");
        for p in pastes {
            imageops::replace(&mut canvas, &p.img, i64::from(p.x), i64::from(p.y));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        canvas
            .save(path)
            .with_context(|| format!("writing {}", path.display()))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        text: bool,
    ) -> Result<Vec<Paste>, DrawingAreaErrorKind<DB::ErrorType>> {
        let dark = RGBColor(30, 30, 30);
        let grey = RGBColor(110, 110, 110);
        let label = |s: &str, x: i32, y: i32, size: f64, color: &RGBColor, bold: bool, pos: Pos| {
            if !text {
                return Ok(());
            }
            let font = if bold {
                (FONT, size, FontStyle::Bold).into_font()
            } else {
                (FONT, size).into_font()
            };
            root.draw(&Text::new(
                s.to_string(),
                (x, y),
                font.color(color).pos(pos),
            ))
        };
        let left_top = Pos::new(HPos::Left, VPos::Top);
        let left_mid = Pos::new(HPos::Left, VPos::Center);
        let right_mid = Pos::new(HPos::Right, VPos::Center);
        root.fill(&WHITE)?;
        label(&self.title, MARGIN, 14, 24.0, &dark, true, left_top)?;
        label(&self.subtitle, MARGIN, 48, 15.0, &grey, false, left_top)?;

        // Metrics: one bar per metric, each on its own scale.
        label("Metrics", MARGIN, METRICS_TOP, 18.0, &dark, true, left_top)?;
        let blue = RGBColor(52, 101, 164);
        let orange = RGBColor(206, 92, 0);
        for (k, sc) in scales(&self.means).iter().enumerate() {
            let v = self.means[k];
            let yc = METRICS_TOP + 30 + k as i32 * ROW_H + ROW_H / 2;
            label(sc.name, TRACK_X - 14, yc, 16.0, &dark, true, right_mid)?;
            root.draw(&Rectangle::new(
                [(TRACK_X, yc - 10), (TRACK_X + TRACK_W, yc + 10)],
                RGBColor(232, 232, 232).filled(),
            ))?;
            if v.is_finite() {
                let frac = (v / sc.max).clamp(0.0, 1.0);
                let x1 = TRACK_X + (frac * TRACK_W as f64).round() as i32;
                let color = if sc.lower_better { orange } else { blue };
                root.draw(&Rectangle::new(
                    [(TRACK_X, yc - 10), (x1.max(TRACK_X + 1), yc + 10)],
                    color.filled(),
                ))?;
            }
            if let Some(c) = sc.chance {
                let x = TRACK_X + (c / sc.max * TRACK_W as f64).round() as i32;
                root.draw(&Rectangle::new(
                    [(x - 1, yc - 14), (x + 1, yc + 14)],
                    dark.filled(),
                ))?;
            }
            let end = format!("{}", sc.max);
            label(
                &end,
                TRACK_X + TRACK_W - 4,
                yc,
                11.0,
                &grey,
                false,
                right_mid,
            )?;
            label(
                &fmt(v),
                TRACK_X + TRACK_W + 14,
                yc,
                17.0,
                &dark,
                true,
                left_mid,
            )?;
            label(
                sc.note,
                TRACK_X + TRACK_W + 90,
                yc,
                13.0,
                &grey,
                false,
                left_mid,
            )?;
        }

        // Examples: frame | GT density | prediction over the frame.
        let top = self.examples_top();
        label("Examples", MARGIN, top, 18.0, &dark, true, left_top)?;
        label(
            "maps min-max normalised for display; GT density in inferno, the prediction in jet at 50% over the frame",
            MARGIN + 110,
            top + 4,
            13.0,
            &grey,
            false,
            left_top,
        )?;
        if self.examples.is_empty() {
            label(
                "(no frame could be scored)",
                MARGIN,
                top + 34,
                14.0,
                &grey,
                false,
                left_top,
            )?;
            return Ok(Vec::new());
        }
        let (pw, ph) = self.panel_size();
        let mut pastes = Vec::new();
        for (r, ex) in self.examples.iter().enumerate() {
            let y0 = top + 30 + r as i32 * self.example_row_h();
            let s = &ex.scores;
            let caption = format!(
                "{}, frame {}:   CC {}   NSS {}   AUC-J {}   SIM {}   KLD {}   sAUC {}",
                ex.video,
                ex.frame,
                fmt(s.cc),
                fmt(s.nss),
                fmt(s.auc_j),
                fmt(s.sim),
                fmt(s.kld),
                fmt(s.sauc)
            );
            label(&caption, MARGIN, y0, 15.0, &dark, true, left_top)?;
            let titles = [
                if ex.image.is_some() {
                    "frame"
                } else {
                    "frame (no image)"
                },
                "ground truth density",
                "prediction over the frame",
            ];
            let frame = match &ex.image {
                Some(img) => imageops::resize(img, pw, ph, imageops::FilterType::Triangle),
                None => RgbImage::from_pixel(pw, ph, image::Rgb([96, 96, 96])),
            };
            let density = colourise(&to_gray(&ex.density), pw, ph, Palette::Inferno, None);
            let overlay = colourise(
                &to_gray(&ex.pred),
                pw,
                ph,
                Palette::Jet,
                Some((&frame, 0.5)),
            );
            for (c, (title, img)) in titles
                .into_iter()
                .zip([frame, density, overlay])
                .enumerate()
            {
                let x = MARGIN + c as i32 * (pw as i32 + GAP);
                label(title, x, y0 + 24, 14.0, &grey, false, left_top)?;
                pastes.push(Paste {
                    x: x as u32,
                    y: (y0 + 44) as u32,
                    img,
                });
            }
        }
        Ok(pastes)
    }
}

/// A map min-max normalised to 8-bit gray (all zeros when constant).
fn to_gray(m: &Map) -> GrayImage {
    let (lo, hi) = m.min_max();
    let span = if hi > lo { hi - lo } else { 1.0 };
    let px = m
        .data
        .iter()
        .map(|&v| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    GrayImage::from_raw(m.width as u32, m.height as u32, px).expect("map size")
}

/// The gray map resized to `w x h` and coloured with `palette`; over `base` with opacity `alpha`.
fn colourise(
    g: &GrayImage,
    w: u32,
    h: u32,
    palette: Palette,
    base: Option<(&RgbImage, f32)>,
) -> RgbImage {
    let g = imageops::resize(g, w, h, imageops::FilterType::Triangle);
    let lut = palette.lut();
    RgbImage::from_fn(w, h, |x, y| {
        let c = lut[g.get_pixel(x, y)[0] as usize];
        match base {
            None => image::Rgb(c),
            Some((b, a)) => {
                let p = b.get_pixel(x, y);
                image::Rgb(std::array::from_fn(|k| {
                    (a * f32::from(c[k]) + (1.0 - a) * f32::from(p[k])).round() as u8
                }))
            }
        }
    })
}
