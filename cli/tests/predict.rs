//! `dtfsal predict` end to end: short generated videos (with and without audio) → PNG maps and
//! an overlay mp4; error paths.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gst::prelude::*;

const FRAMES: usize = 40;

fn dtfsal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal")).args(args).output().expect("running dtfsal")
}

fn ok(out: &Output) {
    assert!(out.status.success(), "dtfsal failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Encodes FRAMES frames of 320×180 at 25 fps (+ 1.6 s of a tone with `audio`) into an mp4.
fn make_video(dir: &Path, name: &str, audio: bool) -> PathBuf {
    gst::init().unwrap();
    let path = dir.join(name);
    let venc = if gst::ElementFactory::find("openh264enc").is_some() {
        "openh264enc ! h264parse"
    } else {
        "avenc_mpeg4 ! mpeg4videoparse"
    };
    let mut desc = format!(
        "videotestsrc num-buffers={FRAMES} pattern=ball ! video/x-raw,width=320,height=180,framerate=25/1 \
         ! videoconvert ! {venc} ! mp4mux name=m ! filesink location=\"{}\"",
        path.display()
    );
    if audio {
        desc.push_str(" audiotestsrc num-buffers=70 ! audioconvert ! avenc_aac ! aacparse ! m.");
    }
    let pipeline = gst::parse::launch(&desc).expect("test video pipeline").downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("making the test video: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    path
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}

#[test]
fn predict_pngs_png16_and_mp4() {
    let tmp = tempfile::tempdir().unwrap();
    let av = make_video(tmp.path(), "av.mp4", true);
    let av = av.to_str().unwrap();

    // 8-bit maps, one per frame, at the video size, 1-based names.
    let maps = tmp.path().join("maps");
    ok(&dtfsal(&["predict", av, "--out", maps.to_str().unwrap(), "--interval", "8"]));
    let files = pngs(&maps);
    assert_eq!(files.len(), FRAMES);
    assert_eq!(files[0].file_name().unwrap(), "00001.png");
    assert_eq!(files[FRAMES - 1].file_name().unwrap(), format!("{FRAMES:05}.png").as_str());
    for f in [&files[0], &files[FRAMES / 2], &files[FRAMES - 1]] {
        let img = image::open(f).unwrap();
        assert_eq!(img.color(), image::ColorType::L8, "{}", f.display());
        assert_eq!((img.width(), img.height()), (320, 180));
    }

    // 16-bit maps.
    let maps16 = tmp.path().join("maps16");
    ok(&dtfsal(&["predict", av, "--out", maps16.to_str().unwrap(), "--interval", "8", "--png16", "--alignment", "last"]));
    let files = pngs(&maps16);
    assert_eq!(files.len(), FRAMES);
    let img = image::open(&files[FRAMES - 1]).unwrap();
    assert_eq!(img.color(), image::ColorType::L16);
    assert_eq!((img.width(), img.height()), (320, 180));

    // Overlay video.
    let mp4 = tmp.path().join("overlay.mp4");
    let sheet = tmp.path().join("sheet.png");
    ok(&dtfsal(&[
        "predict", av, "--out", mp4.to_str().unwrap(), "--interval", "8",
        "--contact-sheet", sheet.to_str().unwrap(), "--sheet-frames", "6",
    ]));
    assert!(std::fs::metadata(&mp4).unwrap().len() > 1000);
    // 6 cells of 320x180 in rows of 4: 2 rows, 4 columns, 4-pixel gaps
    let img = image::open(&sheet).unwrap();
    assert_eq!((img.width(), img.height()), (4 * 320 + 5 * 4, 2 * 180 + 3 * 4));

    // A contact sheet needs the overlay video.
    let out = dtfsal(&["predict", av, "--out", tmp.path().join("d").to_str().unwrap(), "--contact-sheet", "x.png"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --out FILE.mp4"));
}

#[test]
fn predict_video_without_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let v = make_video(tmp.path(), "v.mp4", false);
    let maps = tmp.path().join("maps");
    ok(&dtfsal(&["predict", v.to_str().unwrap(), "--out", maps.to_str().unwrap(), "--interval", "16"]));
    assert_eq!(pngs(&maps).len(), FRAMES);
}

#[test]
fn predict_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-video.mp4");
    let out = dtfsal(&["predict", missing.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-video.mp4") && err.contains("not found"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Not a video: a clear GStreamer error, no panic.
    let junk = tmp.path().join("junk.mp4");
    std::fs::write(&junk, b"not a video at all").unwrap();
    let out = dtfsal(&["predict", junk.to_str().unwrap(), "--out", tmp.path().join("o2").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GStreamer error") && !err.contains("panicked"), "{err}");

    // Missing weight file.
    let v = make_video(tmp.path(), "v.mp4", false);
    let out = dtfsal(&["predict", v.to_str().unwrap(), "--weights", "/nonexistent/w.safetensors"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/w.safetensors"), "{err}");

    // A weight file that is not safetensors: the element's error surfaces.
    let bad = tmp.path().join("bad.safetensors");
    std::fs::write(&bad, b"junk").unwrap();
    let out = dtfsal(&["predict", v.to_str().unwrap(), "--weights", bad.to_str().unwrap(), "--out", tmp.path().join("o3").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.safetensors") && !err.contains("panicked"), "{err}");
}
