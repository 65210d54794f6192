//! The Triton backend (cargo feature `triton`) against a real Triton Inference Server on loopback
//! (tests/triton/server.rs: the nvidia-pytriton CPU server scripts/setup.sh installs, serving the embedded
//! demo model exported to ONNX): the map equals the CPU engine's, server errors are classified and name
//! the model, and the client reconnects after a server restart. Skips with a message only when the
//! server is not installed.
#![cfg(feature = "triton")]

use std::time::Duration;

use dtfsal_engine::model::{Backend, Clip, Model, ModelError, TritonErrorKind, TritonOptions};
use dtfsal_engine::tensor::Tensor;

#[path = "../../tests/triton/server.rs"]
mod server;
use server::TritonServer;

/// Map tolerance, Triton (python backend running ONNX Runtime) vs the CPU engine (issue #11: 1e-4).
const MAP_ATOL: f32 = 1e-4;

fn clip(cfg: &dtfsal_engine::config::ModelConfig, seed: u32) -> Clip {
    // a deterministic, non-trivial clip: smooth patterns in the normalised range
    let n = 3 * cfg.clip_len * cfg.height * cfg.width;
    let video = (0..n).map(|i| (i as f32 * 0.013 + seed as f32).sin() * 1.5).collect();
    let a = cfg.audio_slices * cfg.audio_height * cfg.audio_width;
    let audio = (0..a).map(|i| (i as f32 * 0.007 + seed as f32 * 0.3).cos() * 2.0 - 3.0).collect();
    Clip {
        video: Tensor::from_vec(&[3, cfg.clip_len, cfg.height, cfg.width], video),
        audio: Some(Tensor::from_vec(&[cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width], audio)),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

macro_rules! server_or_skip {
    ($test:literal, $name:expr) => {{
        let started = server::demo_repo($name).and_then(|repo| TritonServer::start(&repo));
        match started {
            Ok(s) => s,
            Err(why) => {
                eprintln!("SKIPPED {}: {why}", $test);
                return;
            }
        }
    }};
}

#[test]
fn triton_map_equals_the_cpu_engine_errors_and_reconnect() {
    let mut srv = server_or_skip!("triton_map_equals_the_cpu_engine_errors_and_reconnect", "dtfsal");
    let opts = TritonOptions { url: srv.url(), model: "dtfsal".into(), version: String::new(), timeout: Duration::from_secs(30) };
    let remote = Model::load_triton(&opts).expect("load from the server");
    let local = Model::load_with_threads(server::demo_weights(), Backend::Cpu, 2).unwrap();
    assert_eq!(remote.config(), local.config(), "the config read from config.pbtxt is the model's");
    assert_eq!(remote.backend(), "triton");
    for seed in 0..2 {
        let c = clip(local.config(), seed);
        let (a, b) = (remote.predict(&c).unwrap(), local.predict(&c).unwrap());
        assert_eq!((a.width, a.height), (b.width, b.height));
        let d = max_diff(&a.data, &b.data);
        eprintln!("clip {seed}: max |triton - cpu| = {d:e}");
        assert!(d <= MAP_ATOL, "clip {seed}: max diff {d}");
    }

    // unknown model and version: NotFound, naming them
    for (model, version, name) in [("nosuchmodel", "", "nosuchmodel"), ("dtfsal", "7", "version 7")] {
        let o = TritonOptions { model: model.into(), version: version.into(), ..opts.clone() };
        match Model::load_triton(&o) {
            Err(ModelError::Triton { kind: TritonErrorKind::NotFound, message }) => {
                assert!(message.contains(name) && message.contains(&srv.url()), "{message}")
            }
            Err(e) => panic!("{model}/{version}: expected NotFound, got {e:?}"),
            Ok(_) => panic!("{model}/{version}: loaded"),
        }
    }

    // the server killed: Unavailable (transient), then the same client works again after a restart
    let c = clip(local.config(), 3);
    let want = local.predict(&c).unwrap();
    srv.kill();
    let e = remote.predict(&c).expect_err("no server");
    assert!(e.is_transient(), "{e:?}");
    assert!(matches!(e, ModelError::Triton { kind: TritonErrorKind::Unavailable, .. }), "{e:?}");
    assert!(e.to_string().contains(&srv.url()), "{e}");
    srv.restart();
    let mut got = None;
    for _ in 0..20 {
        match remote.predict(&c) {
            Ok(m) => {
                got = Some(m);
                break;
            }
            Err(e) if e.is_transient() => std::thread::sleep(Duration::from_millis(250)),
            Err(e) => panic!("after restart: {e}"),
        }
    }
    let got = got.expect("the client reconnects after the restart");
    assert!(max_diff(&got.data, &want.data) <= MAP_ATOL);

    // no server at all: a clear Unavailable at load, naming the address
    drop(srv);
    let e = Model::load_triton(&opts).err().expect("no server");
    assert!(e.is_transient() && e.to_string().contains(&opts.url), "{e}");
}

#[test]
fn triton_deadline_and_bad_url() {
    // a URL that cannot be parsed is not transient
    let bad = TritonOptions { url: "http://bad host:1".into(), ..Default::default() };
    let e = Model::load_triton(&bad).err().expect("bad url");
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("bad host"), "{e}");
    // a listener that never answers: DeadlineExceeded within the timeout
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let o = TritonOptions { url: l.local_addr().unwrap().to_string(), timeout: Duration::from_millis(300), ..Default::default() };
    let t = std::time::Instant::now();
    let e = Model::load_triton(&o).err().expect("no answer");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(matches!(e, ModelError::Triton { kind: TritonErrorKind::DeadlineExceeded, .. }), "{e:?}");
    assert!(e.to_string().contains("300 ms"), "{e}");
}
