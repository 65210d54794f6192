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
    /// Print the model config and tensor summary of a weight file.
    Info(cmd::info::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info(a) => cmd::info::run(a),
    }
}
