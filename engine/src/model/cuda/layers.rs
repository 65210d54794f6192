//! GPU twins of the CPU ops (`crate::ops`), built from the CPU structs (so BatchNorm folding and weight
//! checks happen once, in one place), with device tensors in the CPU engine's layouts: volumes
//! `[C, T, H, W]`, token matrices `[N, C]`.

use dtfsal_kernels::gemm::Batch;
use dtfsal_kernels::ops::ColOut;
use dtfsal_kernels::{Act, Buf, ConvGeom, Gpu, KernelError, Mat, View, ViewMut};

use crate::ops::conv::Conv3d;
use crate::ops::deform::DeformConv2d;
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::tensor::Tensor;

pub(crate) type Res<T> = Result<T, KernelError>;

/// The device and the precision of the GEMM operands (f32, or f16 on tensor cores with f32 accumulation;
/// every activation stays f32 either way).
pub(crate) struct Ctx {
    pub gpu: Gpu,
    pub fp16: bool,
    /// Kernels not yet run on a GPU, each off unless asked for ([`super::CandidateKernels::from_env`]).
    pub candidates: super::CandidateKernels,
    /// Set by `DTFSAL_PROFILE`: the time of the last lap (see [`Ctx::lap`]).
    pub profile: Option<std::cell::Cell<std::time::Instant>>,
}

impl Ctx {
    pub fn new(gpu: Gpu, fp16: bool) -> Self {
        let profile = std::env::var_os("DTFSAL_PROFILE").map(|_| std::cell::Cell::new(std::time::Instant::now()));
        Self { gpu, fp16, candidates: super::CandidateKernels::from_env(), profile }
    }

    /// With `DTFSAL_PROFILE` set: waits for the stream and prints the wall time since the last lap under
    /// `stage` (so each stage's time includes its launches and its kernels; the waits slow the whole pass a
    /// little). Without it: nothing.
    pub fn lap(&self, stage: impl FnOnce() -> String) {
        if let Some(t) = &self.profile {
            let _ = self.gpu.synchronize();
            eprintln!("profile: {:<28} {:8.3} ms", stage(), t.get().elapsed().as_secs_f64() * 1e3);
            t.set(std::time::Instant::now());
        }
    }

    /// An f16 copy of `x` (the activation operand of an fp16 GEMM).
    pub fn half(&self, x: View<f32>) -> Res<Buf<u16>> {
        let mut h = self.gpu.uninit::<u16>(x.len())?;
        self.gpu.to_f16(x, &mut h.view_mut())?;
        Ok(h)
    }

    /// A weight upload, plus its f16 copy in fp16 mode.
    pub fn weight(&self, w: &[f32]) -> Res<(Buf<f32>, Option<Buf<u16>>)> {
        let b = self.gpu.upload(w)?;
        let h = if self.fp16 { Some(self.half(b.view())?) } else { None };
        Ok((b, h))
    }
}

/// A dense device tensor.
pub(crate) struct DTensor {
    pub shape: Vec<usize>,
    pub buf: Buf<f32>,
}

impl DTensor {
    pub fn zeros(ctx: &Ctx, shape: &[usize]) -> Res<Self> {
        Ok(Self { shape: shape.to_vec(), buf: ctx.gpu.zeros(shape.iter().product())? })
    }

    /// Arbitrary contents: for outputs a kernel writes in full.
    pub fn empty(ctx: &Ctx, shape: &[usize]) -> Res<Self> {
        Ok(Self { shape: shape.to_vec(), buf: ctx.gpu.uninit(shape.iter().product())? })
    }

    pub fn upload(ctx: &Ctx, t: &Tensor) -> Res<Self> {
        Ok(Self { shape: t.shape().to_vec(), buf: ctx.gpu.upload(t.data())? })
    }

    /// A new device tensor holding a copy of this one (stream-ordered).
    pub fn copy(&self, ctx: &Ctx) -> Res<Self> {
        Ok(Self { shape: self.shape.clone(), buf: ctx.gpu.copy(&self.buf)? })
    }

    pub fn download(&self, ctx: &Ctx) -> Res<Tensor> {
        let mut v = ctx.gpu.download(&self.buf)?;
        v.truncate(self.numel());
        Ok(Tensor::from_vec(&self.shape, v))
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn view(&self) -> View<'_, f32> {
        self.buf.slice(0, self.numel())
    }

    pub fn view_mut(&mut self) -> ViewMut<'_, f32> {
        let n = self.numel();
        self.buf.slice_mut(0, n)
    }

    pub fn dims4(&self) -> [usize; 4] {
        match self.shape[..] {
            [c, t, h, w] => [c, t, h, w],
            _ => panic!("expected a 4-d device tensor, got {:?}", self.shape),
        }
    }

    pub fn reshape(mut self, shape: &[usize]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.numel());
        self.shape = shape.to_vec();
        self
    }
}

/// A token matrix `[n, C]` whose consumer is a GEMM: f32, or, in fp16 mode, already f16 (its producer's
/// epilogue wrote it so, sparing the GEMM a conversion pass over it).
pub(crate) enum GemmIn {
    F32(DTensor),
    F16(Buf<u16>),
}

impl GemmIn {
    fn view(&self) -> XView<'_> {
        match self {
            GemmIn::F32(t) => XView::F32(t.view()),
            GemmIn::F16(h) => XView::F16(h.view()),
        }
    }
}

/// A borrowed [`GemmIn`] (or any f32 view).
#[derive(Clone, Copy)]
enum XView<'a> {
    F32(View<'a, f32>),
    F16(View<'a, u16>),
}

fn maybe_t(v: Mat<'_>, t: bool) -> Mat<'_> {
    if t { v.t() } else { v }
}

/// `y [m, n] (+)= A·B` (row-major operands `(view, row stride, transposed)`), the f32 views converted to
/// f16 operands in fp16 mode.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(ctx: &Ctx, m: usize, n: usize, k: usize, a: (View<f32>, usize, bool), b: (View<f32>, usize, bool), c: &mut ViewMut<f32>, ldc: usize, alpha: f32, beta: f32, batch: Batch) -> Res<()> {
    if ctx.fp16 {
        let (ah, bh) = (ctx.half(a.0)?, ctx.half(b.0)?);
        ctx.gpu.gemm(m, n, k, maybe_t(Mat::f16(ah.view(), a.1), a.2), maybe_t(Mat::f16(bh.view(), b.1), b.2), c, ldc, alpha, beta, batch)
    } else {
        ctx.gpu.gemm(m, n, k, maybe_t(Mat::f32(a.0, a.1), a.2), maybe_t(Mat::f32(b.0, b.1), b.2), c, ldc, alpha, beta, batch)
    }
}

/// Conv3d (2-d convs as `(1, k, k)` kernels over stacked slices): im2col + cuBLAS GEMM, a direct GEMM for
/// 1x1x1, a direct kernel for depthwise.
pub(crate) struct GConv {
    w: Buf<f32>,
    w16: Option<Buf<u16>>,
    bias: Option<Buf<f32>>,
    cout: usize,
    cin_g: usize,
    k: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    groups: usize,
}

impl GConv {
    pub fn new(ctx: &Ctx, conv: &Conv3d) -> Res<Self> {
        let (cin_g, k, stride, pad, groups) = conv.geometry();
        let (w, w16) = ctx.weight(conv.weight())?;
        let bias = conv.bias().map(|b| ctx.gpu.upload(b)).transpose()?;
        Ok(Self { w, w16, bias, cout: conv.out_channels(), cin_g, k, stride, pad, groups })
    }

    fn geom(&self, dims: [usize; 4]) -> ConvGeom {
        ConvGeom::new(dims[0], [dims[1], dims[2], dims[3]], self.k, self.stride, self.pad)
    }

    /// `x [C_in, T, H, W]` -> new `[C_out, T', H', W']`, then `act`.
    pub fn forward(&self, ctx: &Ctx, x: &DTensor, act: Act) -> Res<DTensor> {
        let dims = x.dims4();
        let o = self.geom(dims).out_thw();
        let mut y = DTensor::empty(ctx, &[self.cout, o[0], o[1], o[2]])?;
        self.forward_into(ctx, x.view(), dims, &mut y.view_mut(), act)?;
        Ok(y)
    }

    /// As [`GConv::forward`], writing into `y` (`C_out * T'H'W'` elements).
    pub fn forward_into(&self, ctx: &Ctx, x: View<f32>, dims: [usize; 4], y: &mut ViewMut<f32>, act: Act) -> Res<()> {
        let cin = dims[0];
        assert_eq!(cin, self.cin_g * self.groups, "conv: input has {cin} channels");
        let g = self.geom(dims);
        let np = g.out_positions();
        let mut y = y.reborrow().slice(0, self.cout * np);
        if self.groups > 1 {
            assert!(self.cin_g == 1 && self.groups == self.cout, "grouped conv other than depthwise");
            ctx.gpu.dwconv3d(x, self.w.view(), self.bias.as_ref().map(|b| b.view()), &mut y, g)?;
            if act != Act::None {
                ctx.gpu.bias_act_channels(&mut y, None, self.cout, act)?;
            }
            return Ok(());
        }
        let kk = cin * g.kernel_volume();
        let pointwise = g.kernel_volume() == 1 && self.stride == [1, 1, 1] && self.pad == [0, 0, 0];
        match (&self.w16, pointwise) {
            (None, true) => ctx.gpu.gemm(self.cout, np, kk, Mat::f32(self.w.view(), kk), Mat::f32(x, np), &mut y, np, 1.0, 0.0, Batch::ONE)?,
            (Some(w16), true) => {
                let xh = ctx.half(x.slice(0, cin * np))?;
                ctx.gpu.gemm(self.cout, np, kk, Mat::f16(w16.view(), kk), Mat::f16(xh.view(), np), &mut y, np, 1.0, 0.0, Batch::ONE)?
            }
            (None, false) => {
                let mut col = ctx.gpu.uninit::<f32>(kk * np)?;
                ctx.gpu.im2col3d(x, &mut ColOut::F32(col.view_mut()), g)?;
                ctx.gpu.gemm(self.cout, np, kk, Mat::f32(self.w.view(), kk), Mat::f32(col.view(), np), &mut y, np, 1.0, 0.0, Batch::ONE)?
            }
            (Some(w16), false) => {
                let mut col = ctx.gpu.uninit::<u16>(kk * np)?;
                if ctx.candidates.im2col_x8 && np.is_multiple_of(8) {
                    ctx.gpu.im2col3d_f16x8(x, &mut col.view_mut(), g)?;
                } else {
                    ctx.gpu.im2col3d(x, &mut ColOut::F16(col.view_mut()), g)?;
                }
                ctx.gpu.gemm(self.cout, np, kk, Mat::f16(w16.view(), kk), Mat::f16(col.view(), np), &mut y, np, 1.0, 0.0, Batch::ONE)?
            }
        }
        if self.bias.is_some() || act != Act::None {
            ctx.gpu.bias_act_channels(&mut y, self.bias.as_ref().map(|b| b.view()), self.cout, act)?;
        }
        Ok(())
    }
}

/// Fully connected layer on token matrices `[N, C_in] -> [N, C_out]`.
pub(crate) struct GLinear {
    w: Buf<f32>,
    w16: Option<Buf<u16>>,
    bias: Option<Buf<f32>>,
    pub cin: usize,
    pub cout: usize,
}

impl GLinear {
    pub fn new(ctx: &Ctx, l: &Linear) -> Res<Self> {
        let (w, w16) = ctx.weight(l.weight())?;
        Ok(Self { w, w16, bias: l.bias().map(|b| ctx.gpu.upload(b)).transpose()?, cin: l.cin, cout: l.cout })
    }

    /// `y [n, C_out] = beta·y + x·Wᵀ`: the product alone, no bias or activation.
    fn product(&self, ctx: &Ctx, x: XView, n: usize, y: &mut ViewMut<f32>, beta: f32) -> Res<()> {
        let mut y = y.reborrow().slice(0, n * self.cout);
        match (x, &self.w16) {
            (XView::F16(h), Some(w16)) => ctx.gpu.gemm(n, self.cout, self.cin, Mat::f16(h.slice(0, n * self.cin), self.cin), Mat::f16(w16.view(), self.cin).t(), &mut y, self.cout, 1.0, beta, Batch::ONE),
            (XView::F16(_), None) => unreachable!("an f16 operand comes only with fp16 weights"),
            (XView::F32(t), None) => ctx.gpu.gemm(n, self.cout, self.cin, Mat::f32(t, self.cin), Mat::f32(self.w.view(), self.cin).t(), &mut y, self.cout, 1.0, beta, Batch::ONE),
            (XView::F32(t), Some(w16)) => {
                let xh = ctx.half(t.slice(0, n * self.cin))?;
                ctx.gpu.gemm(n, self.cout, self.cin, Mat::f16(xh.view(), self.cin), Mat::f16(w16.view(), self.cin).t(), &mut y, self.cout, 1.0, beta, Batch::ONE)
            }
        }
    }

    /// `x·Wᵀ` alone, into a new `[n, C_out]`: for a consumer that adds the bias itself ([`GLinear::bias`]).
    pub fn product_in(&self, ctx: &Ctx, x: &GemmIn, n: usize) -> Res<DTensor> {
        let mut y = DTensor::empty(ctx, &[n, self.cout])?;
        self.product(ctx, x.view(), n, &mut y.view_mut(), 0.0)?;
        Ok(y)
    }

    /// `y += x·Wᵀ` (no bias: the caller put it in `y`).
    pub fn accumulate_in(&self, ctx: &Ctx, x: &GemmIn, n: usize, y: &mut ViewMut<f32>) -> Res<()> {
        self.product(ctx, x.view(), n, y, 1.0)
    }

    pub fn bias(&self) -> Option<View<'_, f32>> {
        self.bias.as_ref().map(|b| b.view())
    }

    /// As [`GLinear::forward_into`] from a [`GemmIn`].
    pub fn forward_into_in(&self, ctx: &Ctx, x: &GemmIn, n: usize, y: &mut ViewMut<f32>, beta: f32, act: Act) -> Res<()> {
        self.product(ctx, x.view(), n, y, beta)?;
        self.epilogue(ctx, n, y, act)
    }

    /// `y = act(y + b)` over the first `n` rows (nothing when there is neither).
    fn epilogue(&self, ctx: &Ctx, n: usize, y: &mut ViewMut<f32>, act: Act) -> Res<()> {
        if self.bias.is_some() || act != Act::None {
            ctx.gpu.bias_act_rows(&mut y.reborrow().slice(0, n * self.cout), self.bias(), self.cout, act)?;
        }
        Ok(())
    }

    /// As [`GLinear::forward`] from a [`GemmIn`].
    pub fn forward_in(&self, ctx: &Ctx, x: &GemmIn, n: usize, act: Act) -> Res<DTensor> {
        let mut y = DTensor::empty(ctx, &[n, self.cout])?;
        self.forward_into_in(ctx, x, n, &mut y.view_mut(), 0.0, act)?;
        Ok(y)
    }

    /// `act(x·Wᵀ + b)` for another GEMM to consume: in fp16 mode the epilogue (bias, act) writes it as f16.
    pub fn forward_for_gemm(&self, ctx: &Ctx, x: &GemmIn, n: usize, act: Act) -> Res<GemmIn> {
        if !ctx.fp16 {
            return Ok(GemmIn::F32(self.forward_in(ctx, x, n, act)?));
        }
        let mut y = DTensor::empty(ctx, &[n, self.cout])?;
        self.product(ctx, x.view(), n, &mut y.view_mut(), 0.0)?;
        let mut h = ctx.gpu.uninit::<u16>(n * self.cout)?;
        ctx.gpu.bias_act_rows_f16(y.view(), self.bias(), &mut h.view_mut(), self.cout, act)?;
        Ok(GemmIn::F16(h))
    }

    /// `y [n, C_out] = beta·y + x [n, C_in]·Wᵀ + b`, then `act` (beta = 1: a residual add).
    pub fn forward_into(&self, ctx: &Ctx, x: View<f32>, n: usize, y: &mut ViewMut<f32>, beta: f32, act: Act) -> Res<()> {
        self.product(ctx, XView::F32(x), n, y, beta)?;
        self.epilogue(ctx, n, y, act)
    }

    pub fn forward(&self, ctx: &Ctx, x: View<f32>, n: usize, act: Act) -> Res<DTensor> {
        let mut y = DTensor::empty(ctx, &[n, self.cout])?;
        self.forward_into(ctx, x, n, &mut y.view_mut(), 0.0, act)?;
        Ok(y)
    }
}

/// LayerNorm over the last axis of token matrices.
pub(crate) struct GLayerNorm {
    gamma: Buf<f32>,
    beta: Buf<f32>,
    pub eps: f32,
    pub dim: usize,
}

impl GLayerNorm {
    pub fn new(ctx: &Ctx, ln: &LayerNorm) -> Res<Self> {
        Ok(Self { gamma: ctx.gpu.upload(&ln.weight)?, beta: ctx.gpu.upload(&ln.bias)?, eps: ln.eps, dim: ln.dim() })
    }

    pub fn inplace(&self, ctx: &Ctx, x: &mut ViewMut<f32>) -> Res<()> {
        ctx.gpu.layernorm_rows_inplace(x, self.gamma.view(), self.beta.view(), self.dim, self.eps)
    }

    pub fn copy(&self, ctx: &Ctx, x: &DTensor) -> Res<DTensor> {
        let mut y = DTensor::empty(ctx, &x.shape)?;
        ctx.gpu.layernorm_rows(x.view(), &mut y.view_mut(), self.gamma.view(), self.beta.view(), self.dim, self.eps)?;
        Ok(y)
    }

    /// The normalised rows for a GEMM to consume: f16 straight from the LayerNorm in fp16 mode.
    pub fn copy_for_gemm(&self, ctx: &Ctx, x: &DTensor) -> Res<GemmIn> {
        if !ctx.fp16 {
            return Ok(GemmIn::F32(self.copy(ctx, x)?));
        }
        let mut h = ctx.gpu.uninit::<u16>(x.numel())?;
        ctx.gpu.layernorm_rows_f16(x.view(), &mut h.view_mut(), self.gamma.view(), self.beta.view(), self.dim, self.eps)?;
        Ok(GemmIn::F16(h))
    }

    /// Fused `LN_channels(shift_H(x))` of a volume (DLTFB).
    pub fn shift_h_channels(&self, ctx: &Ctx, x: &DTensor) -> Res<DTensor> {
        let mut y = DTensor::empty(ctx, &x.shape)?;
        ctx.gpu.shift_h_layernorm_channels(x.view(), &mut y.view_mut(), self.gamma.view(), self.beta.view(), x.dims4(), self.eps)?;
        Ok(y)
    }
}

/// Deformable conv v1 (3x3, pad 1): deformable im2col + GEMM, BatchNorm folded, then `act`.
pub(crate) struct GDeform {
    w: Buf<f32>,
    w16: Option<Buf<u16>>,
    bias: Buf<f32>,
    cout: usize,
}

impl GDeform {
    pub fn new(ctx: &Ctx, d: &DeformConv2d) -> Res<Self> {
        let (w, w16) = ctx.weight(d.weight())?;
        Ok(Self { w, w16, bias: ctx.gpu.upload(d.bias())?, cout: d.bias().len() })
    }

    /// `x [C_in, T, H, W]`, `offsets [18, T, H, W]` -> `y [C_out, T, H, W]`.
    pub fn forward_into(&self, ctx: &Ctx, x: &DTensor, offsets: &DTensor, y: &mut ViewMut<f32>, act: Act) -> Res<()> {
        let dims = x.dims4();
        let sp = dims[1] * dims[2] * dims[3];
        let kk = dims[0] * 9;
        let mut y = y.reborrow().slice(0, self.cout * sp);
        match &self.w16 {
            None => {
                let mut col = ctx.gpu.uninit::<f32>(kk * sp)?;
                ctx.gpu.deform_im2col(x.view(), offsets.view(), &mut ColOut::F32(col.view_mut()), dims, ctx.candidates.deform_split)?;
                ctx.gpu.gemm(self.cout, sp, kk, Mat::f32(self.w.view(), kk), Mat::f32(col.view(), sp), &mut y, sp, 1.0, 0.0, Batch::ONE)?;
            }
            Some(w16) => {
                let mut col = ctx.gpu.uninit::<u16>(kk * sp)?;
                ctx.gpu.deform_im2col(x.view(), offsets.view(), &mut ColOut::F16(col.view_mut()), dims, ctx.candidates.deform_split)?;
                ctx.gpu.gemm(self.cout, sp, kk, Mat::f16(w16.view(), kk), Mat::f16(col.view(), sp), &mut y, sp, 1.0, 0.0, Batch::ONE)?;
            }
        }
        ctx.gpu.bias_act_channels(&mut y, Some(self.bias.view()), self.cout, act)
    }
}

/// Trilinear resize of a volume into a new tensor.
pub(crate) fn trilinear(ctx: &Ctx, x: &DTensor, out: [usize; 3]) -> Res<DTensor> {
    let [c, t, h, w] = x.dims4();
    let mut y = DTensor::empty(ctx, &[c, out[0], out[1], out[2]])?;
    ctx.gpu.trilinear(x.view(), &mut y.view_mut(), c, [t, h, w], out, false)?;
    Ok(y)
}

/// `dst += trilinear(src)` (the neck's top-down sums, AMFB's audio alignment).
pub(crate) fn add_resized(ctx: &Ctx, dst: &mut ViewMut<f32>, dst_thw: [usize; 3], src: &DTensor) -> Res<()> {
    let [c, t, h, w] = src.dims4();
    ctx.gpu.trilinear(src.view(), dst, c, [t, h, w], dst_thw, true)
}
