//! The element with `backend=triton` against a real Triton Inference Server on loopback
//! (tests/triton/server.rs: the nvidia-pytriton CPU server scripts/setup.sh installs, serving the embedded
//! demo model exported to ONNX through a python-backend model.py). Skips with a message only when the
//! server is not installed.
#![cfg(feature = "triton")]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdtfsal::dtfsal::meta::SaliencyMeta;

mod common;
use common::{init, launch, start_error};

#[path = "../../tests/triton/server.rs"]
mod server;
use server::TritonServer;

/// Map tolerance, Triton (ONNX Runtime behind the python backend) vs the CPU engine (issue #11).
const MAP_ATOL: f32 = 1e-4;
/// Every 4th frame is analysed (33 clips of the 132-frame sample) to keep CI short.
const INTERVAL: u32 = 4;

macro_rules! server_or_skip {
    ($test:literal) => {{
        init();
        match server::demo_repo("dtfsal").and_then(|repo| TritonServer::start(&repo)) {
            Ok(s) => s,
            Err(why) => {
                eprintln!("SKIPPED {}: {why}", $test);
                return;
            }
        }
    }};
}

/// (pts, map) of every output buffer.
type Maps = Arc<Mutex<Vec<(u64, Vec<f32>)>>>;

/// The sample media through `dtfsal PROPS` (sync, map meta only) into an appsink.
fn sample_pipeline(props: &str) -> (gst::Pipeline, Maps) {
    let media = server::repo_root().join("media/bigbuckbunny.mp4");
    let p = launch(&format!(
        "filesrc location={} ! qtdemux name=d \
         d.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! s.audio_sink \
         d.video_0 ! queue ! decodebin ! videoconvert \
         ! dtfsal name=s output=passthrough-with-meta interval={INTERVAL} {props} ! appsink name=out sync=false",
        media.display()
    ));
    let maps = Arc::new(Mutex::new(Vec::new()));
    let sink = p.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let m = maps.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                let meta = SaliencyMeta::from_buffer(buf).expect("every buffer carries the map");
                m.lock().unwrap().push((buf.pts().map_or(0, |t| t.nseconds()), meta.data));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    (p, maps)
}

/// Bus messages seen while playing to EOS; `step` runs every 50 ms with the number of maps so far.
fn play(p: &gst::Pipeline, maps: &Mutex<Vec<(u64, Vec<f32>)>>, secs: u64, mut step: impl FnMut(usize)) -> Vec<gst::Message> {
    p.set_state(gst::State::Playing).expect("pipeline starts");
    let bus = p.bus().unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        assert!(start.elapsed() < Duration::from_secs(secs), "no EOS within {secs} s");
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => panic!("pipeline error: {} ({:?})", e.error(), e.debug()),
                gst::MessageView::Warning(_) | gst::MessageView::Info(_) => seen.push(msg.clone()),
                _ => {}
            }
        }
        step(maps.lock().unwrap().len());
    }
    p.set_state(gst::State::Null).unwrap();
    seen
}

/// The CPU engine's maps of the sample (embedded model, same interval), computed once.
fn cpu_maps() -> &'static Vec<(u64, Vec<f32>)> {
    static CPU: OnceLock<Vec<(u64, Vec<f32>)>> = OnceLock::new();
    CPU.get_or_init(|| {
        let (p, maps) = sample_pipeline("backend=cpu threads=2");
        play(&p, &maps, 300, |_| {});
        let v = maps.lock().unwrap().clone();
        assert_eq!(v.len(), 132, "the sample has 132 frames");
        v
    })
}

fn assert_same_maps(got: &[(u64, Vec<f32>)], what: &str) {
    let want = cpu_maps();
    assert_eq!(got.len(), want.len(), "{what}: frame count");
    let mut worst = 0f32;
    for ((pa, a), (pb, b)) in got.iter().zip(want) {
        assert_eq!(pa, pb, "{what}: timestamps");
        assert_eq!(a.len(), b.len());
        worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
    }
    eprintln!("{what}: {} frames, max |triton - cpu| = {worst:e}", got.len());
    assert!(worst <= MAP_ATOL, "{what}: max diff {worst}");
}

fn texts(msgs: &[gst::Message], kind: gst::MessageType) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.type_() == kind)
        .map(|m| match m.view() {
            gst::MessageView::Warning(w) => format!("{} | {:?}", w.error(), w.debug()),
            gst::MessageView::Info(i) => format!("{} | {:?}", i.error(), i.debug()),
            _ => String::new(),
        })
        .collect()
}

#[test]
fn triton_maps_equal_the_cpu_engine_on_the_sample() {
    let srv = server_or_skip!("triton_maps_equal_the_cpu_engine_on_the_sample");
    let (p, maps) = sample_pipeline(&format!("backend=triton server-url={} model-name=dtfsal max-in-flight=2", srv.url()));
    let msgs = play(&p, &maps, 300, |_| {});
    assert!(texts(&msgs, gst::MessageType::Warning).is_empty(), "{:?}", texts(&msgs, gst::MessageType::Warning));
    assert_same_maps(&maps.lock().unwrap(), "backend=triton");
}

#[test]
fn triton_server_killed_mid_stream_warns_and_recovers() {
    let mut srv = server_or_skip!("triton_server_killed_mid_stream_warns_and_recovers");
    let url = srv.url();
    let (p, maps) = sample_pipeline(&format!("backend=triton server-url={url} timeout-ms=2000"));
    let mut killed_at = None;
    let mut restarted = false;
    let msgs = play(&p, &maps, 300, |n| {
        if killed_at.is_none() && n >= 20 {
            srv.kill();
            killed_at = Some((n, Instant::now()));
        }
        // down for at least 1.5 s, then back on the same address
        if let Some((_, t)) = killed_at
            && !restarted
            && t.elapsed() > Duration::from_millis(1500)
        {
            srv.restart();
            restarted = true;
        }
    });
    let (n_at_kill, _) = killed_at.expect("the server was killed mid-stream");
    assert!(restarted && n_at_kill < 132, "killed after {n_at_kill} frames");
    let warnings = texts(&msgs, gst::MessageType::Warning);
    assert_eq!(warnings.len(), 1, "one warning per outage: {warnings:?}");
    assert!(warnings[0].contains(&url) && warnings[0].contains("retrying"), "{warnings:?}");
    let infos = texts(&msgs, gst::MessageType::Info);
    assert!(infos.iter().any(|i| i.contains("answers again")), "{infos:?}");
    // sync mode retried every clip the dead server missed: all maps, equal to the CPU engine's
    assert_same_maps(&maps.lock().unwrap(), "backend=triton, server restarted");
}

#[test]
fn triton_unknown_model_and_no_server_fail_the_start_naming_them() {
    let srv = server_or_skip!("triton_unknown_model_and_no_server_fail_the_start_naming_them");
    let err = start_error(&format!("backend=triton server-url={} model-name=nosuchmodel", srv.url()));
    assert!(err.contains("nosuchmodel") && err.contains("not on the Triton server"), "{err}");
    let err = start_error(&format!("backend=triton server-url={} model-version=9", srv.url()));
    assert!(err.contains("version 9"), "{err}");
    drop(srv);
    // nothing listens there any more
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = l.local_addr().unwrap().to_string();
    drop(l);
    let err = start_error(&format!("backend=triton server-url={free} timeout-ms=2000"));
    assert!(err.contains(&free) && err.contains("unavailable"), "{err}");
}

#[test]
fn triton_properties_round_trip() {
    init();
    let e = gst::ElementFactory::make("dtfsal").build().unwrap();
    assert_eq!(e.property::<String>("server-url"), "127.0.0.1:8001");
    assert_eq!(e.property::<String>("model-name"), "dtfsal");
    assert_eq!(e.property::<u32>("max-in-flight"), 2);
    e.set_property_from_str("backend", "triton");
    e.set_property("server-url", "http://10.0.0.5:8001");
    e.set_property("model-name", "dtfsal_full");
    e.set_property("model-version", "3");
    e.set_property("timeout-ms", 250u32);
    e.set_property("max-in-flight", 8u32);
    assert_eq!(e.property_value("backend").serialize().unwrap().as_str(), "triton");
    assert_eq!(e.property::<String>("server-url"), "http://10.0.0.5:8001");
    assert_eq!(e.property::<String>("model-name"), "dtfsal_full");
    assert_eq!(e.property::<String>("model-version"), "3");
    assert_eq!(e.property::<u32>("timeout-ms"), 250);
    assert_eq!(e.property::<u32>("max-in-flight"), 8);
}
