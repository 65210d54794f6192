//! The `dtfsal` command.
use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "dtfsal", version, about = "DTFSal audio-visual video saliency: prediction, evaluation, benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark the CPU engine against PyTorch (same weights, clip and threads): ms/clip, peak RSS.
    Bench(cmd::bench::Args),
    /// Triton backend vs the local CPU engine: per-clip round trip, and throughput of several clients on one server.
    BenchTriton(cmd::bench_triton::Args),
    /// Score saliency maps against a dataset (STAViS, DHF1K): CC, NSS, AUC-Judd, SIM, KLD, sAUC.
    Eval(cmd::eval::Args),
    /// Run one forward pass on `input/video` (+ `input/audio`) from a tensor file.
    Forward(cmd::forward::Args),
    /// Print the model config and tensor summary of a weight file.
    Info(cmd::info::Args),
    /// Audio front end: a 16 kHz mono WAV -> the `audio` [9,1,112,192] log-mel input of one clip.
    Mel(cmd::mel::Args),
    /// Saliency of a video file (any format GStreamer reads): per-frame PNG maps or an overlay mp4.
    Predict(cmd::predict::Args),
    /// Write a Triton Inference Server model repository (config.pbtxt + model) for an exported ONNX file.
    TritonRepo(cmd::triton_repo::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(a) => cmd::bench::run(a),
        Command::BenchTriton(a) => cmd::bench_triton::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Forward(a) => cmd::forward::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Mel(a) => cmd::mel::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::TritonRepo(a) => cmd::triton_repo::run(a),
    }
}
