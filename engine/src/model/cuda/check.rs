//! GPU self-check used by `dtfsal-gpu-check` (and the GPU tests): per-kernel parity of every CUDA op
//! against its CPU twin in `crate::ops` / `crate::model`, whole-model parity, and timings. Every number
//! it prints is measured here; nothing is assumed.

use dtfsal_kernels::ops::{ColOut, FrameDesc, FrameFormat, Normalise, YuvCoeffs};
use dtfsal_kernels::{Act, ConvGeom, Gpu, KernelError, RelPosBias};

use super::layers::{Ctx, DTensor, GConv, GDeform, GLayerNorm, GLinear, GemmIn, trilinear};
use crate::model::{Axis, axial_shift};
use crate::ops::act::{gelu, mean, sigmoid, sigmoid_scalar, softmax_row};
use crate::ops::conv::Conv3d;
use crate::ops::deform::DeformConv2d;
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::ops::pool::max_pool3d;
use crate::ops::resize::trilinear as cpu_trilinear;
use crate::tensor::Tensor;

/// A deterministic pseudo-random stream (splitmix64), uniform in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn sym(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| scale * self.sym()).collect()
    }

    pub fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        Tensor::from_vec(shape, self.vec(shape.iter().product(), scale))
    }
}

/// One parity result: max |gpu - cpu| relative to max |cpu|.
#[derive(Clone, Debug)]
pub struct Parity {
    pub name: String,
    pub fp16: bool,
    pub rel_err: f64,
    pub max_abs: f64,
    pub tol: f64,
}

impl Parity {
    pub fn new(name: &str, fp16: bool, gpu: &[f32], cpu: &[f32]) -> Self {
        assert_eq!(gpu.len(), cpu.len(), "{name}: lengths differ");
        let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)).max(1e-6);
        let max_abs = gpu.iter().zip(cpu).fold(0.0f64, |m, (a, b)| if a.is_finite() { m.max((a - b).abs() as f64) } else { f64::INFINITY });
        Self { name: name.into(), fp16, rel_err: max_abs / scale, max_abs, tol: if fp16 { 1e-2 } else { 1e-4 } }
    }

    pub fn ok(&self) -> bool {
        self.rel_err <= self.tol
    }
}

fn dl(ctx: &Ctx, t: &DTensor) -> Result<Vec<f32>, KernelError> {
    Ok(t.download(ctx)?.into_vec())
}

/// f32 values as f16 bits (round to nearest even).
fn f16_bits(v: &[f32]) -> Vec<u16> {
    v.iter().map(|x| half::f16::from_f32(*x).to_bits()).collect()
}

/// f16 bits as f32 values.
fn f16_values(v: Vec<u16>) -> Vec<f32> {
    v.into_iter().map(|b| half::f16::from_bits(b).to_f32()).collect()
}

/// Per-kernel parity of every op, in f32 (and, for the GEMM ops, f16 operands when `fp16`).
pub fn kernel_parity(device: usize, fp16: bool) -> Result<Vec<Parity>, KernelError> {
    let ctx = Ctx::new(Gpu::new(device)?, fp16);
    let mut out = vec![];
    let mut rng = Rng(7);
    let tag = |s: &str| fp16_tag(s, fp16);

    // convolutions: im2col + GEMM (strided patch embed, (1,3,3) with bias + ReLU), pointwise + GELU, depthwise
    let x = rng.tensor(&[3, 6, 20, 28], 1.0);
    let conv = Conv3d::new(rng.tensor(&[16, 3, 3, 7, 7], 0.1), Some(rng.vec(16, 0.1)), [2, 4, 4], [1, 3, 3], 1);
    let gx = DTensor::upload(&ctx, &x)?;
    out.push(Parity::new(&tag("conv3d im2col+gemm (3,7,7)/(2,4,4)"), fp16, &dl(&ctx, &GConv::new(&ctx, &conv)?.forward(&ctx, &gx, Act::None)?)?, conv.forward(&x).data()));
    let x = rng.tensor(&[32, 4, 14, 24], 1.0);
    let gx = DTensor::upload(&ctx, &x)?;
    let conv = Conv3d::new(rng.tensor(&[24, 32, 1, 3, 3], 0.1), Some(rng.vec(24, 0.1)), [1, 1, 1], [0, 1, 1], 1);
    let mut want = conv.forward(&x);
    crate::ops::act::relu(want.data_mut());
    out.push(Parity::new(&tag("conv3d (1,3,3) + bias + relu"), fp16, &dl(&ctx, &GConv::new(&ctx, &conv)?.forward(&ctx, &gx, Act::Relu)?)?, want.data()));
    let conv = Conv3d::new(rng.tensor(&[40, 32, 1, 1, 1], 0.2), Some(rng.vec(40, 0.1)), [1, 1, 1], [0, 0, 0], 1);
    let mut want = conv.forward(&x);
    gelu(want.data_mut());
    out.push(Parity::new(&tag("conv3d 1x1x1 + bias + gelu"), fp16, &dl(&ctx, &GConv::new(&ctx, &conv)?.forward(&ctx, &gx, Act::Gelu)?)?, want.data()));
    let conv = Conv3d::new(rng.tensor(&[32, 1, 3, 3, 3], 0.3), Some(rng.vec(32, 0.1)), [1, 2, 2], [1, 1, 1], 32);
    out.push(Parity::new("depthwise conv3d 3x3x3 /(1,2,2)", false, &dl(&ctx, &GConv::new(&ctx, &conv)?.forward(&ctx, &gx, Act::None)?)?, conv.forward(&x).data()));
    // linear + LayerNorm
    let tok = rng.tensor(&[300, 48], 1.0);
    let gt = DTensor::upload(&ctx, &tok)?;
    let lin = Linear::new(rng.vec(96 * 48, 0.15), Some(rng.vec(96, 0.1)), 96, 48);
    out.push(Parity::new(&tag("linear + bias"), fp16, &dl(&ctx, &GLinear::new(&ctx, &lin)?.forward(&ctx, gt.view(), 300, Act::None)?)?, &lin.forward(tok.data(), 300)));
    // the MLP's first layer as the encoder runs it: LayerNorm -> linear + bias + GELU, each written as the
    // next GEMM's operand (f16 in fp16 mode); biases large enough that a dropped or doubled one shows
    let lin2 = Linear::new(rng.vec(64 * 48, 0.15), Some(rng.vec(64, 1.0)), 64, 48);
    let ln2 = LayerNorm::new(rng.vec(48, 1.0), rng.vec(48, 0.5), 1e-6);
    let mut want = lin2.forward(&ln2.forward_rows_copy(tok.data()), 300);
    gelu(&mut want);
    let h = GLinear::new(&ctx, &lin2)?.forward_for_gemm(&ctx, &GLayerNorm::new(&ctx, &ln2)?.copy_for_gemm(&ctx, &gt)?, 300, Act::Gelu)?;
    let got = match h {
        GemmIn::F32(t) => dl(&ctx, &t)?,
        GemmIn::F16(b) => f16_values(ctx.gpu.download(&b)?),
    };
    out.push(Parity::new(&tag("layernorm -> linear + bias + gelu (gemm operands)"), fp16, &got, &want));
    let ln = LayerNorm::new(rng.vec(48, 1.0), rng.vec(48, 0.2), 1e-6);
    out.push(Parity::new("layernorm rows", false, &dl(&ctx, &GLayerNorm::new(&ctx, &ln)?.copy(&ctx, &gt)?)?, &ln.forward_rows_copy(tok.data())));
    // DLTFB shift and the fused shift_H + channel LayerNorm
    let v = rng.tensor(&[23, 3, 7, 12], 1.0);
    let gv = DTensor::upload(&ctx, &v)?;
    let mut sh = DTensor::zeros(&ctx, v.shape())?;
    ctx.gpu.axial_shift(gv.view(), &mut sh.view_mut(), v.dims4(), true)?;
    out.push(Parity::new("axial shift W", false, &dl(&ctx, &sh)?, axial_shift(&v, Axis::W).data()));
    let lnc = LayerNorm::new(rng.vec(23, 1.0), rng.vec(23, 0.2), 1e-5);
    let mut want = axial_shift(&v, Axis::H);
    lnc.forward_channels(want.data_mut());
    out.push(Parity::new("shift H + channel layernorm (fused)", false, &dl(&ctx, &GLayerNorm::new(&ctx, &lnc)?.shift_h_channels(&ctx, &gv)?)?, want.data()));
    // resampling and pooling
    for dims in [[3, 14, 24], [8, 56, 96], [5, 9, 17]] {
        out.push(Parity::new(&format!("trilinear {:?} -> {dims:?}", &v.shape()[1..]), false, &dl(&ctx, &trilinear(&ctx, &gv, dims)?)?, cpu_trilinear(&v, dims).data()));
    }
    let g = ConvGeom::new(23, [3, 7, 12], [1, 3, 3], [1, 2, 2], [0, 1, 1]);
    let o = g.out_thw();
    let mut mp = DTensor::zeros(&ctx, &[23, o[0], o[1], o[2]])?;
    ctx.gpu.maxpool3d(gv.view(), &mut mp.view_mut(), g)?;
    out.push(Parity::new("maxpool3d (1,3,3)/(1,2,2)", false, &dl(&ctx, &mp)?, max_pool3d(&v, [1, 3, 3], [1, 2, 2], [0, 1, 1]).data()));
    // elementwise epilogues
    for (act, name) in [(Act::Gelu, "gelu (erf)"), (Act::Sigmoid, "sigmoid")] {
        let mut g = DTensor::upload(&ctx, &v)?;
        ctx.gpu.bias_act_channels(&mut g.view_mut(), None, 23, act)?;
        let mut want = v.clone();
        if act == Act::Gelu { gelu(want.data_mut()) } else { sigmoid(want.data_mut()) }
        out.push(Parity::new(name, false, &dl(&ctx, &g)?, want.data()));
    }
    // deformable conv (random fractional offsets, some samples outside the image)
    let x = rng.tensor(&[16, 2, 9, 13], 1.0);
    let offs = rng.tensor(&[18, 2, 9, 13], 2.5);
    let dc = DeformConv2d::new(rng.tensor(&[12, 16, 3, 3], 0.2), rng.vec(12, 0.1));
    let mut gy = DTensor::zeros(&ctx, &[12, 2, 9, 13])?;
    GDeform::new(&ctx, &dc)?.forward_into(&ctx, &DTensor::upload(&ctx, &x)?, &DTensor::upload(&ctx, &offs)?, &mut gy.view_mut(), Act::None)?;
    out.push(Parity::new(&tag("deformable conv (im2col + gemm)"), fp16, &dl(&ctx, &gy)?, dc.forward(&x, &offs).data()));
    out.extend(attention_parity(&ctx, &mut rng)?);
    if fp16 {
        for (d, k_thw) in [(96, [2, 23, 25]), (48, [2, 6, 11])] {
            out.push(flash_attention_parity(&ctx, &mut rng, d, k_thw)?);
        }
        // the vectorised im2col against the flat one (the same values, so a rel err of 0), on a decoder's
        // temporal conv geometry (k 2x3x3, stride 2x1x1) whose 8-position groups wrap across rows and frames
        let x = rng.vec(6 * 4 * 5 * 12, 2.0);
        let g = ConvGeom::new(6, [4, 5, 12], [2, 3, 3], [2, 1, 1], [0, 1, 1]);
        let m = 6 * g.kernel_volume() * g.out_positions();
        let gx = ctx.gpu.upload(&x)?;
        let (mut flat, mut vec8) = (ctx.gpu.upload(&vec![0x7e00u16; m])?, ctx.gpu.upload(&vec![0x7e00u16; m])?);
        ctx.gpu.im2col3d(gx.view(), &mut ColOut::F16(flat.view_mut()), g)?;
        ctx.gpu.im2col3d_f16x8(gx.view(), &mut vec8.view_mut(), g)?;
        let mut p = Parity::new("im2col f16, 8 positions a thread vs one (bit for bit)", true, &f16_values(ctx.gpu.download(&vec8)?), &f16_values(ctx.gpu.download(&flat)?));
        p.tol = 0.0;
        out.push(p);
        // deformable im2col with the channels split over the grid (level-4 AMFB size: few positions, 192
        // channels) against the one-group launch
        let (dims, sp) = ([192, 8, 7, 12], 8 * 7 * 12);
        let (gx, goff) = (ctx.gpu.upload(&rng.vec(192 * sp, 1.0))?, ctx.gpu.upload(&rng.vec(18 * sp, 2.5))?);
        let (mut one, mut split) = (ctx.gpu.upload(&vec![0x7e00u16; 192 * 9 * sp])?, ctx.gpu.upload(&vec![0x7e00u16; 192 * 9 * sp])?);
        ctx.gpu.deform_im2col(gx.view(), goff.view(), &mut ColOut::F16(one.view_mut()), dims, false)?;
        ctx.gpu.deform_im2col(gx.view(), goff.view(), &mut ColOut::F16(split.view_mut()), dims, true)?;
        let mut p = Parity::new("deformable im2col f16, channels split over the grid vs one group (bit for bit)", true, &f16_values(ctx.gpu.download(&split)?), &f16_values(ctx.gpu.download(&one)?));
        p.tol = 0.0;
        out.push(p);
    }
    for d in [8, 6] {
        out.push(pool_tokens_parity(&ctx, &mut rng, d, [1, 2, 2], false)?);
    }
    // the candidate tiled kernel (stride 1, head dim a multiple of 32; 8x8 tiles partial both ways)
    out.push(pool_tokens_parity(&ctx, &mut rng, 64, [1, 1, 1], true)?);
    out.push(amfb_parity(&ctx, &mut rng)?);
    out.push(tokens_parity(&ctx, &mut rng)?);
    out.extend(frame_parity(&ctx, &mut rng)?);
    out.extend(graph_parity(device, fp16, &mut rng)?);
    Ok(out)
}

/// A parity row's name, marked when its GEMMs take f16 operands.
fn fp16_tag(name: &str, fp16: bool) -> String {
    if fp16 { format!("{name} [fp16 gemm]") } else { name.to_string() }
}

/// A CUDA graph of the encoder's MLP input path (in-graph copy of a fixed input, LayerNorm, cuBLAS GEMM +
/// bias + GELU, copy into a fixed output; every in-graph buffer freed in the graph), replayed on two
/// inputs written between launches: each replay must match the CPU on its own input. A device opened
/// on the legacy default stream must refuse to capture with an error.
fn graph_parity(device: usize, fp16: bool, rng: &mut Rng) -> Result<Vec<Parity>, KernelError> {
    let legacy = Ctx::new(Gpu::new(device)?, fp16);
    if legacy.gpu.capture(|| -> Result<(), KernelError> { Ok(()) }).is_ok() {
        return Err(KernelError::Capture("a capture on the legacy default stream was accepted".into()));
    }
    let ctx = Ctx::new(Gpu::new_capturable(device)?, fp16);
    let (n, c, o) = (300, 48, 64);
    let lin = Linear::new(rng.vec(o * c, 0.15), Some(rng.vec(o, 1.0)), o, c);
    let ln = LayerNorm::new(rng.vec(c, 1.0), rng.vec(c, 0.5), 1e-6);
    let (glin, gln) = (GLinear::new(&ctx, &lin)?, GLayerNorm::new(&ctx, &ln)?);
    let mut input = DTensor::empty(&ctx, &[n, c])?;
    let mut output = DTensor::empty(&ctx, &[n, o])?;
    ctx.gpu.synchronize()?;
    let graph = ctx.gpu.capture(|| -> Result<(), KernelError> {
        let y = glin.forward_in(&ctx, &gln.copy_for_gemm(&ctx, &input.copy(&ctx)?)?, n, Act::Gelu)?;
        ctx.gpu.copy_into(&y.buf, &mut output.buf)
    })?;
    let mut out = vec![];
    for i in 0..2 {
        let tok = rng.tensor(&[n, c], 1.0);
        ctx.gpu.write(tok.data(), &mut input.buf)?;
        graph.launch()?;
        let mut want = lin.forward(&ln.forward_rows_copy(tok.data()), n);
        gelu(&mut want);
        let name = fp16_tag(&format!("cuda graph replay {i}: layernorm -> linear + gelu"), fp16);
        out.push(Parity::new(&name, fp16, &dl(&ctx, &output)?, &want));
    }
    Ok(out)
}

/// MViT q/k/v pooling read in place from the qkv matrix plus its bias (the k part of 2 heads; class token
/// copied)
/// against `token_pool::depthwise`; head dim 8 takes the 4-channel kernel, 6 the scalar one; `tiled`: by
/// `pool_tokens_tiled` (stride 1 only).
fn pool_tokens_parity(ctx: &Ctx, rng: &mut Rng, d: usize, stride: [usize; 3], tiled: bool) -> Result<Parity, KernelError> {
    use crate::ops::token_pool::{Rows, Window, depthwise, taps_major};
    let (heads, thw) = (2, [3, 7, 9]);
    let cout = heads * d;
    let n = 1 + thw.iter().product::<usize>();
    let qkv = rng.vec(n * 3 * cout, 1.0);
    let w = rng.vec(d * 27, 0.3); // [d, 3, 3, 3]
    // the qkv bias, added by the kernel as it reads (zero padding stays zero)
    let bias = rng.vec(3 * cout, 0.5);
    let with_bias: Vec<f32> = qkv.iter().enumerate().map(|(i, v)| v + bias[i % (3 * cout)]).collect();
    let win = Window { k: [3, 3, 3], stride, pad: [1, 1, 1] };
    let o = win.out_grid(thw);
    let m = 1 + o.iter().product::<usize>();
    let mut want = vec![0.0f32; heads * m * d];
    for h in 0..heads {
        let c0 = cout + h * d; // the k part
        let out = &mut want[h * m * d..(h + 1) * m * d];
        out[..d].copy_from_slice(&with_bias[c0..c0 + d]);
        depthwise(Rows { data: &with_bias[3 * cout..], rs: 3 * cout, c0, c: d }, thw, &taps_major(&w, d), win, &mut out[d..]);
    }
    let (gx, gw, gb) = (ctx.gpu.upload(&qkv)?, ctx.gpu.upload(&w)?, ctx.gpu.upload(&bias)?);
    let mut y = ctx.gpu.zeros::<f32>(heads * m * d)?;
    let g = ConvGeom::new(d, thw, [3, 3, 3], stride, [1, 1, 1]);
    let (x, b) = (gx.slice(cout, n * 3 * cout - cout), Some(gb.slice(cout, cout)));
    if tiled {
        ctx.gpu.pool_tokens_tiled(x, 3 * cout, d, gw.view(), b, &mut y.view_mut(), heads, g)?;
    } else {
        ctx.gpu.pool_tokens(x, 3 * cout, d, gw.view(), b, &mut y.view_mut(), heads, g)?;
    }
    let how = if tiled { ", tiled (shared-memory frames)" } else { "" };
    Ok(Parity::new(&format!("mvit pooling from qkv tokens, head dim {d}, stride {stride:?}{how}"), false, &ctx.gpu.download(&y)?, &want))
}

/// The fused rel-pos + softmax kernels (f32 and f16 logits, in place; padded rows) against the CPU formula
/// (`attention.rs` `add_rel_pos`).
fn attention_parity(ctx: &Ctx, rng: &mut Rng) -> Result<Vec<Parity>, KernelError> {
    // head dims 16 and 96 (the paper model's; a multiple of 32 takes the f16 kernel's 8-lane dots); key
    // rows longer than one warp pass (256 logits) of the f16 kernel: 287 keys, and 1151 (five passes)
    let mut rows = attention_parity_d(ctx, rng, 16, [2, 11, 13])?;
    rows.extend(attention_parity_d(ctx, rng, 96, [2, 23, 25])?);
    Ok(rows)
}

fn attention_parity_d(ctx: &Ctx, rng: &mut Rng, d: usize, k_thw: [usize; 3]) -> Result<Vec<Parity>, KernelError> {
    let (heads, q_thw) = (2, [2, 3, 4]);
    let nq = 1 + q_thw.iter().product::<usize>();
    let nk = 1 + k_thw.iter().product::<usize>();
    let q = rng.vec(heads * nq * d, 1.0);
    let logits = rng.vec(heads * nq * nk, 2.0);
    let tabs: Vec<Vec<f32>> = (0..3).map(|i| rng.vec(q_thw[i] * k_thw[i] * d, 0.5)).collect();
    let mut want = logits.clone();
    for h in 0..heads {
        for i in 0..nq {
            let row = &mut want[(h * nq + i) * nk..(h * nq + i + 1) * nk];
            if i > 0 {
                let r = i - 1;
                let (a, b, c) = (r / (q_thw[1] * q_thw[2]), (r / q_thw[2]) % q_thw[1], r % q_thw[2]);
                let qv = &q[(h * nq + i) * d..(h * nq + i + 1) * d];
                let dot = |t: usize, qi: usize, kj: usize| -> f32 { (0..d).map(|e| qv[e] * tabs[t][(qi * k_thw[t] + kj) * d + e]).sum() };
                for (jj, v) in row[1..].iter_mut().enumerate() {
                    let (kt, kh, kw) = (jj / (k_thw[1] * k_thw[2]), (jj / k_thw[2]) % k_thw[1], jj % k_thw[2]);
                    *v += (dot(0, a, kt) + dot(1, b, kh)) + dot(2, c, kw);
                }
            }
            softmax_row(row);
        }
    }
    let gq = ctx.gpu.upload(&q)?;
    let gt: Vec<_> = tabs.iter().map(|t| ctx.gpu.upload(t)).collect::<Result<_, _>>()?;
    let keys = ctx.gpu.upload(&RelPosBias::key_table(k_thw))?;
    let rel = || RelPosBias { q: gq.view(), tables: [gt[0].view(), gt[1].view(), gt[2].view()], keys: keys.view(), d, q_thw, k_thw };
    // rows padded as the encoder pads them, the padding filled with junk
    let pad = |v: &[f32], ld: usize, with: f32| -> Vec<f32> { v.chunks(nk).flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(with, ld - nk))).collect() };
    // f32 logits, in place: the padding stays untouched
    let ld = nk + 3;
    let mut s = ctx.gpu.upload(&pad(&logits, ld, 7.0))?;
    ctx.gpu.softmax_relpos(&mut s.view_mut(), ld, Some(rel()), nq, nk)?;
    let f32_row = Parity::new(&format!("attention rel-pos + softmax (fused, padded rows), head dim {d}, {nk} keys"), false, &ctx.gpu.download(&s)?, &pad(&want, ld, 7.0));
    // f16 logits, f16 probabilities over them (the fp16 engine's path): NaN padding comes out zero
    let ld = (nk + 1).next_multiple_of(8);
    let mut s16 = ctx.gpu.upload(&f16_bits(&pad(&logits, ld, f32::NAN)))?;
    ctx.gpu.softmax_relpos_f16(&mut s16.view_mut(), ld, Some(rel()), nq, nk)?;
    let in_place = f16_values(ctx.gpu.download(&s16)?);
    let f16_label = format!("attention rel-pos + softmax, f16 logits in place (padded rows), head dim {d}, {nk} keys");
    Ok(vec![f32_row, Parity::new(&f16_label, true, &in_place, &pad(&want, ld, 0.0))])
}

/// The fused attention kernel (fp16 only) against `dtfsal_kernels::reference::pooling_attention`: 71
/// queries (the second 64-query block partly empty) of 2 heads, `k_thw` keys over several 64-key tiles
/// (the last one partial), rel-pos and residual pooling, k and v with spare rows after the last head as
/// the encoder pools them.
fn flash_attention_parity(ctx: &Ctx, rng: &mut Rng, d: usize, k_thw: [usize; 3]) -> Result<Parity, KernelError> {
    let (heads, q_thw) = (2, [2, 5, 7]);
    let nq = 1 + q_thw.iter().product::<usize>();
    let nk = 1 + k_thw.iter().product::<usize>();
    let round = |v: &[f32]| f16_values(f16_bits(v));
    let q = rng.vec(heads * nq * d, 1.0);
    let (k, v) = (round(&rng.vec(heads * nk * d, 0.35)), round(&rng.vec(heads * nk * d, 1.0)));
    let tabs: Vec<Vec<f32>> = (0..3).map(|i| rng.vec(q_thw[i] * k_thw[i] * d, 0.15)).collect();
    let want = dtfsal_kernels::reference::pooling_attention(&q, &k, &v, Some([&tabs[0], &tabs[1], &tabs[2]]), heads, d, q_thw, k_thw, true);
    let spare = |x: &[f32]| -> Vec<u16> { f16_bits(&[x, &vec![0.5f32; 5 * d]].concat()) };
    let (gk, gv) = (ctx.gpu.upload(&spare(&k))?, ctx.gpu.upload(&spare(&v))?);
    let gq = ctx.gpu.upload(&q)?;
    let gt: Vec<_> = tabs.iter().map(|t| ctx.gpu.upload(t)).collect::<Result<_, _>>()?;
    let keys = ctx.gpu.upload(&RelPosBias::key_table(k_thw))?;
    let rel = RelPosBias { q: gq.view(), tables: [gt[0].view(), gt[1].view(), gt[2].view()], keys: keys.view(), d, q_thw, k_thw };
    let mut merged = ctx.gpu.upload(&vec![0x7e00u16; nq * heads * d])?;  // NaN: an unwritten element fails
    ctx.gpu.attention_flash_f16(gk.view(), gv.view(), rel, &mut merged.view_mut(), heads, nq, nk, true)?;
    let got = f16_values(ctx.gpu.download(&merged)?);
    Ok(Parity::new(&format!("fused flash attention (tensor cores, rel-pos, residual), head dim {d}, {nq} queries, {nk} keys"), true, &got, &want))
}

/// AMFB GAP + score (Linear + sigmoid) + weighted sum against `amfb.rs`.
fn amfb_parity(ctx: &Ctx, rng: &mut Rng) -> Result<Parity, KernelError> {
    let (d, sp) = (24, 7 * 12 * 8);
    let streams: Vec<f32> = rng.vec(3 * d * sp, 1.0).into_iter().map(|v| v.max(0.0)).collect();
    let score = Linear::new(rng.vec(3 * 3 * d, 0.5), Some(rng.vec(3, 0.1)), 3, 3 * d);
    let pooled: Vec<f32> = streams.chunks(sp).map(mean).collect();
    let w: Vec<f32> = score.forward(&pooled, 1).into_iter().map(sigmoid_scalar).collect();
    let n = d * sp;
    let want: Vec<f32> = (0..n).map(|i| w[0] * streams[i] + w[1] * streams[n + i] + w[2] * streams[2 * n + i]).collect();
    let gs = ctx.gpu.upload(&streams)?;
    let mut gp = ctx.gpu.zeros::<f32>(3 * d)?;
    ctx.gpu.row_mean(gs.view(), &mut gp.view_mut(), 3 * d, sp)?;
    let (sw, sb) = (ctx.gpu.upload(score.weight())?, ctx.gpu.upload(score.bias().unwrap())?);
    let mut o = ctx.gpu.zeros::<f32>(n)?;
    ctx.gpu.amfb_fuse(gs.view(), gp.view(), sw.view(), sb.view(), &mut o.view_mut())?;
    Ok(Parity::new("amfb tri-stream score + fusion", false, &ctx.gpu.download(&o)?, &want))
}

/// LTEB gate embedding + token weights + weighting/residual against `tokens.rs` / `lteb.rs`.
fn tokens_parity(ctx: &Ctx, rng: &mut Rng) -> Result<Parity, KernelError> {
    let (d, t, n, hw) = (16, 4, 5, 6 * 10);
    let g = rng.vec(d * t * hw, 2.0);
    let f = rng.vec(d * t * hw, 1.0);
    let q = rng.vec(d * n * hw, 1.0);
    let lin = Linear::new(rng.vec(n * d, 1.0), Some(rng.vec(n, 0.1)), n, d);
    let mut sg = g.clone();
    sigmoid(&mut sg);
    let mut e = vec![0.0f32; t * d];
    for c in 0..d {
        for s in 0..t {
            e[s * d + c] = mean(&sg[(c * t + s) * hw..(c * t + s + 1) * hw]);
        }
    }
    let mut w = lin.forward(&e, t);
    w.chunks_mut(n).for_each(softmax_row);
    let mut want = vec![0.0f32; d * t * hw];
    for c in 0..d {
        for s in 0..t {
            for p in 0..hw {
                let pp: f32 = (0..n).map(|i| w[s * n + i] * q[(c * n + i) * hw + p]).sum();
                let fv = f[(c * t + s) * hw + p];
                want[(c * t + s) * hw + p] = fv * pp + fv;
            }
        }
    }
    let (gg, gf, gq) = (ctx.gpu.upload(&g)?, ctx.gpu.upload(&f)?, ctx.gpu.upload(&q)?);
    let (lw, lb) = (ctx.gpu.upload(lin.weight())?, ctx.gpu.upload(lin.bias().unwrap())?);
    let mut ge = ctx.gpu.zeros::<f32>(t * d)?;
    ctx.gpu.gate_embedding(gg.view(), &mut ge.view_mut(), d, t, hw)?;
    let mut gw = ctx.gpu.zeros::<f32>(t * n)?;
    ctx.gpu.token_weights(ge.view(), lw.view(), lb.view(), &mut gw.view_mut(), t, d, n)?;
    let mut o = ctx.gpu.zeros::<f32>(d * t * hw)?;
    ctx.gpu.token_apply(gf.view(), gq.view(), gw.view(), None, &mut o.view_mut(), d, t, n, hw)?;
    Ok(Parity::new("lteb gate embedding + token weights + apply", false, &ctx.gpu.download(&o)?, &want))
}

/// CPU reference of the element's pre-processing (gst-plugin `preprocess.rs`: f64 axis plan, bilinear
/// height-then-width order, YUV matrix with clamping).
fn cpu_preprocess(fetch: &dyn Fn(usize, usize) -> [f32; 3], w: usize, h: usize, ow: usize, oh: usize, norm: &Normalise) -> Vec<f32> {
    let plan = |o: usize, n_in: usize, n_out: usize| {
        let src = ((o as f64 + 0.5) * (n_in as f64 / n_out as f64) - 0.5).max(0.0);
        let a = (src.floor() as usize).min(n_in - 1);
        (a, (a + 1).min(n_in - 1), (src - a as f64) as f32)
    };
    let mut out = vec![0.0f32; 3 * ow * oh];
    for oy in 0..oh {
        let (y0, y1, wy) = plan(oy, h, oh);
        for ox in 0..ow {
            let (x0, x1, wx) = plan(ox, w, ow);
            let (a, b, c, d) = (fetch(x0, y0), fetch(x1, y0), fetch(x0, y1), fetch(x1, y1));
            for ch in 0..3 {
                let top = a[ch] + (b[ch] - a[ch]) * wx;
                let bot = c[ch] + (d[ch] - c[ch]) * wx;
                out[ch * ow * oh + oy * ow + ox] = (top + (bot - top) * wy - norm.mean[ch]) * norm.inv_std[ch];
            }
        }
    }
    out
}

fn frame_parity(ctx: &Ctx, rng: &mut Rng) -> Result<Vec<Parity>, KernelError> {
    let (w, h, ow, oh) = (64, 36, 40, 24);
    let norm = Normalise { mean: [114.7748, 107.7354, 99.475], inv_std: [1.0 / 38.756_86, 1.0 / 37.882_49, 1.0 / 40.028_98] };
    let bytes = |n: usize, rng: &mut Rng| -> Vec<u8> { (0..n).map(|_| (rng.next_u64() & 0xff) as u8).collect() };
    let mut out = vec![];
    // BGRx, stride with padding
    let stride = w * 4 + 12;
    let px = bytes(stride * h, rng);
    let fetch = |x: usize, y: usize| -> [f32; 3] {
        let o = y * stride + x * 4;
        [px[o + 2] as f32, px[o + 1] as f32, px[o] as f32]
    };
    let want = cpu_preprocess(&fetch, w, h, ow, oh, &norm);
    let desc = FrameDesc::new(FrameFormat::Packed { bpp: 4, rgb: [2, 1, 0] }, w, h, [stride, 0, 0]);
    let (p0, empty) = (ctx.gpu.upload(&px)?, ctx.gpu.zeros::<u8>(1)?);
    let mut o = ctx.gpu.zeros::<f32>(3 * ow * oh)?;
    ctx.gpu.preprocess([p0.view(), empty.view(), empty.view()], desc, YuvCoeffs::default(), norm, &mut ColOut::F32(o.view_mut()), ow, oh)?;
    out.push(Parity::new("preprocess BGRx -> planar f32", false, &ctx.gpu.download(&o)?, &want));
    // NV12, BT.601 limited range
    let yuv = YuvCoeffs::new(0.299, 0.114, false);
    let (ys, uvs) = (w + 8, w + 8);
    let yp = bytes(ys * h, rng);
    let uvp = bytes(uvs * h.div_ceil(2), rng);
    let fetch = |x: usize, y: usize| -> [f32; 3] {
        let yv = (yp[y * ys + x] as f32 - yuv.y_off) * yuv.y_scale;
        let o = (y / 2) * uvs + (x / 2) * 2;
        let (u, v) = ((uvp[o] as f32 - 128.0) * yuv.c_scale, (uvp[o + 1] as f32 - 128.0) * yuv.c_scale);
        [(yv + yuv.rv * v).clamp(0.0, 255.0), (yv + yuv.gu * u + yuv.gv * v).clamp(0.0, 255.0), (yv + yuv.bu * u).clamp(0.0, 255.0)]
    };
    let want = cpu_preprocess(&fetch, w, h, ow, oh, &norm);
    let desc = FrameDesc::new(FrameFormat::Nv12, w, h, [ys, uvs, 0]);
    let (g0, g1) = (ctx.gpu.upload(&yp)?, ctx.gpu.upload(&uvp)?);
    let mut o16 = ctx.gpu.zeros::<u16>(3 * ow * oh)?;
    ctx.gpu.preprocess([g0.view(), g1.view(), empty.view()], desc, yuv, norm, &mut ColOut::F16(o16.view_mut()), ow, oh)?;
    let got = f16_values(ctx.gpu.download(&o16)?);
    out.push(Parity::new("preprocess NV12 -> planar f16", true, &got, &want));
    // post-processing: map -> u8 values at frame size (render.rs upsample_u8)
    let (mw, mh) = (12, 7);
    let map: Vec<f32> = rng.vec(mw * mh, 0.5).into_iter().map(|v| v + 0.5).collect();
    let gm = ctx.gpu.upload(&map)?;
    let mut mx = ctx.gpu.zeros::<f32>(1)?;
    ctx.gpu.map_max(gm.view(), &mut mx.view_mut())?;
    let mut vals = ctx.gpu.zeros::<u8>(w * h)?;
    ctx.gpu.map_to_u8(gm.view(), mx.view(), &mut vals.view_mut(), mw, mh, w, h)?;
    let got: Vec<f32> = ctx.gpu.download(&vals)?.into_iter().map(f32::from).collect();
    let max = map.iter().cloned().fold(0.0f32, f32::max);
    let up = cpu_trilinear(&Tensor::from_vec(&[1, 1, mh, mw], map.clone()), [1, h, w]);
    let want: Vec<f32> = up.data().iter().map(|v| (v * 255.0 / max).round().clamp(0.0, 255.0)).collect();
    // quantised: a value may round the other way at a .5 boundary (one step of 255)
    let mut p = Parity::new("postprocess map -> u8 (upsample, normalise)", false, &got, &want);
    p.tol = 1.0 / 255.0 + 1e-6;
    out.push(p);
    Ok(out)
}

/// Plausible random values for one tensor (as `dtfsal bench`): norm scales near 1, positive running
/// variances, uniform(±1/sqrt(fan_in)) conv/linear weights, small everything else.
fn random_tensor(rng: &mut Rng, name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let fill = |rng: &mut Rng, scale: f32, offset: f32| -> Vec<f32> { (0..n).map(|_| offset + scale * rng.sym()).collect() };
    const STD_002: f32 = 0.02 * 1.732_050_8;
    if name.ends_with(".running_var") {
        fill(rng, 0.5, 1.0)
    } else if name.ends_with(".running_mean") {
        fill(rng, 0.1, 0.0)
    } else if name.ends_with(".weight") && shape.len() == 1 {
        fill(rng, 0.1, 1.0)
    } else if name.ends_with(".bias") {
        fill(rng, STD_002, 0.0)
    } else if name.ends_with(".weight") && shape.len() >= 2 {
        let fan_in: usize = shape[1..].iter().product();
        fill(rng, 1.0 / (fan_in.max(1) as f32).sqrt(), 0.0)
    } else {
        fill(rng, STD_002, 0.0)
    }
}

/// Writes an f32 weight file for `cfg` with deterministic pseudo-random values.
pub fn write_random_weights(cfg: &crate::config::ModelConfig, seed: u64, path: &std::path::Path) -> Result<(), crate::weights::WeightError> {
    use crate::weights::{Part, StorageDtype, expected_tensors, to_bytes};
    let mut rng = Rng(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = expected_tensors(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let v = random_tensor(&mut rng, &name, &shape);
            (name, shape, v)
        })
        .collect();
    let bytes = to_bytes(cfg, Part::Model, tensors.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())), StorageDtype::F32)?;
    std::fs::write(path, bytes).map_err(|e| crate::weights::WeightError::Io { path: path.to_path_buf(), source: e })
}

/// A deterministic random clip for `cfg` (normalised-video-like values, random log-mel-like audio).
pub fn random_clip(cfg: &crate::config::ModelConfig, seed: u64) -> crate::model::Clip {
    let mut rng = Rng(seed);
    let video = rng.tensor(&[3, cfg.clip_len, cfg.height, cfg.width], 2.0);
    let audio = cfg.variant.has_audio().then(|| rng.tensor(&[cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width], 2.0));
    crate::model::Clip { video, audio }
}
