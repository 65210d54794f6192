//! `dtfsal forward`: one forward pass on tensors from a file (the parity and integration contract).
//!
//! Reads `input/video` [1,3,T,H,W] and, for the AV model, `input/audio` [1,9,1,112,192]; writes
//! `output/sal` [1,H,W] (plus every named intermediate with `--intermediates`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use dtfsal_engine::model::{Backend, Clip, Model, Trace};
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::{read_tensors, write_tensors};

#[derive(clap::Args)]
pub struct Args {
    /// Model weight file (safetensors with the config in its metadata).
    #[arg(long)]
    pub weights: PathBuf,
    /// Input tensors: `input/video` [1,3,T,H,W] and `input/audio` [1,9,1,112,192] (AV models).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `output/sal` [1,H,W].
    #[arg(long)]
    pub output: PathBuf,
    /// Also write every block-boundary tensor under its parity name.
    #[arg(long)]
    pub intermediates: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Takes `name` out of `inputs`, checks it is `[1, want...]`, and drops the batch axis.
fn batched(inputs: &mut BTreeMap<String, Tensor>, name: &str, want: &[usize], path: &std::path::Path) -> anyhow::Result<Tensor> {
    let t = inputs.remove(name).with_context(|| format!("{name}: not found in {}", path.display()))?;
    let mut full = vec![1];
    full.extend_from_slice(want);
    if t.shape() != full {
        bail!("{name}: expected shape {full:?}, got {:?}", t.shape());
    }
    Ok(t.reshape(want))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let model = Model::load_with_threads(&a.weights, Backend::Cpu, a.threads)?;
    let c = model.config().clone();
    let mut inputs = read_tensors(&a.input)?;
    let video = batched(&mut inputs, "input/video", &[3, c.clip_len, c.height, c.width], &a.input)?;
    let audio = if c.variant.has_audio() {
        Some(batched(&mut inputs, "input/audio", &[c.audio_slices, 1, c.audio_height, c.audio_width], &a.input)?)
    } else {
        None
    };
    let clip = Clip { video, audio };
    let t0 = Instant::now();
    let mut trace = Trace::new();
    let map = model.predict_traced(&clip, &mut trace)?;
    eprintln!("forward: {} {} {}x{} in {:.1} ms ({} threads)", c.name, c.variant, map.width, map.height, t0.elapsed().as_secs_f64() * 1e3, model.threads());
    let out: BTreeMap<String, Tensor> = if a.intermediates {
        trace
    } else {
        BTreeMap::from([("output/sal".to_string(), Tensor::from_vec(&[1, map.height, map.width], map.data))])
    };
    write_tensors(&a.output, &out, None)?;
    Ok(())
}
