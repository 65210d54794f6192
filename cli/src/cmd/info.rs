use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Weight file (safetensors with the model config in its metadata).
    #[arg(long)]
    pub weights: PathBuf,
}

pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
