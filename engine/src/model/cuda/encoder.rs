//! MViTv2 encoder on the GPU (twin of `model/encoder.rs`, `mvit_block.rs`, `attention.rs`): tokens
//! `[1 + THW, C]` stay on the device; q/k/v pooling reads the qkv matrix in place, logits come from
//! batched cuBLAS products with the rel-pos terms added inside the softmax kernel (or, with the candidate
//! `DTFSAL_CUDA_FLASH_ATTENTION`, the whole attention comes from one fused kernel).

use dtfsal_kernels::gemm::Batch;
use dtfsal_kernels::{Act, Buf, ConvGeom, Gpu, Mat, RelPosBias};

use super::layers::{Ctx, DTensor, GConv, GLayerNorm, GLinear, GemmIn, Res, matmul};
use crate::config::ModelConfig;
use crate::model::attention::{RelPos, Thw, pooled};
use crate::model::encoder::block_settings;
use crate::model::mvit_block::BlockSetting;
use crate::model::params::Params;
use crate::weights::WeightError;

/// Load-time failure: weights (shapes, names) or the device.
#[derive(Debug)]
pub(crate) enum LoadError {
    Weights(WeightError),
    Gpu(dtfsal_kernels::KernelError),
}

impl From<WeightError> for LoadError {
    fn from(e: WeightError) -> Self {
        Self::Weights(e)
    }
}

impl From<dtfsal_kernels::KernelError> for LoadError {
    fn from(e: dtfsal_kernels::KernelError) -> Self {
        Self::Gpu(e)
    }
}

struct Pool {
    /// depthwise `[d, 3, 3, 3]`
    w: Buf<f32>,
    norm: GLayerNorm,
    stride: [usize; 3],
}

struct Attention {
    qkv: GLinear,
    project: GLinear,
    pools: [Pool; 3],
    heads: usize,
    d: usize,
    /// gathered rel-pos tables `[Q*, K*, d]` for t, h, w
    rel: [Buf<f32>; 3],
    /// packed key grid positions ([`RelPosBias::key_table`])
    keys: Buf<u32>,
}

struct Block {
    norm1: GLayerNorm,
    norm2: GLayerNorm,
    attn: Attention,
    mlp1: GLinear,
    mlp2: GLinear,
    project: Option<GLinear>,
    set: BlockSetting,
    /// position in the encoder (profile labels)
    index: usize,
}

pub(crate) struct GpuEncoder {
    conv_proj: GConv,
    class_token: Buf<f32>,
    blocks: Vec<Block>,
    tap_norms: Vec<(usize, GLayerNorm)>,
}

impl GpuEncoder {
    pub fn load(ctx: &Ctx, p: &Params, cfg: &ModelConfig) -> Result<Self, LoadError> {
        let mut thw: Thw = [cfg.clip_len / 2, cfg.height / 4, cfg.width / 4];
        let mut blocks = vec![];
        for (i, set) in block_settings(cfg).into_iter().enumerate() {
            let pre = format!("encoder.mvit.blocks.{i}");
            let a = format!("{pre}.attn");
            let d = set.cout / set.heads;
            let pool = |name: &str, stride: [usize; 3]| -> Result<Pool, LoadError> {
                let conv = p.conv3d(&format!("{a}.{name}.pool"), false, stride, [1, 1, 1], d)?;
                Ok(Pool { w: ctx.gpu.upload(conv.weight())?, norm: GLayerNorm::new(ctx, &p.layer_norm(&format!("{a}.{name}.norm_act.0"), 1e-6)?)?, stride })
            };
            let tables = [p.tensor(&format!("{a}.rel_pos_t"))?, p.tensor(&format!("{a}.rel_pos_h"))?, p.tensor(&format!("{a}.rel_pos_w"))?];
            let rel = RelPos::new([&tables[0], &tables[1], &tables[2]], pooled(thw, set.stride_q), pooled(thw, set.stride_kv), d);
            blocks.push(Block {
                norm1: GLayerNorm::new(ctx, &p.layer_norm(&format!("{pre}.norm1"), 1e-6)?)?,
                norm2: GLayerNorm::new(ctx, &p.layer_norm(&format!("{pre}.norm2"), 1e-6)?)?,
                attn: Attention {
                    qkv: GLinear::new(ctx, &p.linear(&format!("{a}.qkv"), true)?)?,
                    project: GLinear::new(ctx, &p.linear(&format!("{a}.project.0"), true)?)?,
                    pools: [pool("pool_q", set.stride_q)?, pool("pool_k", set.stride_kv)?, pool("pool_v", set.stride_kv)?],
                    heads: set.heads,
                    d,
                    rel: [ctx.gpu.upload(&rel.t)?, ctx.gpu.upload(&rel.h)?, ctx.gpu.upload(&rel.w)?],
                    keys: ctx.gpu.upload(&RelPosBias::key_table(pooled(thw, set.stride_kv)))?,
                },
                mlp1: GLinear::new(ctx, &p.linear(&format!("{pre}.mlp.0"), true)?)?,
                mlp2: GLinear::new(ctx, &p.linear(&format!("{pre}.mlp.3"), true)?)?,
                project: if set.cin != set.cout { Some(GLinear::new(ctx, &p.linear(&format!("{pre}.project"), true)?)?) } else { None },
                set,
                index: i,
            });
            thw = pooled(thw, set.stride_q);
        }
        let eps = cfg.stage_norm_eps as f32;
        let mut tap_norms = vec![];
        let mut last = 0;
        for s in 0..4 {
            last += cfg.stage_depths[s];
            let name = if s < 3 { format!("encoder.stage_norms.{s}") } else { "encoder.mvit.norm".to_string() };
            tap_norms.push((last - 1, GLayerNorm::new(ctx, &p.layer_norm(&name, if s < 3 { eps } else { 1e-6 })?)?));
        }
        Ok(Self {
            conv_proj: GConv::new(ctx, &p.conv3d("encoder.mvit.conv_proj", true, [2, 4, 4], [1, 3, 3], 1)?)?,
            class_token: ctx.gpu.upload(&p.vec("encoder.mvit.pos_encoding.class_token")?)?,
            blocks,
            tap_norms,
        })
    }

    /// `video [3, T, H, W]` -> four maps `[C_s, T/2, H/4/2^s, W/4/2^s]`.
    pub fn forward(&self, ctx: &Ctx, video: &DTensor) -> Res<Vec<DTensor>> {
        let e = self.conv_proj.forward(ctx, video, Act::None)?;
        let [c0, t, h, w] = e.dims4();
        let sp = t * h * w;
        let mut x = DTensor::zeros(ctx, &[1 + sp, c0])?;
        ctx.gpu.add_inplace(&mut x.buf.slice_mut(0, c0), self.class_token.view())?;
        ctx.gpu.transpose(e.view(), c0, sp, &mut x.buf.slice_mut(c0, sp * c0))?;
        drop(e);
        ctx.lap(|| "encoder.embed".into());
        let mut thw = [t, h, w];
        let mut feats = vec![];
        for (i, block) in self.blocks.iter().enumerate() {
            let (y, q_thw) = block.forward(ctx, x, thw)?;
            x = y;
            thw = q_thw;
            if let Some((_, norm)) = self.tap_norms.iter().find(|(b, _)| *b == i) {
                norm.inplace(ctx, &mut x.view_mut())?;
                let c = x.shape[1];
                let n = thw.iter().product::<usize>();
                let mut f = DTensor::empty(ctx, &[c, thw[0], thw[1], thw[2]])?;
                ctx.gpu.transpose(x.buf.slice(c, n * c), n, c, &mut f.view_mut())?;
                feats.push(f);
            }
            ctx.lap(|| format!("encoder.block{i}.rest"));
        }
        Ok(feats)
    }
}

impl Block {
    /// `x [1 + THW, C_in]` -> (`[1 + T'H'W', C_out]`, new grid). Takes `x`: when the block keeps the grid
    /// and the width, its buffer becomes the output.
    fn forward(&self, ctx: &Ctx, x: DTensor, thw: Thw) -> Res<(DTensor, Thw)> {
        let n = 1 + thw.iter().product::<usize>();
        let cout = self.set.cout;
        let xn = self.norm1.copy_for_gemm(ctx, &x)?;
        let q_thw = pooled(thw, self.set.stride_q);
        let nq = 1 + q_thw.iter().product::<usize>();
        // skip path: projection of the normed input when the width changes, max-pooled when strided
        let skip_full = match &self.project {
            Some(p) => Some(p.forward_in(ctx, &xn, n, Act::None)?),
            None => None,
        };
        let skip = skip_full.unwrap_or(x);
        // out = skip + the attention projection's bias; the projection then accumulates into it
        let proj_bias = self.attn.project.bias();
        let mut out = if nq != n {
            let k = self.set.stride_q.map(|s| if s > 1 { s + 1 } else { s });
            let g = ConvGeom::new(cout, thw, k, self.set.stride_q, k.map(|k| k / 2));
            let mut y = DTensor::empty(ctx, &[nq, cout])?;
            ctx.gpu.maxpool_tokens(skip.view(), proj_bias, &mut y.view_mut(), g)?;
            y
        } else {
            let mut y = skip;
            if proj_bias.is_some() {
                ctx.gpu.bias_act_rows(&mut y.view_mut(), proj_bias, cout, Act::None)?;
            }
            y
        };
        let b = self.index;
        ctx.lap(|| format!("encoder.block{b}.norm+skip"));
        // x = skip + project(attention)
        let merged = self.attn.forward(ctx, &xn, thw, b)?;
        drop(xn);
        self.attn.project.accumulate_in(ctx, &merged, nq, &mut out.view_mut())?;
        ctx.lap(|| format!("encoder.block{b}.attn.project"));
        // x = x + MLP(LN2(x))
        let hidden = self.mlp1.forward_for_gemm(ctx, &self.norm2.copy_for_gemm(ctx, &out)?, nq, Act::Gelu)?;
        self.mlp2.forward_into_in(ctx, &hidden, nq, &mut out.view_mut(), 1.0, Act::None)?;
        ctx.lap(|| format!("encoder.block{b}.mlp"));
        Ok((out, q_thw))
    }
}

impl Attention {
    /// `xn [1 + THW, C_in]` (normed) -> merged heads `[1 + T'H'W', C_out]` (before the projection; f16 in
    /// fp16 mode, the projection's operand).
    /// `b`: the block's index (profile labels).
    fn forward(&self, ctx: &Ctx, xn: &GemmIn, thw: Thw, b: usize) -> Res<GemmIn> {
        let (heads, d) = (self.heads, self.d);
        let cout = heads * d;
        let n = 1 + thw.iter().product::<usize>();
        // [n, 3 * heads * d]; the pooling kernels add the bias as they read it
        let qkv = self.qkv.product_in(ctx, xn, n)?;
        ctx.lap(|| format!("encoder.block{b}.attn.qkv"));
        // Logits rows are padded to ld (a multiple of 8) columns. In fp16 the GEMMs run over all ld keys, so
        // every operand's contiguous extent is a multiple of 8 and cuBLAS takes its 16-byte-aligned tensor-
        // core kernels (with nk odd it fell back to 8x slower align-1 ones): k and v get ld - nk spare rows at
        // the end, so head h's padding keys read head h+1's first rows, or the spares; both are finite, and
        // their probabilities in P are zero.
        // q stays f32 (the rel-pos dots and the residual read it); in fp16 mode the k and v LayerNorms
        // write the f16 GEMM operands directly.
        let mut q = None;
        let mut kv = vec![];
        let mut grids = vec![];
        for (s, pool) in self.pools.iter().enumerate() {
            let g = ConvGeom::new(d, thw, [3, 3, 3], pool.stride, [1, 1, 1]);
            let o = g.out_thw();
            let m = 1 + o.iter().product::<usize>();
            let spare = if s > 0 && ctx.fp16 { m.next_multiple_of(8) - m } else { 0 };
            // the spare rows must be finite (zero): P's zero padding multiplies them
            let mut y = if spare > 0 { DTensor::zeros(ctx, &[heads * m + spare, d])? } else { DTensor::empty(ctx, &[heads * m, d])? };
            let src = qkv.buf.slice(s * cout, qkv.numel() - s * cout);
            let bias = self.qkv.bias().map(|b| b.slice(s * cout, cout));
            if ctx.candidates.pool_tiled && Gpu::pool_tokens_tiled_supported(g, 3 * cout, d) {
                ctx.gpu.pool_tokens_tiled(src, 3 * cout, d, pool.w.view(), bias, &mut y.view_mut(), heads, g)?;
            } else {
                ctx.gpu.pool_tokens(src, 3 * cout, d, pool.w.view(), bias, &mut y.view_mut(), heads, g)?;
            }
            if s == 0 {
                pool.norm.inplace(ctx, &mut y.view_mut())?;
                q = Some(y);
            } else {
                kv.push(pool.norm.copy_for_gemm(ctx, &y)?);
            }
            grids.push(o);
        }
        drop(qkv);
        ctx.lap(|| format!("encoder.block{b}.attn.pool"));
        let q = q.expect("the q pool comes first");
        let rel = RelPosBias { q: q.view(), tables: [self.rel[0].view(), self.rel[1].view(), self.rel[2].view()], keys: self.keys.view(), d, q_thw: grids[0], k_thw: grids[1] };
        self.attend(ctx, &q, &kv[0], &kv[1], rel, b)
    }

    /// Softmax attention of pooled `q`, `k`, `v` (`[heads, n, d]`, k and v maybe with spare rows) ->
    /// merged heads `[nq, heads * d]` with residual pooling, through the logits matrix: cuBLAS `q kᵀ`,
    /// the fused rel-pos + softmax kernel, cuBLAS `P v`, the head merge.
    fn attend(&self, ctx: &Ctx, q: &DTensor, k: &GemmIn, v: &GemmIn, rel: RelPosBias, b: usize) -> Res<GemmIn> {
        let (heads, d) = (self.heads, self.d);
        let nq = 1 + rel.q_thw.iter().product::<usize>();
        let nk = 1 + rel.k_thw.iter().product::<usize>();
        let ld = nk.next_multiple_of(8);
        let scale = 1.0 / (d as f32).sqrt();
        let batch = |sa: usize, sb: usize, sc: usize| Batch { count: heads, stride_a: sa, stride_b: sb, stride_c: sc };
        if ctx.fp16 && ctx.candidates.flash_attention && Gpu::attention_flash_supported(d, rel.k_thw) {
            // one kernel: logits, rel-pos, softmax, P v, residual pooling and the head merge
            let (GemmIn::F16(kh), GemmIn::F16(vh)) = (k, v) else { unreachable!("fp16 mode pools k and v into f16") };
            let mut merged = ctx.gpu.uninit::<u16>(nq * heads * d)?;
            ctx.gpu.attention_flash_f16(kh.view(), vh.view(), rel, &mut merged.view_mut(), heads, nq, nk, true)?;
            ctx.lap(|| format!("encoder.block{b}.attn.flash"));
            return Ok(GemmIn::F16(merged));
        }
        let mut o = DTensor::empty(ctx, &[heads, nq, d])?;
        if ctx.fp16 {
            // as fp16 autocast: f16 logits [heads, nq, ld] = (q / sqrt d) kᵀ over all ld keys (see `forward`),
            // then in place the f16 probabilities (+ decomposed rel-pos terms of the unscaled q, softmax in
            // f32; padding keys get 0), then P v
            let (GemmIn::F16(kh), GemmIn::F16(vh)) = (k, v) else { unreachable!("fp16 mode pools k and v into f16") };
            let qh = ctx.half(q.view())?;
            let mut p16 = ctx.gpu.uninit::<u16>(heads * nq * ld)?;
            ctx.gpu.gemm_f16_out(nq, ld, d, Mat::f16(qh.view(), d), Mat::f16(kh.view(), d).t(), &mut p16.view_mut(), ld, scale, 0.0, batch(nq * d, nk * d, nq * ld))?;
            ctx.lap(|| format!("encoder.block{b}.attn.qk"));
            ctx.gpu.softmax_relpos_f16(&mut p16.view_mut(), ld, Some(rel), nq, nk)?;
            ctx.lap(|| format!("encoder.block{b}.attn.softmax"));
            ctx.gpu.gemm(nq, d, ld, Mat::f16(p16.view(), ld), Mat::f16(vh.view(), d), &mut o.view_mut(), d, 1.0, 0.0, batch(nq * ld, nk * d, nq * d))?;
        } else {
            // logits [heads, nq, ld] = (q / sqrt d) kᵀ over the nk keys, softmax in place, P v
            let mut s = DTensor::empty(ctx, &[heads, nq, ld])?;
            let (GemmIn::F32(k), GemmIn::F32(v)) = (k, v) else { unreachable!("fp32 mode pools k and v into f32") };
            matmul(ctx, nq, nk, d, (q.view(), d, false), (k.view(), d, true), &mut s.view_mut(), ld, scale, 0.0, batch(nq * d, nk * d, nq * ld))?;
            ctx.lap(|| format!("encoder.block{b}.attn.qk"));
            ctx.gpu.softmax_relpos(&mut s.view_mut(), ld, Some(rel), nq, nk)?;
            ctx.lap(|| format!("encoder.block{b}.attn.softmax"));
            ctx.gpu.gemm(nq, d, nk, Mat::f32(s.view(), ld), Mat::f32(v.view(), d), &mut o.view_mut(), d, 1.0, 0.0, batch(nq * ld, nk * d, nq * d))?;
        }
        ctx.lap(|| format!("encoder.block{b}.attn.pv"));
        // residual pooling (spatial queries add their unscaled q), heads merged -> [nq, heads * d]
        if ctx.fp16 {
            let mut merged = ctx.gpu.uninit::<u16>(nq * heads * d)?;
            ctx.gpu.attn_merge_f16(o.view(), q.view(), &mut merged.view_mut(), heads, nq, d, true)?;
            return Ok(GemmIn::F16(merged));
        }
        let mut merged = DTensor::empty(ctx, &[nq, heads * d])?;
        ctx.gpu.attn_merge(o.view(), q.view(), &mut merged.view_mut(), heads, nq, d, true)?;
        Ok(GemmIn::F32(merged))
    }
}
