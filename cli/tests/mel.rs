//! `dtfsal mel` contract: a 16 kHz mono WAV (s16 or f32) → tensor `audio` [9, 1, 112, 192]
//! equal to the Python reference `clip_audio` (through the engine's committed audio fixture);
//! other rates, channel counts and sample formats are rejected with a message naming them.
use std::path::PathBuf;
use std::process::Command;

use safetensors::SafeTensors;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dtfsal-cli-mel-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Tensor `name` of a safetensors file as (shape, f32 values).
fn read_f32(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

fn write_wav(
    path: &PathBuf,
    rate: u32,
    channels: u16,
    format: hound::SampleFormat,
    bits: u16,
    wave: &[f32],
) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: format,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &x in wave {
        for _ in 0..channels {
            match (format, bits) {
                (hound::SampleFormat::Float, _) => w.write_sample(x).unwrap(),
                (_, 16) => w.write_sample((x * 32768.0).round() as i16).unwrap(),
                _ => w.write_sample((x * 8_388_608.0).round() as i32).unwrap(),
            }
        }
    }
    w.finalize().unwrap();
}

fn mel(input: &PathBuf, center: &str, output: &PathBuf) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(["mel", "--input"])
        .arg(input)
        .args(["--center", center, "--output"])
        .arg(output)
        .output()
        .expect("run dtfsal")
}

#[test]
fn matches_the_reference_clip_for_s16_and_f32() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../engine/tests/data/audio_ref.safetensors"
    ))
    .unwrap();
    let (_, speech) = read_f32(&fixture, "wave.speech"); // on the s16 grid
    let (shape, want) = read_f32(&fixture, "clip_audio.0"); // speech @ 0.5 s
    assert_eq!(shape, [9, 1, 112, 192]);
    for (tag, format, bits) in [
        ("s16", hound::SampleFormat::Int, 16),
        ("f32", hound::SampleFormat::Float, 32),
    ] {
        let (wav, out) = (
            tmp(&format!("{tag}.wav")),
            tmp(&format!("{tag}.safetensors")),
        );
        write_wav(&wav, 16_000, 1, format, bits, &speech);
        let r = mel(&wav, "0.5", &out);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let (shape, got) = read_f32(&std::fs::read(&out).unwrap(), "audio");
        assert_eq!(shape, [9, 1, 112, 192]);
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d <= 1e-4, "{tag}: max |Δ| = {d}");
    }
}

#[test]
fn rejects_other_rates_channels_and_formats() {
    let wave = vec![0.1f32; 8_000];
    let cases = [
        ("44k", 44_100, 1, hound::SampleFormat::Int, 16, "44100 Hz"),
        (
            "stereo",
            16_000,
            2,
            hound::SampleFormat::Int,
            16,
            "2 channels",
        ),
        (
            "s24",
            16_000,
            1,
            hound::SampleFormat::Int,
            24,
            "24-bit integer",
        ),
    ];
    for (tag, rate, channels, format, bits, needle) in cases {
        let wav = tmp(&format!("{tag}.wav"));
        write_wav(&wav, rate, channels, format, bits, &wave);
        let r = mel(&wav, "0.3", &tmp("never.safetensors"));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{tag} accepted");
        assert!(
            err.contains(needle),
            "{tag}: message does not name {needle:?}: {err}"
        );
    }
}
