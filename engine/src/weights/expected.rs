//! The complete tensor list of a DTFSal model, generated from its [`ModelConfig`].
//!
//! Names and shapes follow the PyTorch reference model's `state_dict()` exactly (spec
//! `weights-dtfsal-av.tsv`), minus BatchNorm `num_batches_tracked`, which the project's weight
//! format never stores. A weight file is checked against this list before any tensor is used,
//! so a wrong or truncated checkpoint fails with the names of the offending tensors instead of
//! a shape error deep inside the forward pass.
use crate::config::{AmfbAudioMode, ModelConfig};

/// One expected tensor: its state-dict name and its shape.
pub type TensorSpec = (String, Vec<usize>);

/// Kernel of the MViTv2 attention pooling convs (torchvision `mvit_v2_s`: 3×3×3).
const POOL_KERNEL: [usize; 3] = [3, 3, 3];
/// Temporal/spatial kernel of the MViTv2 patch embedding (torchvision `mvit_v2_s`).
const PATCH_KERNEL: [usize; 3] = [3, 7, 7];
/// Temporal/spatial stride of the MViTv2 patch embedding.
const PATCH_STRIDE: [usize; 3] = [2, 4, 4];
/// kv pooling stride of the first stage; it halves with each later stage.
const STAGE0_KV_STRIDE: usize = 8;
/// Number of AMFB streams scored by the tri-stream weighting.
const AMFB_STREAMS: usize = 3;
/// Deformable-conv offsets: 2 coordinates for each tap of a 3×3 kernel.
const DEFORM_OFFSETS: usize = 2 * 3 * 3;
/// `nn.Sequential` index of the VGGish convolutions (ReLU and MaxPool take the other slots).
const VGGISH_CONV_INDEX: [usize; 6] = [0, 3, 6, 8, 11, 13];
/// Number of decoders (one per pyramid level) fused at the end.
const LEVELS: usize = 4;

/// Shapes of one MultiscaleBlock, replicating torchvision's `MViT.__init__` arithmetic.
struct BlockShape {
    dim_in: usize,
    dim_out: usize,
    head_dim: usize,
    /// Rows of `rel_pos_h` / `rel_pos_w`.
    rel_pos_spatial: usize,
    /// Rows of `rel_pos_t`.
    rel_pos_temporal: usize,
}

/// Per-block shapes of the MViTv2 trunk.
///
/// torchvision starts from `input_size = [T/2, S0/4, S1/4]` (the patch-embedding grid of the
/// size the net was built for), divides it by each block's q stride, and sizes the rel-pos
/// tables from `q_size = max(input_size[1:]) / stride_q`, `kv_size = max(input_size[1:]) / stride_kv`.
fn mvit_blocks(c: &ModelConfig) -> Vec<BlockShape> {
    let mut input_size = [
        c.mvit_temporal_size / PATCH_STRIDE[0],
        c.mvit_spatial_size[0] / PATCH_STRIDE[1],
        c.mvit_spatial_size[1] / PATCH_STRIDE[2],
    ];
    let mut blocks = Vec::with_capacity(c.num_blocks());
    let mut dim_in = c.embed_dim;
    for stage in 0..4 {
        let dim_out = c.stage_dim(stage);
        let kv_stride = (STAGE0_KV_STRIDE >> stage).max(1);
        for i in 0..c.stage_depths[stage] {
            let q_stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let size = input_size[1].max(input_size[2]);
            let (q_size, kv_size) = (size / q_stride, size / kv_stride);
            blocks.push(BlockShape {
                dim_in,
                dim_out,
                head_dim: dim_out / c.stage_heads[stage],
                rel_pos_spatial: (2 * q_size.max(kv_size)).saturating_sub(1),
                rel_pos_temporal: (2 * input_size[0]).saturating_sub(1),
            });
            input_size = [
                input_size[0],
                input_size[1] / q_stride,
                input_size[2] / q_stride,
            ];
            dim_in = dim_out;
        }
    }
    blocks
}

/// Collects `(name, shape)` pairs in state-dict order.
struct Builder(Vec<TensorSpec>);

impl Builder {
    fn add(&mut self, name: impl Into<String>, shape: &[usize]) {
        self.0.push((name.into(), shape.to_vec()));
    }
    /// A layer with `weight` of `shape` and a bias of `shape[0]`.
    fn affine(&mut self, prefix: &str, shape: &[usize]) {
        self.add(format!("{prefix}.weight"), shape);
        self.add(format!("{prefix}.bias"), &shape[..1]);
    }
    /// LayerNorm: weight and bias of `dim`.
    fn norm(&mut self, prefix: &str, dim: usize) {
        self.affine(prefix, &[dim]);
    }
    /// BatchNorm in eval mode: affine parameters plus running statistics.
    fn batch_norm(&mut self, prefix: &str, dim: usize) {
        self.norm(prefix, dim);
        self.add(format!("{prefix}.running_mean"), &[dim]);
        self.add(format!("{prefix}.running_var"), &[dim]);
    }
}

/// Every tensor the model described by `c` needs, with its shape, in state-dict order.
///
/// `c` should be valid ([`ModelConfig::validate`]): an invalid config (zero heads, absurd sizes
/// whose shape arithmetic would overflow) has no tensor list, and gets an empty one.
pub fn expected_tensors(c: &ModelConfig) -> Vec<TensorSpec> {
    if c.validate().is_err() {
        return Vec::new();
    }
    let mut b = Builder(Vec::with_capacity(640));
    encoder(&mut b, c);
    neck(&mut b, c);
    enhance(&mut b, c);
    if c.variant.has_audio() {
        audio(&mut b, c);
        amfb(&mut b, c);
    }
    decoders(&mut b, c);
    b.0
}

/// MViTv2-S trunk plus the three new stage LayerNorms (spec §3).
fn encoder(b: &mut Builder, c: &ModelConfig) {
    let e = c.embed_dim;
    let [kt, kh, kw] = PATCH_KERNEL;
    b.affine("encoder.mvit.conv_proj", &[e, 3, kt, kh, kw]);
    b.add("encoder.mvit.pos_encoding.class_token", &[e]);
    for (i, blk) in mvit_blocks(c).iter().enumerate() {
        let p = format!("encoder.mvit.blocks.{i}");
        let (din, dout, hd) = (blk.dim_in, blk.dim_out, blk.head_dim);
        b.norm(&format!("{p}.norm1"), din);
        b.norm(&format!("{p}.norm2"), dout);
        b.add(format!("{p}.attn.rel_pos_h"), &[blk.rel_pos_spatial, hd]);
        b.add(format!("{p}.attn.rel_pos_w"), &[blk.rel_pos_spatial, hd]);
        b.add(format!("{p}.attn.rel_pos_t"), &[blk.rel_pos_temporal, hd]);
        b.affine(&format!("{p}.attn.qkv"), &[3 * dout, din]);
        b.affine(&format!("{p}.attn.project.0"), &[dout, dout]);
        for pool in ["pool_q", "pool_k", "pool_v"] {
            let [pt, ph, pw] = POOL_KERNEL;
            b.add(format!("{p}.attn.{pool}.pool.weight"), &[hd, 1, pt, ph, pw]);
            b.norm(&format!("{p}.attn.{pool}.norm_act.0"), hd);
        }
        b.affine(&format!("{p}.mlp.0"), &[4 * dout, dout]);
        b.affine(&format!("{p}.mlp.3"), &[dout, 4 * dout]);
        if din != dout {
            b.affine(&format!("{p}.project"), &[dout, din]);
        }
    }
    b.norm("encoder.mvit.norm", c.stage_dim(3));
    for s in 0..3 {
        b.norm(&format!("encoder.stage_norms.{s}"), c.stage_dim(s));
    }
}

/// Feature-enhancement neck: temporal/channel reductions and refinements (spec §4).
fn neck(b: &mut Builder, c: &ModelConfig) {
    let n = c.neck_dim;
    for s in 0..LEVELS {
        b.affine(&format!("fe.reduce.{s}"), &[n, c.stage_dim(s), 2, 1, 1]);
    }
    for s in 0..LEVELS - 1 {
        b.add(format!("fe.refine.{s}.weight"), &[n, n, 1, 3, 3]);
    }
}

/// LTEB at levels 0–2 and DLTFB (token branch + shifted MLP) at level 3 (spec §5–§6).
fn enhance(b: &mut Builder, c: &ModelConfig) {
    let (n, t) = (c.neck_dim, c.token_count);
    for l in 0..LEVELS {
        let p = format!("enhance.{l}");
        b.add(
            format!("{p}.prompt.tokens"),
            &[t, n, c.token_size[0], c.token_size[1]],
        );
        b.affine(&format!("{p}.prompt.gate"), &[n, n, 1, 3, 3]);
        b.affine(&format!("{p}.prompt.linear"), &[t, n]);
        b.add(format!("{p}.prompt.proj.weight"), &[n, n, 1, 3, 3]);
    }
    let p = format!("enhance.{}", LEVELS - 1);
    b.affine(&format!("{p}.fc1"), &[n, n, 1, 1, 1]);
    b.affine(&format!("{p}.dw"), &[n, 1, 3, 3, 3]);
    b.norm(&format!("{p}.norm"), n);
    b.affine(&format!("{p}.fc2"), &[n, n, 1, 1, 1]);
}

/// VGGish conv trunk and the audio temporal enhancement (spec §7).
fn audio(b: &mut Builder, c: &ModelConfig) {
    let mut cin = 1;
    for (idx, cout) in VGGISH_CONV_INDEX.iter().zip(c.vggish_channels) {
        b.affine(&format!("audio.vggish.features.{idx}"), &[cout, cin, 3, 3]);
        cin = cout;
    }
    let a = c.audio_dim();
    let inner = c.te_heads * c.te_dim_head;
    // The patch embedding exists even when unused (DiffSal keeps it as dead parameters).
    b.add("audio.te.pos", &[1, 1, c.audio_slices, 1, 1]);
    b.norm("audio.te.embed_norm1", a);
    b.affine("audio.te.embed_fc", &[a, a]);
    b.norm("audio.te.embed_norm2", a);
    b.norm("audio.te.layers.0.0.norm", a);
    b.add("audio.te.layers.0.0.to_qkv.weight", &[3 * inner, a]);
    b.affine("audio.te.layers.0.0.to_out", &[a, inner]);
    b.norm("audio.te.layers.0.1.norm", a);
    b.affine("audio.te.layers.0.1.fc1", &[c.te_mlp_dim, a]);
    b.affine("audio.te.layers.0.1.fc2", &[a, c.te_mlp_dim]);
    b.norm("audio.te.norm", a);
}

/// One audio-visual fusion block per level (spec §8).
fn amfb(b: &mut Builder, c: &ModelConfig) {
    let n = c.neck_dim;
    let deform_in = match c.amfb_audio_mode {
        AmfbAudioMode::Add => n,
        AmfbAudioMode::Concat => 2 * n,
    };
    for l in 0..LEVELS {
        let p = format!("amfb.{l}");
        b.affine(&format!("{p}.local.0"), &[n, n, 1, 3, 3]);
        b.batch_norm(&format!("{p}.local.1"), n);
        b.affine(&format!("{p}.glob.0"), &[n, n, 1, 5, 5]);
        b.batch_norm(&format!("{p}.glob.1"), n);
        b.affine(&format!("{p}.audio_proj"), &[n, c.audio_dim(), 1, 1, 1]);
        b.affine(&format!("{p}.deform"), &[n, deform_in, 3, 3]);
        b.affine(
            &format!("{p}.deform.offset"),
            &[DEFORM_OFFSETS, deform_in, 3, 3],
        );
        b.batch_norm(&format!("{p}.adapt_post.0"), n);
        b.affine(&format!("{p}.score"), &[AMFB_STREAMS, AMFB_STREAMS * n]);
    }
}

/// Four TMFI-style decoders and the fusion conv (spec §9).
///
/// Decoder 0 has no upsampling before its output conv, so that conv sits at `nn.Sequential`
/// index 8; the others have one more module in front of it (index 9).
fn decoders(b: &mut Builder, c: &ModelConfig) {
    let [d0, d1, d2] = c.decoder_dims;
    for l in 0..LEVELS {
        let p = format!("decoders.{l}");
        b.add(format!("{p}.0.weight"), &[d0, c.neck_dim, 2, 3, 3]);
        b.add(format!("{p}.3.weight"), &[d1, d0, 2, 3, 3]);
        b.add(format!("{p}.6.weight"), &[d2, d1, 2, 3, 3]);
        let last = if l == 0 { 8 } else { 9 };
        b.add(format!("{p}.{last}.weight"), &[1, d2, 1, 3, 3]);
    }
    b.affine("fuse", &[1, LEVELS, 1, 3, 3]);
}

/// Whether a tensor is a buffer (BatchNorm running statistics) rather than a learnable parameter.
pub fn is_buffer(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

/// Number of learnable parameters in a tensor list: buffers ([`is_buffer`]) are not counted,
/// matching PyTorch's `sum(p.numel() for p in model.parameters())` and the spec's budget.
pub fn param_count(tensors: &[TensorSpec]) -> usize {
    tensors
        .iter()
        .filter(|(n, _)| !is_buffer(n))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;

    /// The spec's weight list: `name<TAB>[d0, d1, ...]<TAB>dtype`.
    fn spec_tsv() -> Vec<TensorSpec> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/weights-dtfsal-av.tsv");
        let text = std::fs::read_to_string(path).expect("spec/weights-dtfsal-av.tsv is readable");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut cols = l.split('\t');
                let name = cols.next().unwrap().to_string();
                let shape = cols
                    .next()
                    .unwrap()
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let shape = shape
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse().unwrap())
                    .collect();
                (name, shape)
            })
            .filter(|(name, _)| !name.ends_with("num_batches_tracked"))
            .collect()
    }

    #[test]
    fn full_av_matches_spec_tsv_exactly() {
        let expected = expected_tensors(&ModelConfig::full(Variant::AudioVisual));
        let spec = spec_tsv();
        assert_eq!(spec.len(), 602 - 12, "TSV has 12 num_batches_tracked rows");
        for (i, (a, b)) in expected.iter().zip(&spec).enumerate() {
            assert_eq!(a, b, "entry {i}");
        }
        assert_eq!(expected.len(), spec.len());
    }

    #[test]
    fn full_param_counts_match_spec_budget() {
        assert_eq!(
            param_count(&expected_tensors(&ModelConfig::full(Variant::AudioVisual))),
            52_750_518
        );
        assert_eq!(
            param_count(&expected_tensors(&ModelConfig::full(Variant::Visual))),
            40_584_537
        );
        // Plus 4 AMFBs x 3 BatchNorms x (running_mean + running_var) x 192 buffer scalars.
        let av = expected_tensors(&ModelConfig::full(Variant::AudioVisual));
        let scalars: usize = av.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(scalars, 52_750_518 + 4 * 3 * 2 * 192);
    }

    #[test]
    fn visual_variant_has_no_audio_or_amfb() {
        let v = expected_tensors(&ModelConfig::full(Variant::Visual));
        assert!(
            v.iter()
                .all(|(n, _)| !n.starts_with("audio.") && !n.starts_with("amfb."))
        );
    }

    #[test]
    fn concat_mode_doubles_deform_inputs() {
        let mut c = ModelConfig::full(Variant::AudioVisual);
        c.amfb_audio_mode = AmfbAudioMode::Concat;
        let t = expected_tensors(&c);
        let shape = |name: &str| t.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
        assert_eq!(shape("amfb.2.deform.weight"), Some(vec![192, 384, 3, 3]));
        assert_eq!(
            shape("amfb.2.deform.offset.weight"),
            Some(vec![18, 384, 3, 3])
        );
    }

    #[test]
    fn names_are_unique() {
        let t = expected_tensors(&ModelConfig::full(Variant::AudioVisual));
        let set: std::collections::HashSet<_> = t.iter().map(|(n, _)| n).collect();
        assert_eq!(set.len(), t.len());
    }
}
