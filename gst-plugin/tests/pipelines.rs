//! The cookbook scripts in `pipelines/` really run: `file-map.sh` on the bundled sample media,
//! with the embedded model (no MODEL), with a weight file (MODEL=...), and with the engine settings
//! (BACKEND=cuda-fp16 CUDA_GRAPHS=false BATCH=4: the GPU where there is one, else the CPU engine).
use std::path::{Path, PathBuf};
use std::process::Command;

/// Newest modification time of the files under `dir`.
fn newest(dir: &Path) -> std::time::SystemTime {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { newest(&p) } else { e.metadata().unwrap().modified().unwrap() }
        })
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// `<target dir>/<profile>` holding a libgstdtfsal.so built from the current sources. `cargo test` builds
/// the library only as an rlib, so the cdylib comes from `cargo build -p gst-dtfsal` (scripts/test.sh).
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf(); // .../target/<profile>/deps/x -> .../target/<profile>
    let so = dir.join("libgstdtfsal.so");
    let built = std::fs::metadata(&so).and_then(|m| m.modified());
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = newest(&src.join("src")).max(newest(&src.join("../engine/src")));
    assert!(
        built.as_ref().is_ok_and(|t| *t >= sources),
        "{} is missing or older than the sources: run `cargo build -p gst-dtfsal` first (scripts/test.sh does)",
        so.display()
    );
    dir
}

fn run_file_map(model: Option<&Path>, out: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile_dir = plugin_dir();
    // common.sh looks in $CARGO_TARGET_DIR/$DTFSAL_BUILD (default target dir: $REPO/target)
    let (target, build) = (profile_dir.parent().unwrap(), profile_dir.file_name().unwrap());
    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("pipelines/file-map.sh"))
        .env("OUT", out)
        .env("INTERVAL", "16")
        .env("THREADS", "2")
        .env("CARGO_TARGET_DIR", target)
        .env("DTFSAL_BUILD", build)
        .env_remove("MODEL")
        .envs(env.iter().copied());
    if let Some(m) = model {
        cmd.env("MODEL", m);
    }
    cmd.output().expect("bash runs")
}

#[test]
fn file_map_script_runs_with_the_embedded_and_a_given_model() {
    let tmp = std::env::temp_dir().join(format!("dtfsal-pipelines-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tiny-av.weights.safetensors");
    let cuda: &[(&str, &str)] = &[("BACKEND", "cuda-fp16"), ("CUDA_GRAPHS", "false"), ("BATCH", "4")];
    for (name, model, env) in [("embedded.mp4", None, &[][..]), ("given.mp4", Some(weights.as_path()), &[]), ("cuda-batch.mp4", None, cuda)] {
        let out = tmp.join(name);
        let res = run_file_map(model, &out, env);
        let log = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
        assert!(res.status.success(), "{name}: pipelines/file-map.sh failed:\n{log}");
        assert!(!log.contains("ERROR"), "{name}:\n{log}");
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{name}: {size} bytes written");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
