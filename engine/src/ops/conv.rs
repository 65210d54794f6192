//! 3-d convolution (2-d convs run as `(1, k, k)` kernels over stacked slices): im2col + GEMM in column
//! blocks that bound memory, a direct path for 1x1x1 and for depthwise kernels.

use rayon::prelude::*;

use super::gemm::{MatRef, matmul, matmul_serial};
use super::simd::dispatch;
use crate::tensor::Tensor;

/// Column-buffer budget for one im2col block (floats): 512 KiB, half of a core's L2.
const COL_BUDGET: usize = 1 << 17;
/// Fewest output positions per im2col block (when there are enough positions).
const MIN_BLOCK: usize = 256;
/// The range of `kw * C_in` (the K of each shifted-window GEMM) and the fewest `C_out` where the
/// shifted-window path beats im2col + GEMM (`examples/conv_shapes`): below, the GEMMs are too thin; above,
/// im2col's one deep GEMM amortises its copy.
const SHIFTED_MIN_K: usize = 64;
const SHIFTED_MAX_K: usize = 256;
const SHIFTED_MIN_COUT: usize = 24;
/// Most output channels for the direct path (stride 1 in H and W): with fewer rows than a GEMM
/// micro-kernel's tile, much of the GEMM's work is padding (`examples/conv_shapes`).
const DIRECT_MAX_COUT: usize = 8;
/// Fewest taps (`C_in * kt * kh * kw`) for the direct path: with fewer, padding the input and
/// gathering the blocks cost more than the GEMM's waste (VGGish's first conv, 9 taps).
const DIRECT_MIN_K: usize = 32;
/// Wide output rows per shifted-window task (its `[rows, C_out]` block stays in L2).
const SHIFTED_ROWS: usize = 512;

#[derive(Clone, Debug)]
pub struct Conv3d {
    /// `[C_out, C_in / groups, kt, kh, kw]`, row-major.
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    cout: usize,
    cin_g: usize,
    k: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    groups: usize,
    /// The weight as `[kt, kh, kw * C_in, C_out]` for the shifted-window path (stride 1 in H and W, dense,
    /// enough channels), rebuilt whenever the weight changes.
    shifted: Option<Vec<f32>>,
    /// The weight as `[group][C_in * kt * kh * kw][cg]` (zero past `C_out`) for the direct path (few output
    /// channels, stride 1 in H and W), rebuilt whenever the weight changes.
    direct: Option<Vec<f32>>,
}

impl Conv3d {
    /// `weight` is `[C_out, C_in/groups, kt, kh, kw]`.
    pub fn new(weight: Tensor, bias: Option<Vec<f32>>, stride: [usize; 3], pad: [usize; 3], groups: usize) -> Self {
        let &[cout, cin_g, kt, kh, kw] = weight.shape() else {
            panic!("conv3d weight must be 5-d, got {:?}", weight.shape());
        };
        if let Some(b) = &bias {
            assert_eq!(b.len(), cout, "conv3d bias length");
        }
        assert_eq!(cout % groups, 0);
        let mut conv = Self { weight: weight.into_vec(), bias, cout, cin_g, k: [kt, kh, kw], stride, pad, groups, shifted: None, direct: None };
        conv.relayout();
        conv
    }

    /// Builds [`Self::shifted`] when the shifted-window path applies (`[C_out, C_in, kt, kh, kw]` ->
    /// `[kt, kh, kw, C_in, C_out]`), else [`Self::direct`] when the direct path does.
    fn relayout(&mut self) {
        let [kt, kh, kw] = self.k;
        let (cin, cout) = (self.cin_g, self.cout);
        let applies = self.groups == 1 && self.stride[1] == 1 && self.stride[2] == 1 && kh * kw > 1 && (SHIFTED_MIN_K..=SHIFTED_MAX_K).contains(&(kw * cin)) && cout >= SHIFTED_MIN_COUT;
        self.shifted = applies.then(|| {
            let mut w = vec![0.0f32; self.weight.len()];
            for co in 0..cout {
                for ci in 0..cin {
                    for dz in 0..kt {
                        for dy in 0..kh {
                            for dx in 0..kw {
                                let src = (((co * cin + ci) * kt + dz) * kh + dy) * kw + dx;
                                w[((((dz * kh + dy) * kw + dx) * cin) + ci) * cout + co] = self.weight[src];
                            }
                        }
                    }
                }
            }
            w
        });
        let taps = cin * kt * kh * kw;
        let direct = self.groups == 1 && self.shifted.is_none() && cout <= DIRECT_MAX_COUT && self.stride[1] == 1 && self.stride[2] == 1 && taps > cin && taps >= DIRECT_MIN_K;
        self.direct = direct.then(|| {
            let cg = direct_group(cout).0;
            let mut wg = vec![0.0f32; cout.div_ceil(cg) * taps * cg];
            for co in 0..cout {
                for tap in 0..taps {
                    wg[((co / cg) * taps + tap) * cg + co % cg] = self.weight[co * taps + tap];
                }
            }
            wg
        });
    }

    /// A 2-d conv `[C_out, C_in/groups, kh, kw]` applied to each slice of `[C, S, H, W]`.
    pub fn new_2d(weight: Tensor, bias: Option<Vec<f32>>, stride: usize, pad: usize) -> Self {
        let s = weight.shape().to_vec();
        assert_eq!(s.len(), 4, "conv2d weight must be 4-d");
        let w = weight.reshape(&[s[0], s[1], 1, s[2], s[3]]);
        Self::new(w, bias, [1, stride, stride], [0, pad, pad], 1)
    }

    pub fn out_channels(&self) -> usize {
        self.cout
    }

    /// Weight `[C_out, C_in/groups, kt, kh, kw]` and bias (BatchNorm folded in), for other backends.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// `(C_in / groups, kernel, stride, padding, groups)`.
    pub fn geometry(&self) -> (usize, [usize; 3], [usize; 3], [usize; 3], usize) {
        (self.cin_g, self.k, self.stride, self.pad, self.groups)
    }

    /// Folds an eval-mode BatchNorm that follows this conv into its weights and bias.
    pub fn fold_batch_norm(&mut self, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32) {
        let per_out = self.weight.len() / self.cout;
        let mut bias = self.bias.take().unwrap_or_else(|| vec![0.0; self.cout]);
        for o in 0..self.cout {
            let s = gamma[o] / (var[o] + eps).sqrt();
            self.weight[o * per_out..(o + 1) * per_out].iter_mut().for_each(|w| *w *= s);
            bias[o] = (bias[o] - mean[o]) * s + beta[o];
        }
        self.bias = Some(bias);
        self.relayout();
    }

    fn out_dims(&self, t: usize, h: usize, w: usize) -> [usize; 3] {
        let o = |i: usize, n: usize| (n + 2 * self.pad[i] - self.k[i]) / self.stride[i] + 1;
        [o(0, t), o(1, h), o(2, w)]
    }

    /// `x [C_in, T, H, W] -> [C_out, T', H', W']`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let [cin, t, h, w] = x.dims4();
        assert_eq!(cin, self.cin_g * self.groups, "conv3d: input has {cin} channels, weight expects {}", self.cin_g * self.groups);
        let [to, ho, wo] = self.out_dims(t, h, w);
        let mut out = Tensor::zeros(&[self.cout, to, ho, wo]);
        if self.groups == 1 {
            // adds the bias itself, in a pass it makes anyway
            self.forward_dense(x.data(), [cin, t, h, w], out.data_mut(), [to, ho, wo]);
            return out;
        }
        if self.cin_g == 1 && self.groups == self.cout {
            self.forward_depthwise(x.data(), [cin, t, h, w], out.data_mut(), [to, ho, wo]);
        } else {
            unimplemented!("grouped conv3d other than depthwise");
        }
        if let Some(b) = &self.bias {
            let n = to * ho * wo;
            out.data_mut().par_chunks_mut(n).zip(b.par_iter()).for_each(|(c, &bv)| c.iter_mut().for_each(|v| *v += bv));
        }
        out
    }

    fn forward_dense(&self, x: &[f32], [cin, t, h, w]: [usize; 4], out: &mut [f32], [to, ho, wo]: [usize; 3]) {
        let n = to * ho * wo;
        let kvol = self.k[0] * self.k[1] * self.k[2];
        let kk = cin * kvol;
        let wmat = MatRef::new(&self.weight, self.cout, kk);
        if let Some(wsh) = &self.shifted {
            self.forward_shifted(wsh, x, [cin, t, h, w], out, [to, ho, wo]);
            return;
        }
        if let Some(wg) = &self.direct {
            self.forward_direct(wg, x, [cin, t, h, w], out, [to, ho, wo]);
            return;
        }
        if kvol == 1 && self.stride == [1, 1, 1] && self.pad == [0, 0, 0] {
            // bias first, then the product accumulated onto it (the GEMM reads C anyway)
            if let Some(b) = &self.bias {
                out.par_chunks_mut(n).zip(b.par_iter()).for_each(|(row, &bv)| row.fill(bv));
            }
            matmul(wmat, MatRef::new(x, cin, n), out, n, self.bias.is_some());
            return;
        }
        // Column blocks small enough to stay in L2 while the GEMM reads them, one per task: each task
        // fills its own im2col buffer and runs a serial GEMM, so the threads never wait on each other.
        let tasks = 4 * rayon::current_num_threads();
        // ... but wide enough that the GEMM amortises packing the weights (big kernels exceed L2 then)
        let block = (COL_BUDGET / kk).max(MIN_BLOCK).min(n.div_ceil(tasks)).max(32).min(n);
        let starts: Vec<usize> = (0..n).step_by(block).collect();
        let cout = self.cout;
        let blocks: Vec<(usize, Vec<f32>)> = starts
            .into_par_iter()
            .map_init(
                || vec![0.0f32; kk * block],
                |col, p0| {
                    let nb = block.min(n - p0);
                    let col = &mut col[..kk * nb];
                    self.im2col(x, [t, h, w], [to, ho, wo], p0, nb, col);
                    let mut y = vec![0.0f32; cout * nb]; // [C_out, nb]
                    matmul_serial(wmat, MatRef::new(col, kk, nb), &mut y, nb, false);
                    (p0, y)
                },
            )
            .collect();
        // [C_out, nb] blocks -> [C_out, n] rows (+ bias), one output channel per task
        out.par_chunks_mut(n).enumerate().for_each(|(co, dst)| {
            let bv = self.bias.as_ref().map_or(0.0, |b| b[co]);
            for (p0, y) in &blocks {
                let nb = y.len() / cout;
                dst[*p0..p0 + nb].iter_mut().zip(&y[co * nb..(co + 1) * nb]).for_each(|(o, &v)| *o = v + bv);
            }
        });
    }

    /// Direct convolution for a few output channels (stride 1 in H and W): blocks of output columns of
    /// a group of output channels are built in registers from every tap's shifted input row, with
    /// 8 independent accumulators (4 for a single channel) so the chain of adds over the taps does not stall. The input is
    /// zero-padded first (`[C_in, T, Hp, Wpp]`, rows long enough for whole column blocks), so the loop has
    /// no edges.
    fn forward_direct(&self, wg: &[f32], x: &[f32], [cin, t, h, w]: [usize; 4], out: &mut [f32], [to, ho, wo]: [usize; 3]) {
        let [kt, kh, kw] = self.k;
        let [_, ph, pw] = self.pad;
        let cout = self.cout;
        let (cg, v) = direct_group(cout);
        let hp = h + 2 * ph;
        let wpp = wo.next_multiple_of(v * DIRECT_LANES) + kw - 1;
        let mut xp = vec![0.0f32; cin * t * hp * wpp];
        xp.par_chunks_mut(hp * wpp).zip(x.par_chunks(h * w)).for_each(|(plane, src)| {
            for (y, row) in src.chunks_exact(w).enumerate() {
                plane[(y + ph) * wpp + pw..][..w].copy_from_slice(row);
            }
        });
        let kvol = kt * kh * kw;
        let groups = cout.div_ceil(cg);
        // tasks: (group, output frame, row chunk), enough of them for every thread
        let chunks = (4 * rayon::current_num_threads()).div_ceil(groups * to).clamp(1, ho);
        let rows = ho.div_ceil(chunks);
        let chunks = ho.div_ceil(rows);
        let blocks: Vec<Vec<f32>> = (0..groups * to * chunks)
            .into_par_iter()
            .map(|task| {
                let (g, oz, oy0) = (task / (to * chunks), (task / chunks) % to, (task % chunks) * rows);
                let n = rows.min(ho - oy0);
                let mut blk = vec![0.0f32; cg * n * wo]; // [cg, n, Wo]
                let geom = DirectGeom { cin, t, hp, wpp, k: self.k, oz, oy0, st: self.stride[0], pt: self.pad[0], wo, cg, v };
                direct_rows(&xp, &wg[g * cin * kvol * cg..(g + 1) * cin * kvol * cg], geom, &mut blk);
                blk
            })
            .collect();
        out.par_chunks_mut(ho * wo).enumerate().for_each(|(plane, dst)| {
            let (co, oz) = (plane / to, plane % to);
            let bv = self.bias.as_ref().map_or(0.0, |b| b[co]);
            for c in 0..chunks {
                let blk = &blocks[((co / cg) * to + oz) * chunks + c];
                let n = blk.len() / (cg * wo);
                let src = &blk[(co % cg) * n * wo..][..n * wo];
                dst[c * rows * wo..][..n * wo].iter_mut().zip(src).for_each(|(o, &s)| *o = s + bv);
            }
        });
    }

    /// The shifted-window conv (stride 1 in H and W): the input goes channels-last and zero-padded in H and
    /// W, `xp [T, Hp, Wp, C_in]`; the output is computed on the "wide" grid `[T', Ho, Wp]` whose row `q`
    /// reads `xp` from `q * C_in`. For a tap row `(dz, dy)` the `kw` taps of all channels are then the
    /// contiguous `kw * C_in` floats starting there, so the conv is `kt * kh` GEMMs over an overlapping
    /// strided view of `xp` (`rows = q`, `rs = C_in`), with no im2col copy. The wide columns `x >= Wo` are
    /// computed and dropped (`Wp / Wo` extra work, small for real frame sizes).
    fn forward_shifted(&self, wsh: &[f32], x: &[f32], [cin, t, h, w]: [usize; 4], out: &mut [f32], [to, ho, wo]: [usize; 3]) {
        let [kt, kh, kw] = self.k;
        let [pt, ph, pw] = self.pad;
        let st = self.stride[0];
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        let cout = self.cout;
        let mut xp = vec![0.0f32; t * hp * wp * cin]; // [T, Hp, Wp, C_in], borders stay zero
        xp.par_chunks_mut(hp * wp * cin).enumerate().for_each(|(z, slab)| {
            for y in 0..h {
                let dst = &mut slab[((y + ph) * wp + pw) * cin..][..w * cin];
                for ci in 0..cin {
                    let src = &x[((ci * t + z) * h + y) * w..][..w];
                    dst.iter_mut().skip(ci).step_by(cin).zip(src).for_each(|(d, &v)| *d = v);
                }
            }
        });
        // wide rows of one output frame: the last row needs only its first `wo` columns
        let m_slice = (ho - 1) * wp + wo;
        let tasks_per_frame = (4 * rayon::current_num_threads()).div_ceil(to).max(m_slice.div_ceil(SHIFTED_ROWS));
        let chunk = m_slice.div_ceil(tasks_per_frame);
        let tasks: Vec<(usize, usize)> = (0..to).flat_map(|oz| (0..m_slice).step_by(chunk).map(move |q0| (oz, q0))).collect();
        let kk = kw * cin;
        let blocks: Vec<(usize, usize, Vec<f32>)> = tasks
            .into_par_iter()
            .map(|(oz, q0)| {
                let rows = chunk.min(m_slice - q0);
                let mut c = vec![0.0f32; rows * cout]; // [rows, C_out]
                for dz in 0..kt {
                    let iz = (oz * st + dz) as isize - pt as isize;
                    if iz < 0 || iz as usize >= t {
                        continue; // a temporal tap in the padding adds nothing
                    }
                    for dy in 0..kh {
                        let base = (iz as usize * hp * wp + q0 + dy * wp) * cin;
                        let view = MatRef { data: &xp[base..], rows, cols: kk, rs: cin, cs: 1 };
                        let wtap = MatRef::new(&wsh[(dz * kh + dy) * kk * cout..][..kk * cout], kk, cout);
                        matmul_serial(view, wtap, &mut c, cout, true);
                    }
                }
                (oz, q0, c)
            })
            .collect();
        // wide [C_out, rows] blocks -> [C_out, T', Ho, Wo] (+ bias), one output channel per task
        out.par_chunks_mut(to * ho * wo).enumerate().for_each(|(co, dst)| {
            let bv = self.bias.as_ref().map_or(0.0, |b| b[co]);
            for (oz, q0, c) in &blocks {
                let rows = c.len() / cout;
                let src = &c[co..];
                let frame = &mut dst[oz * ho * wo..(oz + 1) * ho * wo];
                // walk the wide rows [q0, q0 + rows) one output row segment at a time
                let (mut y, mut x0) = (q0 / wp, q0 % wp);
                let mut r = 0;
                while r < rows {
                    let seg = (wp - x0).min(rows - r);
                    if x0 < wo {
                        let n = (wo - x0).min(seg);
                        frame[y * wo + x0..][..n].iter_mut().zip(src[r * cout..].iter().step_by(cout)).for_each(|(o, &v)| *o = v + bv);
                    }
                    r += seg;
                    x0 = 0;
                    y += 1;
                }
            }
        });
    }

    /// Fills `col [C_in*kt*kh*kw, nb]` for output positions `p0 .. p0+nb` (zero padding), one output row
    /// segment at a time so the inner loop is a copy.
    fn im2col(&self, x: &[f32], [t, h, w]: [usize; 3], [_to, ho, wo]: [usize; 3], p0: usize, nb: usize, col: &mut [f32]) {
        let [kt, kh, kw] = self.k;
        let [st, sh, sw] = self.stride;
        let [pt, ph, pw] = self.pad;
        col.chunks_mut(nb).enumerate().for_each(|(row, dst)| {
            let dx = row % kw;
            let dy = (row / kw) % kh;
            let dz = (row / (kw * kh)) % kt;
            let ci = row / (kw * kh * kt);
            let src = &x[ci * t * h * w..(ci + 1) * t * h * w];
            let (lo, hi) = valid_range(wo, w, sw, dx, pw);
            // walk the block's output rows with counters (no divisions per segment)
            let (mut oz, mut oy, mut ox0) = (p0 / (wo * ho), (p0 / wo) % ho, p0 % wo);
            let mut p = p0;
            while p < p0 + nb {
                let seg = (wo - ox0).min(p0 + nb - p);
                let out = &mut dst[p - p0..p - p0 + seg];
                let iz = (oz * st + dz) as isize - pt as isize;
                let iy = (oy * sh + dy) as isize - ph as isize;
                if iz < 0 || iy < 0 || iz as usize >= t || iy as usize >= h {
                    out.fill(0.0);
                } else {
                    let in_row = &src[(iz as usize * h + iy as usize) * w..][..w];
                    // columns ox0..ox0+seg: zeros left of `lo`, input in lo..hi, zeros from `hi`
                    let a = lo.clamp(ox0, ox0 + seg);
                    let b = hi.clamp(a, ox0 + seg);
                    out[..a - ox0].fill(0.0);
                    out[b - ox0..].fill(0.0);
                    let mid = &mut out[a - ox0..b - ox0];
                    if b == a {
                        // the whole segment lies in the padding (also when the input is narrower than the padding,
                        // where `a + dx < pw`)
                    } else if sw == 1 {
                        let start = a + dx - pw;
                        mid.copy_from_slice(&in_row[start..start + (b - a)]);
                    } else {
                        let taps = in_row[a * sw + dx - pw..].iter().step_by(sw);
                        mid.iter_mut().zip(taps).for_each(|(o, &v)| *o = v);
                    }
                }
                p += seg;
                ox0 = 0;
                oy += 1;
                if oy == ho {
                    oy = 0;
                    oz += 1;
                }
            }
        });
    }

    fn forward_depthwise(&self, x: &[f32], [_c, t, h, w]: [usize; 4], out: &mut [f32], [to, ho, wo]: [usize; 3]) {
        let [kt, kh, kw] = self.k;
        let [st, sh, sw] = self.stride;
        let [pt, ph, pw] = self.pad;
        let kvol = kt * kh * kw;
        out.par_chunks_mut(to * ho * wo).enumerate().for_each(|(c, dst)| {
            let src = &x[c * t * h * w..(c + 1) * t * h * w];
            let wk = &self.weight[c * kvol..(c + 1) * kvol];
            for oz in 0..to {
                for dz in 0..kt {
                    let iz = (oz * st + dz) as isize - pt as isize;
                    if iz < 0 || iz as usize >= t {
                        continue;
                    }
                    for oy in 0..ho {
                        for dy in 0..kh {
                            let iy = (oy * sh + dy) as isize - ph as isize;
                            if iy < 0 || iy as usize >= h {
                                continue;
                            }
                            let in_row = &src[(iz as usize * h + iy as usize) * w..][..w];
                            let out_row = &mut dst[(oz * ho + oy) * wo..][..wo];
                            for dx in 0..kw {
                                let wv = wk[(dz * kh + dy) * kw + dx];
                                let (lo, hi) = valid_range(wo, w, sw, dx, pw);
                                if lo >= hi {
                                    continue;
                                }
                                if sw == 1 {
                                    let start = lo + dx - pw;
                                    let inp = &in_row[start..start + (hi - lo)];
                                    out_row[lo..hi].iter_mut().zip(inp).for_each(|(o, i)| *o += wv * i);
                                } else {
                                    for ox in lo..hi {
                                        out_row[ox] += wv * in_row[ox * sw + dx - pw];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The direct path's register blocking for `cout` output channels: (output channels per group, 16-lane
/// registers per channel), at least 4 accumulators. 8 channels x 1 register compiles to much slower code
/// (LLVM does not keep it in registers), so groups stop at 4.
fn direct_group(cout: usize) -> (usize, usize) {
    match cout {
        4.. => (4, 2),
        2.. => (2, 4),
        _ => (1, 4),
    }
}

/// Geometry of one [`direct_rows`] call: padded input `[cin, t, hp, wpp]`, kernel, output frame `oz`
/// from row `oy0`, temporal stride / padding, output width, channels per group and registers per channel.
#[derive(Clone, Copy)]
struct DirectGeom {
    cin: usize,
    t: usize,
    hp: usize,
    wpp: usize,
    k: [usize; 3],
    oz: usize,
    oy0: usize,
    st: usize,
    pt: usize,
    wo: usize,
    cg: usize,
    v: usize,
}

/// Lanes of one register of [`direct_block`]'s accumulators.
const DIRECT_LANES: usize = 16;

dispatch! {
    /// Rows `oy0 ..` of one output frame of [`Conv3d::forward_direct`] for one channel group (weights
    /// `wg [C_in * kvol, cg]`), without bias: `dst [cg, rows, Wo]`.
    fn direct_rows(xp: &[f32], wg: &[f32], g: DirectGeom, dst: &mut [f32]) {
        match (g.cg, g.v) {
            (4, _) => direct_block::<4, 2>(xp, wg, g, dst),
            (2, _) => direct_block::<2, 4>(xp, wg, g, dst),
            _ => direct_block::<1, 4>(xp, wg, g, dst),
        }
    }
}

/// [`direct_rows`] for `CG` output channels and column blocks of `V` registers: `CG * V` accumulators.
#[inline(always)]
fn direct_block<const CG: usize, const V: usize>(xp: &[f32], wg: &[f32], g: DirectGeom, dst: &mut [f32]) {
    const L: usize = DIRECT_LANES;
    let [kt, kh, kw] = g.k;
    let rows = dst.len() / (CG * g.wo);
    for r in 0..rows {
        let oy = g.oy0 + r;
        for x0 in (0..g.wo).step_by(V * L) {
            let mut acc = [[[0.0f32; L]; V]; CG];
            for ci in 0..g.cin {
                for dz in 0..kt {
                    let Some(iz) = (g.oz * g.st + dz).checked_sub(g.pt).filter(|&z| z < g.t) else { continue };
                    for dy in 0..kh {
                        let row = &xp[((ci * g.t + iz) * g.hp + oy + dy) * g.wpp + x0..][..V * L + kw - 1];
                        let taps = &wg[((ci * kt + dz) * kh + dy) * kw * CG..][..kw * CG];
                        for (dx, wv) in taps.chunks_exact(CG).enumerate() {
                            let wv: &[f32; CG] = wv.try_into().unwrap();
                            let src = &row[dx..][..V * L];
                            for (vi, s) in src.chunks_exact(L).enumerate() {
                                let s: &[f32; L] = s.try_into().unwrap();
                                for c in 0..CG {
                                    for l in 0..L {
                                        acc[c][vi][l] += wv[c] * s[l];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let n = (V * L).min(g.wo - x0);
            for (c, a) in acc.iter().enumerate() {
                dst[(c * rows + r) * g.wo + x0..][..n].copy_from_slice(&a.as_flattened()[..n]);
            }
        }
    }
}

/// Output columns `lo..hi` whose input column `ox*stride + tap - pad` lies inside `0..w`.
fn valid_range(wo: usize, w: usize, stride: usize, tap: usize, pad: usize) -> (usize, usize) {
    let lo = if pad > tap { (pad - tap).div_ceil(stride) } else { 0 };
    let hi = if w + pad > tap { ((w + pad - tap - 1) / stride + 1).min(wo) } else { 0 };
    (lo.min(hi), hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (definition) convolution for checking the fast paths.
    fn naive(x: &Tensor, wt: &Tensor, stride: [usize; 3], pad: [usize; 3], groups: usize) -> Tensor {
        let [_cin, t, h, w] = x.dims4();
        let s = wt.shape();
        let (cout, cig, k) = (s[0], s[1], [s[2], s[3], s[4]]);
        let o = |i: usize, n: usize| (n + 2 * pad[i] - k[i]) / stride[i] + 1;
        let (to, ho, wo) = (o(0, t), o(1, h), o(2, w));
        let mut out = Tensor::zeros(&[cout, to, ho, wo]);
        let cog = cout / groups;
        for co in 0..cout {
            let g = co / cog;
            for z in 0..to {
                for y in 0..ho {
                    for xx in 0..wo {
                        let mut acc = 0.0;
                        for ci in 0..cig {
                            for a in 0..k[0] {
                                for b in 0..k[1] {
                                    for c in 0..k[2] {
                                        let iz = (z * stride[0] + a) as isize - pad[0] as isize;
                                        let iy = (y * stride[1] + b) as isize - pad[1] as isize;
                                        let ix = (xx * stride[2] + c) as isize - pad[2] as isize;
                                        if iz < 0 || iy < 0 || ix < 0 || iz as usize >= t || iy as usize >= h || ix as usize >= w {
                                            continue;
                                        }
                                        let xi = (((g * cig + ci) * t + iz as usize) * h + iy as usize) * w + ix as usize;
                                        let wi = (((co * cig + ci) * k[0] + a) * k[1] + b) * k[2] + c;
                                        acc += x.data()[xi] * wt.data()[wi];
                                    }
                                }
                            }
                        }
                        out.data_mut()[((co * to + z) * ho + y) * wo + xx] = acc;
                    }
                }
            }
        }
        out
    }

    fn filled(shape: &[usize], seed: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| ((i as f32 + seed) * 0.7311).sin()).collect())
    }

    #[test]
    fn dense_strided_padded_matches_definition() {
        let x = filled(&[3, 5, 9, 11], 0.0);
        let wt = filled(&[4, 3, 3, 7, 7], 1.0);
        for (stride, pad) in [([2, 4, 4], [1, 3, 3]), ([1, 1, 1], [0, 3, 3]), ([1, 2, 1], [2, 0, 1])] {
            let got = Conv3d::new(wt.clone(), None, stride, pad, 1).forward(&x);
            let want = naive(&x, &wt, stride, pad, 1);
            assert_eq!(got.shape(), want.shape());
            for (a, b) in got.data().iter().zip(want.data()) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn shifted_window_path_matches_definition() {
        // channels enough for the shifted-window path; temporal stride and padding, a map smaller than the
        // padding, a 1-row map, and a (1, 1, 3) kernel
        for (dims, k, stride, pad) in [
            ([32, 5, 9, 11], [1, 3, 3], [1, 1, 1], [0, 1, 1]),
            ([32, 5, 9, 11], [3, 3, 3], [2, 1, 1], [1, 1, 1]),
            ([32, 4, 3, 5], [1, 5, 5], [1, 1, 1], [0, 2, 2]),
            ([24, 6, 1, 7], [2, 3, 3], [2, 1, 1], [0, 1, 1]),
            ([32, 3, 4, 6], [1, 1, 3], [1, 1, 1], [0, 0, 1]),
        ] {
            let x = filled(&dims, 5.0);
            let wt = filled(&[24, dims[0], k[0], k[1], k[2]], 6.0);
            let conv = Conv3d::new(wt.clone(), Some((0..24).map(|i| i as f32 * 0.1).collect()), stride, pad, 1);
            assert!(conv.shifted.is_some(), "{dims:?} {k:?} should take the shifted-window path");
            let got = conv.forward(&x);
            let want = naive(&x, &wt, stride, pad, 1);
            assert_eq!(got.shape(), want.shape());
            let n = want.data().len() / 24;
            for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
                let b = b + (i / n) as f32 * 0.1;
                assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{dims:?} {k:?} at {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn direct_path_matches_definition() {
        // few output channels: widths around the 16/32/64 column blocks, temporal stride and padding,
        // a map smaller than its padding
        for (dims, cout, k, stride, pad) in [
            ([8, 2, 9, 40], 4, [2, 3, 3], [2, 1, 1], [0, 1, 1]),
            ([4, 1, 7, 70], 1, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
            ([4, 3, 5, 17], 8, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
            ([6, 2, 6, 33], 5, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
            ([3, 4, 3, 5], 2, [3, 5, 5], [1, 1, 1], [1, 2, 2]),
        ] {
            let x = filled(&dims, 7.0);
            let wt = filled(&[cout, dims[0], k[0], k[1], k[2]], 8.0);
            let conv = Conv3d::new(wt.clone(), Some(vec![0.5; cout]), stride, pad, 1);
            assert!(conv.direct.is_some(), "{dims:?} -> {cout} {k:?} should take the direct path");
            let got = conv.forward(&x);
            let want = naive(&x, &wt, stride, pad, 1);
            assert_eq!(got.shape(), want.shape());
            for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
                assert!((a - (b + 0.5)).abs() < 1e-4 * (1.0 + b.abs()), "{dims:?} {k:?} at {i}: {a} vs {}", b + 0.5);
            }
        }
    }

    #[test]
    fn depthwise_and_pointwise_match_definition() {
        let x = filled(&[6, 4, 7, 5], 2.0);
        let dw = filled(&[6, 1, 3, 3, 3], 3.0);
        for stride in [[1, 2, 2], [1, 1, 1], [2, 1, 3]] {
            let got = Conv3d::new(dw.clone(), None, stride, [1, 1, 1], 6).forward(&x);
            let want = naive(&x, &dw, stride, [1, 1, 1], 6);
            assert_eq!(got.shape(), want.shape());
            got.data().iter().zip(want.data()).for_each(|(a, b)| assert!((a - b).abs() < 1e-5));
        }
        let pw = filled(&[5, 6, 1, 1, 1], 4.0);
        let got = Conv3d::new(pw.clone(), Some(vec![0.5; 5]), [1, 1, 1], [0, 0, 0], 1).forward(&x);
        let want = naive(&x, &pw, [1, 1, 1], [0, 0, 0], 1);
        got.data().iter().zip(want.data()).for_each(|(a, b)| assert!((a - (b + 0.5)).abs() < 1e-5));
    }
}
