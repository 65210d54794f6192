//! `dtfsal info`: what a weight file holds, and whether it fits its own config.
//!
//! Meant as the first thing to run on a converted checkpoint: it prints the stored config and
//! a tensor summary, then checks the tensor list against the one the config requires and exits
//! non-zero, naming every offending tensor, when they differ.
use std::path::PathBuf;

use dtfsal_engine::weights::WeightFile;

#[derive(clap::Args)]
pub struct Args {
    /// Weight file (safetensors with the model config in its metadata; default: the embedded demo model).
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let w = match &a.weights {
        Some(p) => WeightFile::open(p)?,
        None => dtfsal_engine::default_model::weight_file()?,
    };
    let c = w.config();
    println!("file:        {}", w.path().display());
    println!("part:        {}", w.part());
    println!("config:      {} (variant {})", c.name, c.variant);
    println!(
        "video input: {} frames x {}x{} RGB",
        c.clip_len, c.height, c.width
    );
    if c.variant.has_audio() {
        println!(
            "audio input: {} log-mel slices x {}x{}",
            c.audio_slices, c.audio_height, c.audio_width
        );
    } else {
        println!("audio input: none (visual-only model)");
    }
    println!("tensors:     {}", w.len());
    println!("parameters:  {}", group_thousands(w.param_count()));
    let dtypes: Vec<String> = w
        .dtype_counts()
        .iter()
        .map(|(d, n)| format!("{d} ({n} tensors)"))
        .collect();
    println!(
        "storage:     {}",
        if dtypes.is_empty() {
            "-".to_string()
        } else {
            dtypes.join(", ")
        }
    );
    w.check_model()?;
    println!(
        "check:       ok, matches the {} tensors the config requires",
        w.len()
    );
    Ok(())
}

/// `52750518` → `52,750,518`.
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::group_thousands(0), "0");
        assert_eq!(super::group_thousands(999), "999");
        assert_eq!(super::group_thousands(1000), "1,000");
        assert_eq!(super::group_thousands(52_750_518), "52,750,518");
    }
}
