//! Shared by the CLI tests that run the `dtfsal` binary from the repository root.
use std::process::{Command, Output};

/// Runs `dtfsal ARGS` from the repository root (relative paths such as `media/` resolve there).
pub fn dtfsal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("running dtfsal")
}

/// The command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
