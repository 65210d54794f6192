//! Safe launch wrappers, one per kernel of `cuda/*.cu` (same names, argument order and types). Every
//! wrapper checks the extents it touches against its views; only the launch itself is `unsafe`.
// The wrappers mirror the kernels' C signatures, argument for argument.
#![allow(clippy::too_many_arguments)]

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

use crate::KernelError;
use crate::buffer::{View, ViewMut, opt_ptr};
use crate::device::{Gpu, grid_for, rows, warp_rows};

/// Launches kernel `$name` with already-checked arguments bound to locals.
macro_rules! launch {
    ($gpu:expr, $name:literal, $cfg:expr; $($arg:ident),* $(,)?) => {{
        let mut builder = $gpu.launch($name);
        $( builder.arg(&$arg); )*
        // SAFETY: the arguments match the kernel's C signature in cuda/*.cu (pointers as u64, `int` as
        // i32, `long long` as i64, structs #[repr(C)]), and every pointer's extent was checked against
        // its view by the calling wrapper; all work is ordered on the device's one stream.
        let result = unsafe { builder.launch($cfg) };
        $gpu.check(result.map(|_| ()), $name)
    }};
}

/// Epilogue activations (`ACT_*` in common.cuh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Act {
    None = 0,
    Relu = 1,
    /// Exact (erf) GELU.
    Gelu = 2,
    Sigmoid = 3,
}

/// A convolution / pooling window over `[C, T, H, W]` (`struct ConvGeom` in conv.cu).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ConvGeom {
    pub c: i32,
    pub t: i32,
    pub h: i32,
    pub w: i32,
    pub kt: i32,
    pub kh: i32,
    pub kw: i32,
    pub st: i32,
    pub sh: i32,
    pub sw: i32,
    pub pt: i32,
    pub ph: i32,
    pub pw: i32,
    pub to: i32,
    pub ho: i32,
    pub wo: i32,
}

// SAFETY: #[repr(C)] plain integers, the layout of `struct ConvGeom` in conv.cu.
unsafe impl DeviceRepr for ConvGeom {}

impl ConvGeom {
    /// Window `k`, stride `s`, padding `p` over `c` channels of a `thw` grid.
    pub fn new(c: usize, thw: [usize; 3], k: [usize; 3], s: [usize; 3], p: [usize; 3]) -> Self {
        let o = |i: usize| (thw[i] + 2 * p[i] - k[i]) / s[i] + 1;
        let i = |v: usize| i32::try_from(v).expect("conv dimension exceeds i32");
        Self {
            c: i(c),
            t: i(thw[0]),
            h: i(thw[1]),
            w: i(thw[2]),
            kt: i(k[0]),
            kh: i(k[1]),
            kw: i(k[2]),
            st: i(s[0]),
            sh: i(s[1]),
            sw: i(s[2]),
            pt: i(p[0]),
            ph: i(p[1]),
            pw: i(p[2]),
            to: i(o(0)),
            ho: i(o(1)),
            wo: i(o(2)),
        }
    }

    pub fn out_thw(&self) -> [usize; 3] {
        [self.to as usize, self.ho as usize, self.wo as usize]
    }

    pub fn in_len(&self) -> usize {
        (self.c * self.t * self.h * self.w) as usize
    }

    pub fn out_positions(&self) -> usize {
        (self.to * self.ho * self.wo) as usize
    }

    pub fn kernel_volume(&self) -> usize {
        (self.kt * self.kh * self.kw) as usize
    }
}

/// Where an im2col writes its column matrix: f32, or f16 for the tensor-core GEMM.
pub enum ColOut<'a> {
    F32(ViewMut<'a, f32>),
    F16(ViewMut<'a, u16>),
}

impl ColOut<'_> {
    fn need(&self, n: usize, what: &str) -> (u64, bool) {
        match self {
            ColOut::F32(v) => (v.need(n, what), false),
            ColOut::F16(v) => (v.need(n, what), true),
        }
    }
}

/// The decomposed rel-pos terms of MViTv2 attention, as [`Gpu::softmax_relpos`] adds them: the unscaled
/// queries `q [heads, nq, d]`, the tables gathered for the query and key grids, `[Q*, K*, d]` for t, h, w,
/// and the key grid positions from [`RelPosBias::key_table`].
#[derive(Clone, Copy)]
pub struct RelPosBias<'a> {
    pub q: View<'a, f32>,
    pub tables: [View<'a, f32>; 3],
    pub keys: View<'a, u32>,
    pub d: usize,
    pub q_thw: [usize; 3],
    pub k_thw: [usize; 3],
}

impl RelPosBias<'_> {
    /// The grid position `(t, h, w)` of every spatial key of a `k_thw` grid, packed `t | h << 10 | w << 20`
    /// (upload once; the softmax kernel reads it instead of dividing).
    pub fn key_table(k_thw: [usize; 3]) -> Vec<u32> {
        assert!(k_thw.iter().all(|&n| n < 1024), "key grid {k_thw:?} too large to pack");
        let mut out = Vec::with_capacity(k_thw.iter().product());
        for t in 0..k_thw[0] {
            for h in 0..k_thw[1] {
                for w in 0..k_thw[2] {
                    out.push((t | h << 10 | w << 20) as u32);
                }
            }
        }
        out
    }
}

/// The checked launch arguments shared by the two softmax kernels.
struct SoftmaxArgs {
    rows: usize,
    threads: u32,
    /// q, rel-pos tables t/h/w, key table (null without rel-pos)
    ptrs: [u64; 5],
    /// nq, nk, d, qh, qw, kt, kh, kw
    ints: [i32; 8],
    /// the rel-pos dots and the q row: (kt + kh + kw + d) floats
    fixed_smem: usize,
}

impl SoftmaxArgs {
    fn new(len: usize, ld: usize, rel: Option<RelPosBias>, nq: usize, nk: usize) -> Self {
        assert!(nk <= ld && len.is_multiple_of(ld), "softmax: {len} elements are not rows of stride {ld} >= {nk}");
        let rows = len / ld;
        let (ptrs, d, q_thw, k_thw) = match rel {
            Some(r) => {
                assert_eq!(1 + r.k_thw.iter().product::<usize>(), nk, "softmax: key grid");
                assert_eq!(1 + r.q_thw.iter().product::<usize>(), nq, "softmax: query grid");
                assert_eq!(rows % nq, 0, "softmax: rows are not heads x queries");
                let t = |k: usize, v: View<f32>| v.need(r.q_thw[k] * r.k_thw[k] * r.d, "rel-pos table");
                ([r.q.need(rows * r.d, "softmax q"), t(0, r.tables[0]), t(1, r.tables[1]), t(2, r.tables[2]), r.keys.need(nk - 1, "softmax keys")], r.d, r.q_thw, r.k_thw)
            }
            None => ([0; 5], 0, [1, 1, 1], [0, 0, 0]),
        };
        let fixed_smem = (k_thw.iter().sum::<usize>() + d) * 4;
        let threads = if nk >= 1024 { 256 } else { 128 };
        Self { rows, threads, ptrs, ints: [i(nq), i(nk), i(d), i(q_thw[1]), i(q_thw[2]), i(k_thw[0]), i(k_thw[1]), i(k_thw[2])], fixed_smem }
    }
}


/// The checked pointers (x, w, bias or 0, y) of a token pooling: `heads` token sets of `1 + t*h*w` rows
/// read at `hd*head_stride + tok*row_stride`, the depthwise kernel `[d, kv]`, `y [heads, 1 + np, d]`
/// (indexed in 32 bits by the kernels).
#[allow(clippy::too_many_arguments)]
fn pool_ptrs(x: View<f32>, row_stride: usize, head_stride: usize, w: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<f32>, heads: usize, g: ConvGeom) -> [u64; 4] {
    let d = g.c as usize;
    let n_in = 1 + (g.t * g.h * g.w) as usize;
    let out = heads * (1 + g.out_positions()) * d;
    let _ = i(out);
    [x.need((heads - 1) * head_stride + (n_in - 1) * row_stride + d, "pool_tokens x"), w.need(d * g.kernel_volume(), "pool w"), opt_ptr(bias, heads * d, "pool bias"), y.need(out, "pool y")]
}

/// Dynamic shared memory of `attention_flash_h*` (bytes): per warp (4), 16 rows of rel-pos terms (kk dots
/// and two sentinels) and one staged q row.
fn flash_dynamic_smem(d: usize, k_thw: [usize; 3]) -> usize {
    let kk: usize = k_thw.iter().sum();
    4 * (16 * (kk + 2) + d) * 4
}

/// Dynamic shared memory of `pool_tokens4_tiled` (bytes): a ring of 3 frames of 10x10 tokens and the 27
/// taps, each 32 channels (8 float4).
const POOL_TILED_SMEM: u32 = (3 * 100 + 27) * 8 * 16;

fn i(v: usize) -> i32 {
    i32::try_from(v).expect("size exceeds i32")
}

impl Gpu {
    // ---- elementwise.cu -------------------------------------------------------------------------

    /// `x [C, plane] = act(x + bias[c])` on a channel-major volume of `channels` channels.
    pub fn bias_act_channels(&self, x: &mut ViewMut<f32>, bias: Option<View<f32>>, channels: usize, act: Act) -> Result<(), KernelError> {
        let n = x.len();
        assert_eq!(n % channels, 0);
        let (xp, bp, nn, plane, a) = (x.need(n, "bias_act_channels x"), opt_ptr(bias, channels, "bias"), n as i64, (n / channels) as i64, act as i32);
        launch!(self, "bias_act_channels", grid_for(n); xp, bp, nn, plane, a)
    }

    /// `x [rows, C] = act(x + bias[c])`.
    pub fn bias_act_rows(&self, x: &mut ViewMut<f32>, bias: Option<View<f32>>, c: usize, act: Act) -> Result<(), KernelError> {
        let n = x.len();
        assert_eq!(n % c, 0);
        let (xp, bp, nn, cc, a) = (x.need(n, "bias_act_rows x"), opt_ptr(bias, c, "bias"), n as i64, i(c), act as i32);
        launch!(self, "bias_act_rows", grid_for(n); xp, bp, nn, cc, a)
    }

    /// `y16 [rows, C] = f16(act(x + bias[c]))` (a GEMM epilogue whose result feeds an fp16 GEMM).
    pub fn bias_act_rows_f16(&self, x: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<u16>, c: usize, act: Act) -> Result<(), KernelError> {
        let n = y.len();
        assert_eq!(n % c, 0);
        let (xp, bp, yp, nn, cc, a) = (x.need(n, "bias_act_rows x"), opt_ptr(bias, c, "bias"), y.need(n, "bias_act_rows y"), n as i64, i(c), act as i32);
        launch!(self, "bias_act_rows_h", grid_for(n); xp, bp, yp, nn, cc, a)
    }

    /// `a += b` over `a`'s extent.
    pub fn add_inplace(&self, a: &mut ViewMut<f32>, b: View<f32>) -> Result<(), KernelError> {
        let n = a.len();
        let (ap, bp, nn) = (a.need(n, "add a"), b.need(n, "add b"), n as i64);
        launch!(self, "add_inplace", grid_for(n); ap, bp, nn)
    }

    /// `dst [cols, rows] = src [rows, cols]ᵀ`.
    pub fn transpose(&self, src: View<f32>, rows_: usize, cols: usize, dst: &mut ViewMut<f32>) -> Result<(), KernelError> {
        let n = rows_ * cols;
        let (sp, dp, r, c) = (src.need(n, "transpose src"), dst.need(n, "transpose dst"), i(rows_), i(cols));
        let cfg = LaunchConfig { grid_dim: (cols.div_ceil(32) as u32, rows_.div_ceil(32) as u32, 1), block_dim: (32, 8, 1), shared_mem_bytes: 0 };
        launch!(self, "transpose2d", cfg; sp, dp, r, c)
    }

    /// f32 -> f16 bits, `y.len()` elements.
    pub fn to_f16(&self, x: View<f32>, y: &mut ViewMut<u16>) -> Result<(), KernelError> {
        let n = y.len();
        let (xp, yp, nn) = (x.need(n, "to_f16 x"), y.need(n, "to_f16 y"), n as i64);
        launch!(self, "to_f16", grid_for(n); xp, yp, nn)
    }

    /// `x [n, C] += pos[row / per]`.
    pub fn add_row_group_scalar(&self, x: &mut ViewMut<f32>, pos: View<f32>, c: usize, per: usize) -> Result<(), KernelError> {
        let n = x.len();
        let (xp, pp, nn, cc, pr) = (x.need(n, "add_pos x"), pos.need((n / c).div_ceil(per), "add_pos pos"), n as i64, i(c), i(per));
        launch!(self, "add_row_group_scalar", grid_for(n); xp, pp, nn, cc, pr)
    }

    // ---- layernorm.cu / shift.cu ----------------------------------------------------------------

    /// LayerNorm over rows of `x [n, C]` into `y` (`y` may be `x`: see [`Gpu::layernorm_rows_inplace`]).
    pub fn layernorm_rows(&self, x: View<f32>, y: &mut ViewMut<f32>, gamma: View<f32>, beta: View<f32>, c: usize, eps: f32) -> Result<(), KernelError> {
        let n = y.len();
        self.layernorm_f32(x.need(n, "ln x"), y.need(n, "ln y"), n, gamma, beta, c, eps)
    }

    /// The f32 LayerNorm launch on checked addresses (`yp` may be `xp`).
    fn layernorm_f32(&self, xp: u64, yp: u64, n: usize, gamma: View<f32>, beta: View<f32>, c: usize, eps: f32) -> Result<(), KernelError> {
        assert_eq!(n % c, 0);
        let (g, b, rr, cc) = (gamma.need(c, "ln gamma"), beta.need(c, "ln beta"), i(n / c), i(c));
        launch!(self, "layernorm_rows", warp_rows(n / c); xp, yp, g, b, rr, cc, eps)
    }

    /// As [`Gpu::layernorm_rows`], writing f16 (the operand of the fp16 GEMM that follows).
    pub fn layernorm_rows_f16(&self, x: View<f32>, y: &mut ViewMut<u16>, gamma: View<f32>, beta: View<f32>, c: usize, eps: f32) -> Result<(), KernelError> {
        let n = y.len();
        assert_eq!(n % c, 0);
        let (xp, yp, g, b, rr, cc) = (x.need(n, "ln x"), y.need(n, "ln y"), gamma.need(c, "ln gamma"), beta.need(c, "ln beta"), i(n / c), i(c));
        launch!(self, "layernorm_rows_h", warp_rows(n / c); xp, yp, g, b, rr, cc, eps)
    }

    pub fn layernorm_rows_inplace(&self, x: &mut ViewMut<f32>, gamma: View<f32>, beta: View<f32>, c: usize, eps: f32) -> Result<(), KernelError> {
        let n = x.len();
        let xp = x.need(n, "ln x");
        self.layernorm_f32(xp, xp, n, gamma, beta, c, eps)
    }

    /// DLTFB axial shift of `x [C, T, H, W]` along H (`axis_w` false) or W.
    pub fn axial_shift(&self, x: View<f32>, y: &mut ViewMut<f32>, dims: [usize; 4], axis_w: bool) -> Result<(), KernelError> {
        let n: usize = dims.iter().product();
        let (xp, yp, c, t, h, w, ax) = (x.need(n, "shift x"), y.need(n, "shift y"), i(dims[0]), i(dims[1]), i(dims[2]), i(dims[3]), axis_w as i32);
        launch!(self, "axial_shift", grid_for(n); xp, yp, c, t, h, w, ax)
    }

    /// Fused `LayerNorm_channels(shift_H(x))` of `x [C, T, H, W]` into `y` (must not alias `x`).
    pub fn shift_h_layernorm_channels(&self, x: View<f32>, y: &mut ViewMut<f32>, gamma: View<f32>, beta: View<f32>, dims: [usize; 4], eps: f32) -> Result<(), KernelError> {
        let n: usize = dims.iter().product();
        let (xp, yp, g, b) = (x.need(n, "shift_ln x"), y.need(n, "shift_ln y"), gamma.need(dims[0], "gamma"), beta.need(dims[0], "beta"));
        let (c, t, h, w) = (i(dims[0]), i(dims[1]), i(dims[2]), i(dims[3]));
        launch!(self, "shift_h_layernorm_channels", grid_for(n / dims[0]); xp, yp, g, b, c, t, h, w, eps)
    }

    // ---- conv.cu / deform.cu --------------------------------------------------------------------

    /// `col [C*kt*kh*kw, To*Ho*Wo]` of `x [C, T, H, W]`.
    pub fn im2col3d(&self, x: View<f32>, col: &mut ColOut, g: ConvGeom) -> Result<(), KernelError> {
        let n = g.in_len();
        let m = g.c as usize * g.kernel_volume() * g.out_positions();
        let xp = x.need(n, "im2col x");
        let (cp, half) = col.need(m, "im2col col");
        // x: output positions, y: input channels (the kernel loops when there are more than 65,535)
        let np = i(g.out_positions());
        let cfg = LaunchConfig { grid_dim: ((np as u32).div_ceil(256).max(1), (g.c as u32).clamp(1, 65_535), 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        if half { launch!(self, "im2col3d_f16", cfg; xp, cp, g) } else { launch!(self, "im2col3d_f32", cfg; xp, cp, g) }
    }

    /// [`Gpu::im2col3d`] into f16 columns, eight output positions a thread and one 16-byte store a row
    /// (`im2col3d_f16x8`; the same values bit for bit). The output positions must be a multiple of 8.
    pub fn im2col3d_f16x8(&self, x: View<f32>, col: &mut ViewMut<u16>, g: ConvGeom) -> Result<(), KernelError> {
        let np = g.out_positions();
        assert!(np.is_multiple_of(8), "im2col3d_f16x8: {np} output positions are not a multiple of 8");
        let (xp, cp) = (x.need(g.in_len(), "im2col x"), col.need(g.c as usize * g.kernel_volume() * np, "im2col col"));
        assert!(cp.is_multiple_of(16), "im2col3d_f16x8: the columns must be 16-byte aligned");
        let cfg = LaunchConfig { grid_dim: ((np as u32 / 8).div_ceil(128).max(1), (g.c as u32).clamp(1, 65_535), 1), block_dim: (128, 1, 1), shared_mem_bytes: 0 };
        launch!(self, "im2col3d_f16x8", cfg; xp, cp, g)
    }

    /// Depthwise Conv3d: `x [C, T, H, W]`, `w [C, kt, kh, kw]` -> `y [C, To, Ho, Wo]`.
    pub fn dwconv3d(&self, x: View<f32>, w: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<f32>, g: ConvGeom) -> Result<(), KernelError> {
        let c = g.c as usize;
        let (xp, wp, bp, yp) = (x.need(g.in_len(), "dwconv x"), w.need(c * g.kernel_volume(), "dwconv w"), opt_ptr(bias, c, "dwconv bias"), y.need(c * g.out_positions(), "dwconv y"));
        launch!(self, "dwconv3d", grid_for(c * g.out_positions()); xp, wp, bp, yp, g)
    }

    /// MViT pooling of `heads` token sets read at `x + hd*head_stride + tok*row_stride + c` (`g.c` = head
    /// dim, grid `g`), `bias [heads * d]` (when given) added to every input token first ->
    /// `y [heads, 1 + To*Ho*Wo, d]`, class token copied.
    pub fn pool_tokens(&self, x: View<f32>, row_stride: usize, head_stride: usize, w: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<f32>, heads: usize, g: ConvGeom) -> Result<(), KernelError> {
        let d = g.c as usize;
        let out = heads * (1 + g.out_positions()) * d;
        let [xp, wp, bp, yp] = pool_ptrs(x, row_stride, head_stride, w, bias, y, heads, g);
        let (rs, hs, hd) = (row_stride as i64, head_stride as i64, i(heads));
        // four channels a thread with 16-byte loads and stores when everything is 16-byte aligned
        if [d, row_stride, head_stride].iter().all(|v| v.is_multiple_of(4)) && xp.is_multiple_of(16) && yp.is_multiple_of(16) {
            let w_bytes = d * g.kernel_volume() * 4;
            if w_bytes <= 48 * 1024 {
                // the weights staged in shared memory once per block: a bounded grid, each block looping
                let mut cfg = grid_for(out / 4);
                cfg.grid_dim.0 = cfg.grid_dim.0.min(1024);
                cfg.shared_mem_bytes = w_bytes as u32;
                return launch!(self, "pool_tokens4_smem", cfg; xp, rs, hs, wp, bp, yp, hd, g);
            }
            launch!(self, "pool_tokens4", grid_for(out / 4); xp, rs, hs, wp, bp, yp, hd, g)
        } else {
            launch!(self, "pool_tokens", grid_for(out); xp, rs, hs, wp, bp, yp, hd, g)
        }
    }

    /// Whether [`Gpu::pool_tokens_tiled`] takes this pooling: the 3x3x3 kernel with stride 1 and padding 1
    /// (the pools that keep the grid), a head dim that is a multiple of 32, token strides of whole float4s.
    pub fn pool_tokens_tiled_supported(g: ConvGeom, row_stride: usize, head_stride: usize) -> bool {
        let d = g.c as usize;
        [g.kt, g.kh, g.kw] == [3; 3] && [g.st, g.sh, g.sw] == [1; 3] && [g.pt, g.ph, g.pw] == [1; 3] && d.is_multiple_of(32) && row_stride.is_multiple_of(4) && head_stride.is_multiple_of(4)
    }

    /// [`Gpu::pool_tokens`] by `pool_tokens4_tiled`: the input staged in shared memory, 8x8 output tiles
    /// sliding along time (see conv.cu). Only where [`Gpu::pool_tokens_tiled_supported`].
    #[allow(clippy::too_many_arguments)]
    pub fn pool_tokens_tiled(&self, x: View<f32>, row_stride: usize, head_stride: usize, w: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<f32>, heads: usize, g: ConvGeom) -> Result<(), KernelError> {
        assert!(Self::pool_tokens_tiled_supported(g, row_stride, head_stride), "pool_tokens_tiled: unsupported pooling {g:?}");
        let d = g.c as usize;
        let [xp, wp, bp, yp] = pool_ptrs(x, row_stride, head_stride, w, bias, y, heads, g);
        let (rs, hs, hd) = (row_stride as i64, head_stride as i64, i(heads));
        assert!(xp.is_multiple_of(16) && yp.is_multiple_of(16), "pool_tokens_tiled: x and y must be 16-byte aligned");
        let cfg = LaunchConfig {
            grid_dim: ((g.w as u32).div_ceil(8), (g.h as u32).div_ceil(8), (heads * d / 32) as u32),
            block_dim: (128, 1, 1),
            shared_mem_bytes: POOL_TILED_SMEM,
        };
        launch!(self, "pool_tokens4_tiled", cfg; xp, rs, hs, wp, bp, yp, hd, g)
    }

    pub fn maxpool3d(&self, x: View<f32>, y: &mut ViewMut<f32>, g: ConvGeom) -> Result<(), KernelError> {
        let out = g.c as usize * g.out_positions();
        let (xp, yp) = (x.need(g.in_len(), "maxpool x"), y.need(out, "maxpool y"));
        launch!(self, "maxpool3d", grid_for(out); xp, yp, g)
    }

    /// Max pooling of tokens `[1 + THW, C]` (class token copied), `g.c` = C.
    pub fn maxpool_tokens(&self, x: View<f32>, bias: Option<View<f32>>, y: &mut ViewMut<f32>, g: ConvGeom) -> Result<(), KernelError> {
        let c = g.c as usize;
        let out = (1 + g.out_positions()) * c;
        let (xp, bp, yp) = (x.need(c + g.in_len(), "maxpool_tokens x"), opt_ptr(bias, c, "maxpool_tokens bias"), y.need(out, "maxpool_tokens y"));
        launch!(self, "maxpool_tokens", grid_for(out); xp, bp, yp, g)
    }

    /// Deformable im2col: `x [C, T, H, W]`, `offsets [18, T, H, W]` -> `col [C*9, T*H*W]`.
    /// `split_channels`: where the 9 x positions threads are too few to fill the GPU, the grid's y dimension
    /// splits the channels among more threads (each recomputing its position's bilinear corners). The
    /// columns are the same either way.
    pub fn deform_im2col(&self, x: View<f32>, offsets: View<f32>, col: &mut ColOut, dims: [usize; 4], split_channels: bool) -> Result<(), KernelError> {
        let [c, t, h, w] = dims;
        let sp = t * h * w;
        let xp = x.need(c * sp, "deform x");
        let op = offsets.need(18 * sp, "deform offsets");
        let (cp, half) = col.need(c * 9 * sp, "deform col");
        let (cc, tt, hh, ww) = (i(c), i(t), i(h), i(w));
        let mut cfg = grid_for(9 * sp);
        if split_channels {
            // about 2^18 threads in all (an H100 holds 132 x 2048 resident)
            cfg.grid_dim.1 = ((1usize << 18) / (9 * sp).max(1)).clamp(1, c.clamp(1, 65_535)) as u32;
        }
        if half {
            launch!(self, "deform_im2col_f16", cfg; xp, op, cp, cc, tt, hh, ww)
        } else {
            launch!(self, "deform_im2col_f32", cfg; xp, op, cp, cc, tt, hh, ww)
        }
    }

    // ---- attention.cu ---------------------------------------------------------------------------

    /// Row softmax of `s [rows, ld]` (rows = heads * nq; the first `nk` columns of each row are logits),
    /// first adding the decomposed rel-pos terms of `rel` to the spatial queries' rows; the probabilities
    /// go back into `s` (padding columns untouched).
    pub fn softmax_relpos(&self, s: &mut ViewMut<f32>, ld: usize, rel: Option<RelPosBias>, nq: usize, nk: usize) -> Result<(), KernelError> {
        let a = SoftmaxArgs::new(s.len(), ld, rel, nq, nk);
        let sp = s.need(a.rows * ld, "softmax s");
        // the row itself in shared memory too when it fits the default 48 KB (one read of s instead of three)
        let cache = a.fixed_smem + nk * 4 <= 48 * 1024;
        let mut cfg = rows(a.rows, a.threads);
        cfg.shared_mem_bytes = (a.fixed_smem + if cache { nk * 4 } else { 0 }) as u32;
        let (ldi, [qp, tp, hp, wp, kp], [nqi, nki, dd, qh, qw, kt, kh, kw], cr) = (i(ld), a.ptrs, a.ints, cache as i32);
        launch!(self, "softmax_relpos", cfg; sp, ldi, qp, tp, hp, wp, kp, nqi, nki, dd, qh, qw, kt, kh, kw, cr)
    }

    /// As [`Gpu::softmax_relpos`] on f16 logits (fp16 autocast's `q·kᵀ`): the f16 probabilities replace
    /// them in `s`, padding columns zeroed. `ld` must be a multiple of 8 (16-byte rows).
    pub fn softmax_relpos_f16(&self, s: &mut ViewMut<u16>, ld: usize, rel: Option<RelPosBias>, nq: usize, nk: usize) -> Result<(), KernelError> {
        assert!(ld.is_multiple_of(8), "softmax f16: row stride {ld} is not a multiple of 8");
        let a = SoftmaxArgs::new(s.len(), ld, rel, nq, nk);
        let sp = s.need(a.rows * ld, "softmax s");
        // one warp a row, 4 a block; each warp's rel-pos dots and q row in shared memory
        let cfg = LaunchConfig { grid_dim: (a.rows.div_ceil(4) as u32, 1, 1), block_dim: (128, 1, 1), shared_mem_bytes: (4 * a.fixed_smem) as u32 };
        let (ldi, [qp, tp, hp, wp, kp], [nqi, nki, dd, qh, qw, kt, kh, kw], rr) = (i(ld), a.ptrs, a.ints, i(a.rows));
        launch!(self, "softmax_relpos_h", cfg; sp, ldi, qp, tp, hp, wp, kp, rr, nqi, nki, dd, qh, qw, kt, kh, kw)
    }

    /// `merged [nq, heads*d] = o [heads, nq, d] (+ q on spatial tokens when residual)`.
    pub fn attn_merge(&self, o: View<f32>, q: View<f32>, merged: &mut ViewMut<f32>, heads: usize, nq: usize, d: usize, residual: bool) -> Result<(), KernelError> {
        let n = heads * nq * d;
        let (op, qp, mp, hh, nqi, dd, r) = (o.need(n, "merge o"), q.need(if residual { n } else { 0 }, "merge q"), merged.need(n, "merge out"), i(heads), i(nq), i(d), residual as i32);
        launch!(self, "attn_merge", grid_for(n); op, qp, mp, hh, nqi, dd, r)
    }

    /// As [`Gpu::attn_merge`], writing f16 (the operand of the fp16 output projection).
    pub fn attn_merge_f16(&self, o: View<f32>, q: View<f32>, merged: &mut ViewMut<u16>, heads: usize, nq: usize, d: usize, residual: bool) -> Result<(), KernelError> {
        let n = heads * nq * d;
        let (op, qp, mp, hh, nqi, dd, r) = (o.need(n, "merge o"), q.need(if residual { n } else { 0 }, "merge q"), merged.need(n, "merge out"), i(heads), i(nq), i(d), residual as i32);
        launch!(self, "attn_merge_h", grid_for(n); op, qp, mp, hh, nqi, dd, r)
    }

    // ---- flash_attention.cu ---------------------------------------------------------------------

    /// Whether [`Gpu::attention_flash_f16`] has a kernel for head dim `d` with a `k_thw` key grid: head
    /// dims 48, 64 and 96, and shared memory (the K and V tiles, four warps' rel-pos dots) within the
    /// default 48 KB.
    pub fn attention_flash_supported(d: usize, k_thw: [usize; 3]) -> bool {
        // static: the K and V tiles (64 keys, rows of d + 8 halves) and the key positions
        let tiles = 2 * 64 * (d + 8) * 2 + 64 * 4;
        matches!(d, 48 | 64 | 96) && tiles + flash_dynamic_smem(d, k_thw) <= 48 * 1024
    }

    /// Pooling attention in one kernel (fp16 mode): `merged [nq, heads*d]` (f16) =
    /// `softmax(scale q·kᵀ + rel) v`, plus `q` on spatial queries when `residual`. `q [heads, nq, d]` f32
    /// (unscaled; the rel-pos dots use it too), `k` and `v` f16 with head h's `nk` keys at rows `h*nk..`
    /// (spare rows after the last head are allowed). q·kᵀ and P·v run on the tensor cores with f32
    /// accumulation; the logits never leave registers. See [`Gpu::attention_flash_supported`].
    #[allow(clippy::too_many_arguments)]
    pub fn attention_flash_f16(&self, k: View<u16>, v: View<u16>, rel: RelPosBias, merged: &mut ViewMut<u16>, heads: usize, nq: usize, nk: usize, residual: bool) -> Result<(), KernelError> {
        let d = rel.d;
        assert!(Self::attention_flash_supported(d, rel.k_thw), "flash attention: no kernel for head dim {d} with key grid {:?}", rel.k_thw);
        assert_eq!(1 + rel.k_thw.iter().product::<usize>(), nk, "flash attention: key grid");
        assert_eq!(1 + rel.q_thw.iter().product::<usize>(), nq, "flash attention: query grid");
        let t = |a: usize, tab: View<f32>| tab.need(rel.q_thw[a] * rel.k_thw[a] * d, "rel-pos table");
        let (qp, tp, hp, wp, kp) = (rel.q.need(heads * nq * d, "flash q"), t(0, rel.tables[0]), t(1, rel.tables[1]), t(2, rel.tables[2]), rel.keys.need(nk - 1, "flash keys"));
        let (kb, vb, mp) = (k.need(heads * nk * d, "flash k"), v.need(heads * nk * d, "flash v"), merged.need(nq * heads * d, "flash merged"));
        assert!(kb.is_multiple_of(16) && vb.is_multiple_of(16) && mp.is_multiple_of(4), "flash attention: k and v must be 16-byte aligned, merged 4-byte");
        let cfg = LaunchConfig { grid_dim: (nq.div_ceil(64) as u32, heads as u32, 1), block_dim: (128, 1, 1), shared_mem_bytes: flash_dynamic_smem(d, rel.k_thw) as u32 };
        let (hh, nqi, nki, qh, qw, kt, kh, kw) = (i(heads), i(nq), i(nk), i(rel.q_thw[1]), i(rel.q_thw[2]), i(rel.k_thw[0]), i(rel.k_thw[1]), i(rel.k_thw[2]));
        let (scale, res) = (1.0f32 / (d as f32).sqrt(), residual as i32);
        match d {
            48 => launch!(self, "attention_flash_h48", cfg; qp, kb, vb, tp, hp, wp, kp, mp, hh, nqi, nki, qh, qw, kt, kh, kw, scale, res),
            64 => launch!(self, "attention_flash_h64", cfg; qp, kb, vb, tp, hp, wp, kp, mp, hh, nqi, nki, qh, qw, kt, kh, kw, scale, res),
            _ => launch!(self, "attention_flash_h96", cfg; qp, kb, vb, tp, hp, wp, kp, mp, hh, nqi, nki, qh, qw, kt, kh, kw, scale, res),
        }
    }

    // ---- resize.cu ------------------------------------------------------------------------------

    /// Trilinear `x [C, T, H, W] -> y [C, To, Ho, Wo]` (align_corners=False); `accumulate`: `y +=`.
    pub fn trilinear(&self, x: View<f32>, y: &mut ViewMut<f32>, c: usize, thw: [usize; 3], out: [usize; 3], accumulate: bool) -> Result<(), KernelError> {
        let n = c * out.iter().product::<usize>();
        let (xp, yp) = (x.need(c * thw.iter().product::<usize>(), "trilinear x"), y.need(n, "trilinear y"));
        let (cc, t, h, w, to, ho, wo, acc) = (i(c), i(thw[0]), i(thw[1]), i(thw[2]), i(out[0]), i(out[1]), i(out[2]), accumulate as i32);
        // a 3-D grid (no index divisions) where rows and (channel, frame) pairs fit its y and z limits
        if out[1] <= 65_535 && c * out[0] <= 65_535 && n > 0 {
            let tx = out[2].next_power_of_two().clamp(32, 256) as u32;
            let cfg = LaunchConfig { grid_dim: ((out[2] as u32).div_ceil(tx), out[1] as u32, (c * out[0]) as u32), block_dim: (tx, 1, 1), shared_mem_bytes: 0 };
            return launch!(self, "trilinear3d", cfg; xp, yp, cc, t, h, w, to, ho, wo, acc);
        }
        launch!(self, "trilinear", grid_for(n); xp, yp, cc, t, h, w, to, ho, wo, acc)
    }

    // ---- amfb.cu --------------------------------------------------------------------------------

    /// `out [rows] = mean of each row of x [rows, len]`.
    pub fn row_mean(&self, x: View<f32>, out: &mut ViewMut<f32>, rows_: usize, len: usize) -> Result<(), KernelError> {
        let (xp, op, l) = (x.need(rows_ * len, "row_mean x"), out.need(rows_, "row_mean out"), len as i64);
        launch!(self, "row_mean", rows(rows_, 256); xp, op, l)
    }

    /// AMFB fusion: `out [n] = Σ_s sigmoid(score(pooled))_s · streams[s]`, `streams [3, n]`,
    /// `pooled [3D]`, `score_w [3, 3D]`, `score_b [3]`.
    pub fn amfb_fuse(&self, streams: View<f32>, pooled: View<f32>, score_w: View<f32>, score_b: View<f32>, out: &mut ViewMut<f32>) -> Result<(), KernelError> {
        let n = out.len();
        let k3d = pooled.len();
        let (sp, pp, wp, bp, op, nn, k) = (streams.need(3 * n, "amfb streams"), pooled.need(k3d, "pooled"), score_w.need(3 * k3d, "score w"), score_b.need(3, "score b"), out.need(n, "amfb out"), n as i64, i(k3d));
        launch!(self, "amfb_fuse", grid_for(n); sp, pp, wp, bp, op, nn, k)
    }

    // ---- tokens.cu ------------------------------------------------------------------------------

    /// `e [T, D]` = spatial mean of `sigmoid(g [D, T, hw])`.
    pub fn gate_embedding(&self, g: View<f32>, e: &mut ViewMut<f32>, d: usize, t: usize, hw: usize) -> Result<(), KernelError> {
        let (gp, ep, dd, tt, h) = (g.need(d * t * hw, "gate g"), e.need(t * d, "gate e"), i(d), i(t), i(hw));
        launch!(self, "gate_embedding", rows(d * t, 128); gp, ep, dd, tt, h)
    }

    /// `w [T, N] = softmax(Linear(e [T, D]))`, `lw [N, D]`, `lb [N]`, N <= 32.
    pub fn token_weights(&self, e: View<f32>, lw: View<f32>, lb: View<f32>, w: &mut ViewMut<f32>, t: usize, d: usize, n: usize) -> Result<(), KernelError> {
        assert!(n <= 32);
        let (ep, lwp, lbp, wp, dd, nn) = (e.need(t * d, "tw e"), lw.need(n * d, "tw lw"), lb.need(n, "tw lb"), w.need(t * n, "tw w"), i(d), i(n));
        launch!(self, "token_weights", rows(t, 128); ep, lwp, lbp, wp, dd, nn)
    }

    /// `out = f · P'' + f (+ extra)`, `P''[c, t] = Σ_i w[t, i] · q[c, i]`; `f, out [D, T, hw]`, `q [D, N, hw]`.
    pub fn token_apply(&self, f: View<f32>, q: View<f32>, w: View<f32>, extra: Option<View<f32>>, out: &mut ViewMut<f32>, d: usize, t: usize, n: usize, hw: usize) -> Result<(), KernelError> {
        let len = d * t * hw;
        let (fp, qp, wp, xp, op) = (f.need(len, "apply f"), q.need(d * n * hw, "apply q"), w.need(t * n, "apply w"), opt_ptr(extra, len, "apply extra"), out.need(len, "apply out"));
        let (dd, tt, nn, h) = (i(d), i(t), i(n), i(hw));
        launch!(self, "token_apply", grid_for(len); fp, qp, wp, xp, op, dd, tt, nn, h)
    }
}

pub use frame::{FrameDesc, FrameFormat, Normalise, YuvCoeffs};

/// Pre- and post-processing of video frames (preprocess.cu, postprocess.cu).
pub mod frame {
    use super::*;

    /// Pixel layout of an input frame.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FrameFormat {
        /// Packed: bytes per pixel and the byte offsets of R, G, B (RGB, RGBA, BGRx, BGRA).
        Packed { bpp: usize, rgb: [usize; 3] },
        I420,
        Nv12,
    }

    /// `struct FrameDesc` of preprocess.cu.
    #[derive(Clone, Copy, Debug, Default)]
    #[repr(C)]
    pub struct FrameDesc {
        pub format: i32,
        pub bpp: i32,
        pub r: i32,
        pub g: i32,
        pub b: i32,
        pub width: i32,
        pub height: i32,
        pub s0: i32,
        pub s1: i32,
        pub s2: i32,
    }
    // SAFETY: #[repr(C)] plain integers matching the C struct.
    unsafe impl DeviceRepr for FrameDesc {}

    impl FrameDesc {
        /// A frame of `format`, `width x height`, plane strides `strides` (bytes).
        pub fn new(format: FrameFormat, width: usize, height: usize, strides: [usize; 3]) -> Self {
            let (f, bpp, rgb) = match format {
                FrameFormat::Packed { bpp, rgb } => (0, bpp, rgb),
                FrameFormat::I420 => (1, 1, [0; 3]),
                FrameFormat::Nv12 => (2, 1, [0; 3]),
            };
            Self { format: f, bpp: i(bpp), r: i(rgb[0]), g: i(rgb[1]), b: i(rgb[2]), width: i(width), height: i(height), s0: i(strides[0]), s1: i(strides[1]), s2: i(strides[2]) }
        }

        /// Bytes of each plane the kernel may read.
        pub fn plane_bytes(&self) -> [usize; 3] {
            let (w, h) = (self.width as usize, self.height as usize);
            let (s0, s1, s2) = (self.s0 as usize, self.s1 as usize, self.s2 as usize);
            let (ch, cw) = (h.div_ceil(2), w.div_ceil(2));
            match self.format {
                0 => [(h - 1) * s0 + w * self.bpp as usize, 0, 0],
                1 => [(h - 1) * s0 + w, (ch - 1) * s1 + cw, (ch - 1) * s2 + cw],
                _ => [(h - 1) * s0 + w, (ch - 1) * s1 + 2 * cw, 0],
            }
        }
    }

    /// `struct YuvCoeffs` (gst-plugin's `YuvToRgb`): `(y - y_off) * y_scale`, chroma `(c - 128) * c_scale`.
    #[derive(Clone, Copy, Debug, Default)]
    #[repr(C)]
    pub struct YuvCoeffs {
        pub y_off: f32,
        pub y_scale: f32,
        pub c_scale: f32,
        pub rv: f32,
        pub gu: f32,
        pub gv: f32,
        pub bu: f32,
    }
    // SAFETY: #[repr(C)] plain floats matching the C struct.
    unsafe impl DeviceRepr for YuvCoeffs {}

    impl YuvCoeffs {
        /// From the matrix `(Kr, Kb)` and range.
        pub fn new(kr: f32, kb: f32, full_range: bool) -> Self {
            let kg = 1.0 - kr - kb;
            let (y_off, y_scale, c_scale) = if full_range { (0.0, 1.0, 1.0) } else { (16.0, 255.0 / 219.0, 255.0 / 224.0) };
            Self { y_off, y_scale, c_scale, rv: 2.0 * (1.0 - kr), gu: -2.0 * kb * (1.0 - kb) / kg, gv: -2.0 * kr * (1.0 - kr) / kg, bu: 2.0 * (1.0 - kb) }
        }
    }

    /// `struct Normalise`: `(v - mean) * inv_std` on the 0-255 scale.
    #[derive(Clone, Copy, Debug, Default)]
    #[repr(C)]
    pub struct Normalise {
        pub mean: [f32; 3],
        pub inv_std: [f32; 3],
    }
    // SAFETY: #[repr(C)] plain floats matching the C struct.
    unsafe impl DeviceRepr for Normalise {}

    impl Gpu {
        /// Frame planes (device copies of the raw bytes) -> normalised planar `[3, out_h, out_w]`.
        pub fn preprocess(&self, planes: [View<u8>; 3], desc: FrameDesc, yuv: YuvCoeffs, norm: Normalise, out: &mut ColOut, out_w: usize, out_h: usize) -> Result<(), KernelError> {
            let bytes = desc.plane_bytes();
            let (p0, p1, p2) = (planes[0].need(bytes[0], "frame plane 0"), planes[1].need(bytes[1], "frame plane 1"), planes[2].need(bytes[2], "frame plane 2"));
            let n = out_w * out_h;
            let (op, half) = out.need(3 * n, "preprocess out");
            let (w, h) = (i(out_w), i(out_h));
            if half {
                launch!(self, "preprocess_f16", grid_for(n); p0, p1, p2, desc, yuv, norm, op, w, h)
            } else {
                launch!(self, "preprocess_f32", grid_for(n); p0, p1, p2, desc, yuv, norm, op, w, h)
            }
        }

        /// `max_out[0] = max(0, max(map))`.
        pub fn map_max(&self, map: View<f32>, max_out: &mut ViewMut<f32>) -> Result<(), KernelError> {
            let n = map.len();
            let (mp, op, nn) = (map.need(n, "map"), max_out.need(1, "max"), i(n));
            launch!(self, "map_max", rows(1, 1024); mp, op, nn)
        }

        /// `values [height, width]` u8: `map [map_h, map_w]` upsampled, divided by `max`, quantised.
            pub fn map_to_u8(&self, map: View<f32>, max: View<f32>, values: &mut ViewMut<u8>, map_w: usize, map_h: usize, width: usize, height: usize) -> Result<(), KernelError> {
            let (mp, xp, vp) = (map.need(map_w * map_h, "map"), max.need(1, "max"), values.need(width * height, "values"));
            let (mw, mh, w, h) = (i(map_w), i(map_h), i(width), i(height));
            launch!(self, "map_to_u8", grid_for(width * height); mp, xp, vp, mw, mh, w, h)
        }

        /// Blends `lut [256, 3][k]` of `values` into one frame plane (see postprocess.cu `overlay_plane`).
            pub fn overlay_plane(&self, data: &mut ViewMut<u8>, stride: usize, step: usize, offset: usize, sub: usize, plane_wh: [usize; 2], values: View<u8>, wh: [usize; 2], lut: View<u8>, k: usize, alpha: u32) -> Result<(), KernelError> {
            let [pw, ph] = plane_wh;
            let dp = data.need((ph - 1) * stride + (pw - 1) * step + offset + 1, "overlay plane");
            let (vp, lp) = (values.need(wh[0] * wh[1], "values"), lut.need(768, "lut"));
            let (s, st, off, sb, pwi, phi, w, h, kk) = (i(stride), i(step), i(offset), i(sub), i(pw), i(ph), i(wh[0]), i(wh[1]), i(k));
            launch!(self, "overlay_plane", grid_for(pw * ph); dp, s, st, off, sb, pwi, phi, vp, w, h, lp, kk, alpha)
        }
    }
}
