//! Everything after the encoder on the GPU (twins of `neck.rs`, `tokens.rs`, `lteb.rs`, `dltfb.rs`,
//! `vggish.rs`, `temporal.rs`, `amfb.rs`, `decoder.rs`).

use dtfsal_kernels::gemm::Batch;
use dtfsal_kernels::{Act, Buf, ConvGeom};

use super::encoder::LoadError;
use super::layers::{Ctx, DTensor, GConv, GDeform, GLayerNorm, GLinear, Res, add_resized, matmul, trilinear};
use crate::config::{AmfbAudioMode, ModelConfig};
use crate::model::params::{BN_EPS, Params};
use crate::ops::deform::DeformConv2d;

/// Feature neck: temporal/channel reduction and top-down sums.
pub(crate) struct GpuNeck {
    reduce: Vec<GConv>,
    refine: Vec<GConv>,
}

impl GpuNeck {
    pub fn load(ctx: &Ctx, p: &Params) -> Result<Self, LoadError> {
        let mut reduce = vec![];
        for i in 0..4 {
            reduce.push(GConv::new(ctx, &p.conv3d(&format!("fe.reduce.{i}"), true, [2, 1, 1], [0, 0, 0], 1)?)?);
        }
        let mut refine = vec![];
        for i in 0..3 {
            refine.push(GConv::new(ctx, &p.conv3d(&format!("fe.refine.{i}"), false, [1, 1, 1], [0, 1, 1], 1)?)?);
        }
        Ok(Self { reduce, refine })
    }

    pub fn forward(&self, ctx: &Ctx, f: &[DTensor]) -> Res<Vec<DTensor>> {
        let thw = |t: &DTensor| [t.shape[1], t.shape[2], t.shape[3]];
        let r4 = self.reduce[3].forward(ctx, &f[3], Act::None)?;
        let mut t3 = self.reduce[2].forward(ctx, &f[2], Act::None)?;
        let d3 = thw(&t3);
        add_resized(ctx, &mut t3.view_mut(), d3, &r4)?;
        let mut t2 = self.reduce[1].forward(ctx, &f[1], Act::None)?;
        let d2 = thw(&t2);
        add_resized(ctx, &mut t2.view_mut(), d2, &t3)?;
        add_resized(ctx, &mut t2.view_mut(), d2, &r4)?;
        let mut t1 = self.reduce[0].forward(ctx, &f[0], Act::None)?;
        let d1 = thw(&t1);
        add_resized(ctx, &mut t1.view_mut(), d1, &t2)?;
        add_resized(ctx, &mut t1.view_mut(), d1, &r4)?;
        Ok(vec![self.refine[0].forward(ctx, &t1, Act::None)?, self.refine[1].forward(ctx, &t2, Act::None)?, self.refine[2].forward(ctx, &t3, Act::None)?, r4])
    }
}

/// Adaptive tokens of one level (LTEB steps 1-5). The tokens are resized to the level grid and projected
/// once at load (`q [D, N, h*w]`: resize and the projection conv are linear, so they commute with the
/// per-clip weighting); per clip: gate conv, pooled embedding, weights, one fused apply kernel.
pub(crate) struct GpuTokens {
    gate: GConv,
    linear_w: Buf<f32>,
    linear_b: Buf<f32>,
    q: DTensor,
    n: usize,
}

impl GpuTokens {
    /// `p` is `enhance.{i}.prompt`; `grid` the level's `[T, h, w]`.
    pub fn load(ctx: &Ctx, p: &Params, pre: &str, grid: [usize; 3]) -> Result<Self, LoadError> {
        let tokens = p.tensor(&format!("{pre}.tokens"))?; // [N, D, th, tw]
        let [n, d, th, tw] = tokens.dims4();
        // [N, D, th, tw] -> [D, N, th, tw]: the N tokens as the "time" axis of one volume
        let plane = th * tw;
        let mut dn = vec![0.0f32; n * d * plane];
        for i in 0..n {
            for c in 0..d {
                dn[(c * n + i) * plane..(c * n + i + 1) * plane].copy_from_slice(&tokens.data()[(i * d + c) * plane..(i * d + c + 1) * plane]);
            }
        }
        let vol = DTensor::upload(ctx, &crate::tensor::Tensor::from_vec(&[d, n, th, tw], dn))?;
        let resized = trilinear(ctx, &vol, [n, grid[1], grid[2]])?;
        let proj = GConv::new(ctx, &p.conv3d(&format!("{pre}.proj"), false, [1, 1, 1], [0, 1, 1], 1)?)?;
        let q = proj.forward(ctx, &resized, Act::None)?;
        let linear = p.linear(&format!("{pre}.linear"), true)?;
        Ok(Self {
            gate: GConv::new(ctx, &p.conv3d(&format!("{pre}.gate"), true, [1, 1, 1], [0, 1, 1], 1)?)?,
            linear_w: ctx.gpu.upload(linear.weight())?,
            linear_b: ctx.gpu.upload(linear.bias().expect("token linear has a bias"))?,
            q,
            n,
        })
    }

    /// `f · P'' + f (+ extra)` for `f [D, T, h, w]`.
    pub fn apply(&self, ctx: &Ctx, f: &DTensor, extra: Option<&DTensor>) -> Res<DTensor> {
        let [d, t, h, w] = f.dims4();
        let g = self.gate.forward(ctx, f, Act::None)?;
        let mut e = DTensor::zeros(ctx, &[t, d])?;
        ctx.gpu.gate_embedding(g.view(), &mut e.view_mut(), d, t, h * w)?;
        let mut wts = DTensor::zeros(ctx, &[t, self.n])?;
        ctx.gpu.token_weights(e.view(), self.linear_w.view(), self.linear_b.view(), &mut wts.view_mut(), t, d, self.n)?;
        let mut out = DTensor::zeros(ctx, &f.shape)?;
        ctx.gpu.token_apply(f.view(), self.q.view(), wts.view(), extra.map(|x| x.view()), &mut out.view_mut(), d, t, self.n, h * w)?;
        Ok(out)
    }
}

/// DLTFB (level 4): tokens plus the shift branch `fc2(LN(shift_H(dw(GELU(fc1(shift_W(F)))))))`.
pub(crate) struct GpuDltfb {
    tokens: GpuTokens,
    fc1: GConv,
    dw: GConv,
    norm: GLayerNorm,
    fc2: GConv,
}

impl GpuDltfb {
    pub fn load(ctx: &Ctx, p: &Params, d: usize, grid: [usize; 3]) -> Result<Self, LoadError> {
        let pre = "enhance.3";
        Ok(Self {
            tokens: GpuTokens::load(ctx, p, &format!("{pre}.prompt"), grid)?,
            fc1: GConv::new(ctx, &p.conv3d(&format!("{pre}.fc1"), true, [1, 1, 1], [0, 0, 0], 1)?)?,
            dw: GConv::new(ctx, &p.conv3d(&format!("{pre}.dw"), true, [1, 1, 1], [1, 1, 1], d)?)?,
            norm: GLayerNorm::new(ctx, &p.layer_norm(&format!("{pre}.norm"), 1e-5)?)?,
            fc2: GConv::new(ctx, &p.conv3d(&format!("{pre}.fc2"), true, [1, 1, 1], [0, 0, 0], 1)?)?,
        })
    }

    pub fn forward(&self, ctx: &Ctx, f: &DTensor) -> Res<DTensor> {
        let mut shifted = DTensor::zeros(ctx, &f.shape)?;
        ctx.gpu.axial_shift(f.view(), &mut shifted.view_mut(), f.dims4(), true)?;
        let x = self.fc1.forward(ctx, &shifted, Act::Gelu)?;
        let x = self.dw.forward(ctx, &x, Act::None)?;
        let x = self.norm.shift_h_channels(ctx, &x)?;
        let sh = self.fc2.forward(ctx, &x, Act::None)?;
        self.tokens.apply(ctx, f, Some(&sh))
    }
}

/// Frozen VGGish conv trunk.
pub(crate) struct GpuVggish {
    convs: Vec<GConv>,
}

const VGGISH_CONVS: [usize; 6] = [0, 3, 6, 8, 11, 13];
const VGGISH_POOL_AFTER: [bool; 6] = [true, true, false, true, false, true];

impl GpuVggish {
    pub fn load(ctx: &Ctx, p: &Params) -> Result<Self, LoadError> {
        let mut convs = vec![];
        for i in VGGISH_CONVS {
            convs.push(GConv::new(ctx, &p.conv2d(&format!("audio.vggish.features.{i}"), true, 1)?)?);
        }
        Ok(Self { convs })
    }

    /// `audio [S, 1, Ha, Wa]` -> `[C, S, Ha/16, Wa/16]`.
    pub fn forward(&self, ctx: &Ctx, audio: DTensor) -> Res<DTensor> {
        let s = audio.shape.clone();
        let mut x = audio.reshape(&[1, s[0], s[2], s[3]]);
        for (conv, pool) in self.convs.iter().zip(VGGISH_POOL_AFTER) {
            x = conv.forward(ctx, &x, Act::Relu)?;
            if pool {
                let [c, t, h, w] = x.dims4();
                let g = ConvGeom::new(c, [t, h, w], [1, 2, 2], [1, 2, 2], [0, 0, 0]);
                let o = g.out_thw();
                let mut y = DTensor::zeros(ctx, &[c, o[0], o[1], o[2]])?;
                ctx.gpu.maxpool3d(x.view(), &mut y.view_mut(), g)?;
                x = y;
            }
        }
        Ok(x)
    }
}

/// Audio temporal enhancement: patch embedding + per-slice position, one pre-norm transformer layer.
pub(crate) struct GpuTemporal {
    embed: Option<(GLayerNorm, GLinear, GLayerNorm, Buf<f32>)>,
    attn_norm: GLayerNorm,
    to_qkv: GLinear,
    to_out: GLinear,
    ff_norm: GLayerNorm,
    fc1: GLinear,
    fc2: GLinear,
    norm: GLayerNorm,
    heads: usize,
    dim_head: usize,
}

impl GpuTemporal {
    pub fn load(ctx: &Ctx, p: &Params, cfg: &ModelConfig) -> Result<Self, LoadError> {
        let pre = "audio.te";
        let ln = |name: &str| -> Result<GLayerNorm, LoadError> { Ok(GLayerNorm::new(ctx, &p.layer_norm(&format!("{pre}.{name}"), 1e-5)?)?) };
        let lin = |name: &str, bias: bool| -> Result<GLinear, LoadError> { Ok(GLinear::new(ctx, &p.linear(&format!("{pre}.{name}"), bias)?)?) };
        let embed = if cfg.te_use_patch_embed {
            Some((ln("embed_norm1")?, lin("embed_fc", true)?, ln("embed_norm2")?, ctx.gpu.upload(&p.vec(&format!("{pre}.pos"))?)?))
        } else {
            None
        };
        Ok(Self {
            embed,
            attn_norm: ln("layers.0.0.norm")?,
            to_qkv: lin("layers.0.0.to_qkv", false)?,
            to_out: lin("layers.0.0.to_out", true)?,
            ff_norm: ln("layers.0.1.norm")?,
            fc1: lin("layers.0.1.fc1", true)?,
            fc2: lin("layers.0.1.fc2", true)?,
            norm: ln("norm")?,
            heads: cfg.te_heads,
            dim_head: cfg.te_dim_head,
        })
    }

    /// `a [C, S, h, w]` -> `[C, S, h, w]`.
    pub fn forward(&self, ctx: &Ctx, a: &DTensor) -> Res<DTensor> {
        let [c, s, h, w] = a.dims4();
        let n = s * h * w;
        let mut x = DTensor::zeros(ctx, &[n, c])?;
        ctx.gpu.transpose(a.view(), c, n, &mut x.view_mut())?;
        if let Some((n1, fc, n2, pos)) = &self.embed {
            n1.inplace(ctx, &mut x.view_mut())?;
            x = fc.forward(ctx, x.view(), n, Act::None)?;
            n2.inplace(ctx, &mut x.view_mut())?;
            ctx.gpu.add_row_group_scalar(&mut x.view_mut(), pos.view(), c, h * w)?;
        }
        let (hd, dh) = (self.heads, self.dim_head);
        let inner = hd * dh;
        let qkv = self.to_qkv.forward(ctx, self.attn_norm.copy(ctx, &x)?.view(), n, Act::None)?; // [n, 3*inner]
        // per head, straight from the qkv matrix: q at column h*dh, k at inner + h*dh, v at 2*inner + h*dh
        let mut sc = DTensor::zeros(ctx, &[hd, n, n])?;
        let ld = 3 * inner;
        let span = (n - 1) * ld + dh + (hd - 1) * dh;
        let qv = qkv.buf.slice(0, span);
        let kv = qkv.buf.slice(inner, span);
        let vv = qkv.buf.slice(2 * inner, span);
        matmul(ctx, n, n, dh, (qv, ld, false), (kv, ld, true), &mut sc.view_mut(), n, (dh as f32).powf(-0.5), 0.0, Batch { count: hd, stride_a: dh, stride_b: dh, stride_c: n * n })?;
        ctx.gpu.softmax_relpos(&mut sc.view_mut(), n, None, n, n)?;
        let mut merged = DTensor::zeros(ctx, &[n, inner])?;
        let mspan = (n - 1) * inner + dh + (hd - 1) * dh;
        matmul(ctx, n, dh, n, (sc.view(), n, false), (vv, ld, false), &mut merged.buf.slice_mut(0, mspan), inner, 1.0, 0.0, Batch { count: hd, stride_a: n * n, stride_b: dh, stride_c: dh })?;
        self.to_out.forward_into(ctx, merged.view(), n, &mut x.view_mut(), 1.0, Act::None)?;
        let f = self.fc1.forward(ctx, self.ff_norm.copy(ctx, &x)?.view(), n, Act::Gelu)?;
        self.fc2.forward_into(ctx, f.view(), n, &mut x.view_mut(), 1.0, Act::None)?;
        self.norm.inplace(ctx, &mut x.view_mut())?;
        let mut out = DTensor::zeros(ctx, &[c, s, h, w])?;
        ctx.gpu.transpose(x.view(), n, c, &mut out.view_mut())?;
        Ok(out)
    }
}

/// AMFB: local / global conv streams, the audio-driven deformable stream, fused score + weighted sum.
pub(crate) struct GpuAmfb {
    local: GConv,
    glob: GConv,
    audio_proj: GConv,
    offset: GConv,
    deform: GDeform,
    score_w: Buf<f32>,
    score_b: Buf<f32>,
    concat: bool,
}

impl GpuAmfb {
    pub fn load(ctx: &Ctx, p: &Params, cfg: &ModelConfig, i: usize) -> Result<Self, LoadError> {
        let pre = format!("amfb.{i}");
        let mut local = p.conv3d(&format!("{pre}.local.0"), true, [1, 1, 1], [0, 1, 1], 1)?;
        p.batch_norm(&format!("{pre}.local.1"))?.fold_into(&mut local);
        let mut glob = p.conv3d(&format!("{pre}.glob.0"), true, [1, 1, 1], [0, 2, 2], 1)?;
        p.batch_norm(&format!("{pre}.glob.1"))?.fold_into(&mut glob);
        let mut deform = DeformConv2d::new(p.tensor(&format!("{pre}.deform.weight"))?, p.vec(&format!("{pre}.deform.bias"))?);
        let bn = p.batch_norm(&format!("{pre}.adapt_post.0"))?;
        deform.fold_batch_norm(&bn.gamma, &bn.beta, &bn.mean, &bn.var, BN_EPS);
        let score = p.linear(&format!("{pre}.score"), true)?;
        Ok(Self {
            local: GConv::new(ctx, &local)?,
            glob: GConv::new(ctx, &glob)?,
            audio_proj: GConv::new(ctx, &p.conv3d(&format!("{pre}.audio_proj"), true, [1, 1, 1], [0, 0, 0], 1)?)?,
            offset: GConv::new(ctx, &p.conv2d(&format!("{pre}.deform.offset"), true, 1)?)?,
            deform: GDeform::new(ctx, &deform)?,
            score_w: ctx.gpu.upload(score.weight())?,
            score_b: ctx.gpu.upload(score.bias().expect("score has a bias"))?,
            concat: cfg.amfb_audio_mode == AmfbAudioMode::Concat,
        })
    }

    /// `f [D, T, h, w]`, `a [C_a, S, h_a, w_a]` -> `[D, T, h, w]`.
    pub fn forward(&self, ctx: &Ctx, f: &DTensor, a: &DTensor) -> Res<DTensor> {
        let [d, t, h, w] = f.dims4();
        let sp = t * h * w;
        let ap = self.audio_proj.forward(ctx, a, Act::None)?;
        let cin = if self.concat { 2 * d } else { d };
        let mut x = DTensor::zeros(ctx, &[cin, t, h, w])?;
        ctx.gpu.add_inplace(&mut x.buf.slice_mut(0, d * sp), f.view())?;
        let off = if self.concat { d * sp } else { 0 };
        add_resized(ctx, &mut x.buf.slice_mut(off, d * sp), [t, h, w], &ap)?;
        drop(ap);
        let offsets = self.offset.forward(ctx, &x, Act::None)?; // [18, T, h, w]
        // the three streams, ReLU'd, contiguous [3, D, S]
        let mut streams = DTensor::zeros(ctx, &[3, d, sp])?;
        self.local.forward_into(ctx, f.view(), f.dims4(), &mut streams.buf.slice_mut(0, d * sp), Act::Relu)?;
        self.glob.forward_into(ctx, f.view(), f.dims4(), &mut streams.buf.slice_mut(d * sp, d * sp), Act::Relu)?;
        self.deform.forward_into(ctx, &x, &offsets, &mut streams.buf.slice_mut(2 * d * sp, d * sp), Act::Relu)?;
        let mut pooled = DTensor::zeros(ctx, &[3 * d])?;
        ctx.gpu.row_mean(streams.view(), &mut pooled.view_mut(), 3 * d, sp)?;
        let mut out = DTensor::zeros(ctx, &f.shape)?;
        ctx.gpu.amfb_fuse(streams.view(), pooled.view(), self.score_w.view(), self.score_b.view(), &mut out.view_mut())?;
        Ok(out)
    }
}

enum Step {
    Conv(Box<GConv>),
    Relu,
    Up(usize),
    Sigmoid,
}

/// One TMFI-Net decoder: temporal convs 8 -> 4 -> 2 -> 1, upsampling to the input size.
pub(crate) struct GpuDecoder {
    steps: Vec<Step>,
}

impl GpuDecoder {
    pub fn load(ctx: &Ctx, p: &Params, level: usize) -> Result<Self, LoadError> {
        let tc = |idx: usize| -> Result<Step, LoadError> { Ok(Step::Conv(Box::new(GConv::new(ctx, &p.conv3d(&format!("decoders.{level}.{idx}"), false, [2, 1, 1], [0, 1, 1], 1)?)?))) };
        let mut steps = vec![tc(0)?, Step::Relu, Step::Up(2), tc(3)?, Step::Relu, Step::Up(2), tc(6)?, Step::Relu];
        let last = if level == 0 { 8 } else { 9 };
        if level >= 1 {
            steps.push(Step::Up(2));
        }
        steps.push(Step::Conv(Box::new(GConv::new(ctx, &p.conv3d(&format!("decoders.{level}.{last}"), false, [1, 1, 1], [0, 1, 1], 1)?)?)));
        match level {
            2 => steps.push(Step::Up(2)),
            3 => steps.push(Step::Up(4)),
            _ => {}
        }
        steps.push(Step::Sigmoid);
        Ok(Self { steps })
    }

    /// `[D, 8, h, w]` -> `[1, 1, H, W]`; a conv directly followed by ReLU / sigmoid runs it as its epilogue.
    pub fn forward(&self, ctx: &Ctx, x: &DTensor) -> Res<DTensor> {
        let mut cur: Option<DTensor> = None;
        let mut i = 0;
        while i < self.steps.len() {
            let input = cur.as_ref().unwrap_or(x);
            let next = match &self.steps[i] {
                Step::Conv(c) => {
                    let act = match self.steps.get(i + 1) {
                        Some(Step::Relu) => Act::Relu,
                        Some(Step::Sigmoid) => Act::Sigmoid,
                        _ => Act::None,
                    };
                    if act != Act::None {
                        i += 1;
                    }
                    c.forward(ctx, input, act)?
                }
                Step::Up(s) => {
                    let [_, t, h, w] = input.dims4();
                    trilinear(ctx, input, [t, h * s, w * s])?
                }
                Step::Relu | Step::Sigmoid => {
                    let act = if matches!(self.steps[i], Step::Relu) { Act::Relu } else { Act::Sigmoid };
                    let mut y = DTensor::zeros(ctx, &input.shape)?;
                    ctx.gpu.add_inplace(&mut y.view_mut(), input.view())?;
                    let c = y.shape[0];
                    ctx.gpu.bias_act_channels(&mut y.view_mut(), None, c, act)?;
                    y
                }
            };
            cur = Some(next);
            i += 1;
        }
        Ok(cur.expect("decoder has steps"))
    }
}
