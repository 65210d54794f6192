//! `dtfsal mel`: the audio front end on a WAV file — the model's audio input for one clip.
//!
//! Reads a 16 kHz mono WAV (16-bit integer or 32-bit float PCM), takes the 1.6 s window centred
//! at `--center` (start rounded to the 10 ms STFT grid, zero-filled outside the audio; see
//! `dtfsal_engine::audio::frontend`) and writes tensor `audio` `[9, 1, 112, 192]` f32 to a
//! safetensors file. Equal to `dtfsal.audio_frontend.clip_audio(wave, center)`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use dtfsal_engine::audio::{
    CLIP_AUDIO_SHAPE, SAMPLE_RATE, clip_audio_from_wave, window_start_frame_secs,
};
use safetensors::tensor::{Dtype, TensorView};

#[derive(clap::Args)]
pub struct Args {
    /// 16 kHz mono WAV, 16-bit integer or 32-bit float samples.
    #[arg(long)]
    pub input: PathBuf,
    /// Clip centre in seconds from the start of the file.
    #[arg(long, allow_negative_numbers = true)]
    pub center: f64,
    /// Output safetensors file (tensor `audio` [9, 1, 112, 192] f32).
    #[arg(long)]
    pub output: PathBuf,
}

/// Reads a 16 kHz mono WAV as f32 samples (s16 scaled by 1/32768, as torchvggish does).
pub fn read_wav_16k_mono(path: &Path) -> anyhow::Result<Vec<f32>> {
    let reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot read WAV {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE {
        bail!(
            "{}: sample rate {} Hz, expected {SAMPLE_RATE} Hz (resample first, e.g. `sox in.wav -r 16000 -c 1 out.wav`)",
            path.display(),
            spec.sample_rate
        );
    }
    if spec.channels != 1 {
        bail!(
            "{}: {} channels, expected mono (down-mix first)",
            path.display(),
            spec.channels
        );
    }
    let format = match spec.sample_format {
        hound::SampleFormat::Int => format!("{}-bit integer", spec.bits_per_sample),
        hound::SampleFormat::Float => format!("{}-bit float", spec.bits_per_sample),
    };
    let samples: Result<Vec<f32>, hound::Error> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => reader
            .into_samples::<i16>()
            .map(|s| s.map(|v| f32::from(v) / 32768.0))
            .collect(),
        (hound::SampleFormat::Float, 32) => reader.into_samples::<f32>().collect(),
        _ => bail!(
            "{}: {format} samples, expected 16-bit integer or 32-bit float",
            path.display()
        ),
    };
    samples.with_context(|| format!("{}: corrupt {format} WAV data", path.display()))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.center.is_finite() {
        bail!(
            "--center must be a finite number of seconds, got {}",
            a.center
        );
    }
    let wave = read_wav_16k_mono(&a.input)?;
    let start_frame = window_start_frame_secs(a.center);
    let audio = clip_audio_from_wave(&wave, start_frame);
    let bytes: Vec<u8> = audio.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, CLIP_AUDIO_SHAPE.to_vec(), &bytes)?;
    let meta = HashMap::from([
        ("center_s".to_string(), a.center.to_string()),
        (
            "window_start_sample".to_string(),
            (start_frame * 160).to_string(),
        ),
    ]);
    safetensors::serialize_to_file([("audio", view)], Some(meta), &a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    eprintln!(
        "mel: {} ({:.3} s) window [{:.3}, {:.3}) s -> {} audio {:?}",
        a.input.display(),
        wave.len() as f64 / f64::from(SAMPLE_RATE),
        (start_frame * 160) as f64 / f64::from(SAMPLE_RATE),
        (start_frame * 160 + 25_600) as f64 / f64::from(SAMPLE_RATE),
        a.output.display(),
        CLIP_AUDIO_SHAPE
    );
    Ok(())
}
