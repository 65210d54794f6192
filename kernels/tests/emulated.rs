//! Kernels run on the CPU through `kernels/emu/cuda_emu.hpp` (g++, one OS thread per CUDA thread), against
//! the formulas they implement. This checks what a machine without a GPU can check: indexing, the mma
//! fragment layouts, masking, the online softmax, synchronisation. Speed and the real tensor cores are
//! scripts/gpu-check's job. Skips with a message without g++ (scripts/setup.sh installs it); fails
//! instead when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use dtfsal_kernels::reference;

/// g++ with C++20 (`std::barrier`), or None (skip).
fn compiler() -> Option<String> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let ok = Command::new(&cxx).arg("--version").output().is_ok_and(|o| o.status.success());
    if ok {
        return Some(cxx);
    }
    assert!(std::env::var_os("CI").is_none(), "CI has no {cxx}: scripts/setup.sh installs g++");
    eprintln!("skipped: no {cxx} to build the kernel emulation (scripts/setup.sh installs g++)");
    None
}

/// The emulation source: the shim, the kernel files (dynamic shared memory declarations turned into
/// macros over the emulator's buffer), the driver.
fn emulation_source(kernel_files: &[&str], driver: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut defines = vec![];
    let mut body = String::new();
    for f in kernel_files {
        let text = std::fs::read_to_string(root.join("cuda").join(f)).unwrap();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(decl) = trimmed.strip_prefix("extern __shared__ ") {
                // `T name[];`
                let (ty, name) = decl.trim_end_matches("[];").split_once(' ').expect("extern __shared__ T name[];");
                let def = format!("#define {name} (({ty}*)emu::dynamic_smem.data())");
                if !defines.contains(&def) {
                    defines.push(def);
                }
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
    }
    format!("#include \"cuda_emu.hpp\"\n{}\n{body}\n#include \"{driver}\"\n", defines.join("\n"))
}

/// Builds the driver once per test binary (in the target dir, keyed by the sources' hash).
fn build(kernel_files: &[&str], driver: &str) -> Option<PathBuf> {
    let cxx = compiler()?;
    let src = emulation_source(kernel_files, driver);
    let emu_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("emu");
    let shim = std::fs::read_to_string(emu_dir.join("cuda_emu.hpp")).unwrap() + &std::fs::read_to_string(emu_dir.join(driver)).unwrap();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&src, &shim).hash(&mut h);
        h.finish()
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("emu-{key:016x}"));
    let bin = dir.join("kernel");
    if bin.is_file() {
        return Some(bin);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let cpp = dir.join("kernel.cpp");
    std::fs::write(&cpp, src).unwrap();
    let tmp = dir.join(format!("kernel.{}", std::process::id()));
    let out = Command::new(&cxx)
        .args(["-std=c++20", "-O2", "-pthread", "-Wno-unknown-pragmas", "-I"])
        .arg(&emu_dir)
        .arg(&cpp)
        .arg("-o")
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cxx} failed on the emulated kernels:\n{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &bin).unwrap();
    Some(bin)
}

/// Deterministic values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

fn f32_of(b: u16) -> f32 {
    half::f16::from_bits(b).to_f32()
}

struct Case {
    d: usize,
    heads: usize,
    q_thw: [usize; 3],
    k_thw: [usize; 3],
    with_rel: bool,
}

struct Inputs {
    q: Vec<f32>,
    /// f16 bits, `[heads * nk, d]`
    k: Vec<u16>,
    v: Vec<u16>,
    /// gathered `[q_i, k_i, d]` per axis
    tabs: [Vec<f32>; 3],
}

impl Case {
    fn nq(&self) -> usize {
        1 + self.q_thw.iter().product::<usize>()
    }
    fn nk(&self) -> usize {
        1 + self.k_thw.iter().product::<usize>()
    }

    fn inputs(&self, seed: u64) -> Inputs {
        let mut rng = Rng(seed);
        let (d, heads, nq, nk) = (self.d, self.heads, self.nq(), self.nk());
        // logits of a few units: the softmax is neither flat nor one-hot
        let q = rng.vec(heads * nq * d, 1.0);
        let k: Vec<u16> = rng.vec(heads * nk * d, 0.35).into_iter().map(f16).collect();
        let v: Vec<u16> = rng.vec(heads * nk * d, 1.0).into_iter().map(f16).collect();
        let tabs = std::array::from_fn(|i| rng.vec(self.q_thw[i] * self.k_thw[i] * d, 0.15));
        Inputs { q, k, v, tabs }
    }

    /// [`reference::pooling_attention`] on the f16 k and v.
    fn reference(&self, x: &Inputs, with_rel: bool, residual: bool) -> Vec<f32> {
        let (k, v): (Vec<f32>, Vec<f32>) = (x.k.iter().map(|&b| f32_of(b)).collect(), x.v.iter().map(|&b| f32_of(b)).collect());
        let tables = with_rel.then(|| [x.tabs[0].as_slice(), x.tabs[1].as_slice(), x.tabs[2].as_slice()]);
        reference::pooling_attention(&x.q, &k, &v, tables, self.heads, self.d, self.q_thw, self.k_thw, residual)
    }

    /// The emulated kernel's output.
    fn run(&self, bin: &Path, x: &Inputs, residual: bool) -> Vec<f32> {
        let (q_thw, k_thw) = (self.q_thw, self.k_thw);
        let hdr = [self.d, self.heads, self.nq(), self.nk(), q_thw[0], q_thw[1], q_thw[2], k_thw[0], k_thw[1], k_thw[2], residual as usize, self.with_rel as usize];
        let mut bytes: Vec<u8> = hdr.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect();
        bytes.extend((1.0 / (self.d as f32).sqrt()).to_le_bytes());
        bytes.extend(x.q.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend(x.k.iter().chain(&x.v).flat_map(|v| v.to_le_bytes()));
        for t in &x.tabs {
            bytes.extend(t.iter().flat_map(|v| v.to_le_bytes()));
        }
        // the key table as the engine builds it (RelPosBias::key_table): t | h << 10 | w << 20
        for t in 0..k_thw[0] {
            for h in 0..k_thw[1] {
                for w in 0..k_thw[2] {
                    bytes.extend(((t | h << 10 | w << 20) as u32).to_le_bytes());
                }
            }
        }
        run_driver(bin, &bytes).chunks(2).map(|c| f32_of(u16::from_le_bytes([c[0], c[1]]))).collect()
    }
}

/// Runs an emulation driver on `input` (written to a file next to it), returns its output file's bytes.
fn run_driver(bin: &Path, input: &[u8]) -> Vec<u8> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = bin.parent().unwrap();
    let tag = format!("{}-{}", std::process::id(), RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let (inp, out) = (dir.join(format!("in-{tag}")), dir.join(format!("out-{tag}")));
    std::fs::write(&inp, input).unwrap();
    let run = Command::new(bin).arg(&inp).arg(&out).output().unwrap();
    assert!(run.status.success(), "emulated kernel failed: {}", String::from_utf8_lossy(&run.stderr));
    let raw = std::fs::read(&out).unwrap();
    let _ = (std::fs::remove_file(&inp), std::fs::remove_file(&out));
    raw
}

/// max |got - want| / max |want| (NaN or inf: infinite), as gpu-check's `Parity`.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)).max(1e-6);
    got.iter().zip(want).fold(0.0f64, |m, (a, b)| if a.is_finite() { m.max((a - b).abs() as f64) } else { f64::INFINITY }) / scale
}

const FLASH_FILES: [&str; 3] = ["common.cuh", "attention.cu", "flash_attention.cu"];

/// attention_flash_h* against the formula: head dims 96 (8-lane rel-pos dots) and 48 (one warp per dot),
/// query counts that leave a block partly empty, key counts over several 64-key tiles with a partial last
/// one and under one tile, with and without the residual, and without rel-pos. fp16 tolerance (1e-2: q, k,
/// v and P are f16 on the tensor cores).
#[test]
fn flash_attention_matches_the_formula() {
    let Some(bin) = build(&FLASH_FILES, "attention_flash_main.cpp") else { return };
    let cases = [
        Case { d: 96, heads: 2, q_thw: [2, 5, 7], k_thw: [2, 6, 11], with_rel: true },
        Case { d: 48, heads: 1, q_thw: [1, 3, 4], k_thw: [2, 3, 5], with_rel: true },
        Case { d: 64, heads: 3, q_thw: [1, 4, 4], k_thw: [1, 9, 9], with_rel: false },
    ];
    for (n, case) in cases.iter().enumerate() {
        let x = case.inputs(11 + n as u64);
        for residual in [false, true] {
            let got = case.run(&bin, &x, residual);
            let want = case.reference(&x, case.with_rel, residual);
            let err = rel_err(&got, &want);
            eprintln!("head dim {} heads {} nq {} nk {} rel {} residual {residual}: rel err {err:.2e}", case.d, case.heads, case.nq(), case.nk(), case.with_rel);
            assert!(err <= 1e-2, "head dim {}, residual {residual}: rel err {err:.3e} > 1e-2", case.d);
            if case.with_rel && !residual {
                // the test data makes the rel-pos terms matter: a kernel that dropped them would fail
                let without = case.reference(&x, false, residual);
                assert!(rel_err(&without, &want) > 0.1, "rel-pos terms too small to be tested");
            }
        }
    }
}

/// `col [C*kt*kh*kw, To*Ho*Wo]` of `x [C, T, H, W]`, zero padding, as f16 bits (the formula `GConv` feeds
/// cuBLAS with in fp16 mode).
fn im2col_reference(x: &[f32], [c, t, h, w]: [usize; 4], k: [usize; 3], s: [usize; 3], p: [usize; 3], o: [usize; 3]) -> Vec<u16> {
    let np = o.iter().product::<usize>();
    let mut col = vec![0u16; c * k.iter().product::<usize>() * np];
    let mut row = 0;
    for ci in 0..c {
        for dz in 0..k[0] {
            for dy in 0..k[1] {
                for dx in 0..k[2] {
                    for (pos, out) in col[row * np..(row + 1) * np].iter_mut().enumerate() {
                        let (oz, oy, ox) = (pos / (o[1] * o[2]), (pos / o[2]) % o[1], pos % o[2]);
                        let (iz, iy, ix) = ((oz * s[0] + dz) as isize - p[0] as isize, (oy * s[1] + dy) as isize - p[1] as isize, (ox * s[2] + dx) as isize - p[2] as isize);
                        let inside = (0..t as isize).contains(&iz) && (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                        *out = f16(if inside { x[((ci * t + iz as usize) * h + iy as usize) * w + ix as usize] } else { 0.0 });
                    }
                    row += 1;
                }
            }
        }
    }
    col
}

/// im2col3d_f16 and im2col3d_f16x8 (eight positions a thread, 16-byte stores) against the formula, bit for
/// bit, on the geometries of the model's convolutions: the decoders' temporal convs (k 2x3x3, stride
/// 2x1x1), AMFB's 1x5x5 and 1x3x3, the patch embedding (k 3x7x7, stride 2x4x4) and a 1x1x1; eight-position
/// groups that wrap across rows and frames.
#[test]
fn im2col_kernels_match_the_formula() {
    let Some(bin) = build(&["common.cuh", "conv.cu"], "im2col_main.cpp") else { return };
    let mut rng = Rng(5);
    // (x [c, t, h, w], kernel, stride, pad)
    type Geom = ([usize; 4], [usize; 3], [usize; 3], [usize; 3]);
    let geoms: [Geom; 6] = [
        ([3, 4, 5, 12], [2, 3, 3], [2, 1, 1], [0, 1, 1]),
        ([2, 2, 6, 4], [1, 5, 5], [1, 1, 1], [0, 2, 2]),
        ([4, 1, 3, 8], [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([3, 4, 16, 24], [3, 7, 7], [2, 4, 4], [1, 3, 3]),
        ([5, 2, 4, 6], [1, 1, 1], [1, 1, 1], [0, 0, 0]),
        ([2, 3, 5, 7], [1, 3, 3], [1, 1, 1], [0, 1, 1]),  // 105 positions: the flat kernel only
    ];
    for (x_shape, k, s, p) in geoms {
        let o: [usize; 3] = std::array::from_fn(|i| (x_shape[i + 1] + 2 * p[i] - k[i]) / s[i] + 1);
        let x = rng.vec(x_shape.iter().product(), 3.0);
        let mut input: Vec<u8> = [x_shape[0], x_shape[1], x_shape[2], x_shape[3], k[0], k[1], k[2], s[0], s[1], s[2], p[0], p[1], p[2], o[0], o[1], o[2]]
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect();
        input.extend(x.iter().flat_map(|v| v.to_le_bytes()));
        let out: Vec<u16> = run_driver(&bin, &input).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let want = im2col_reference(&x, x_shape, k, s, p, o);
        let np = o.iter().product::<usize>();
        let kernels = if np.is_multiple_of(8) { 2 } else { 1 };
        assert_eq!(out.len(), kernels * want.len(), "x {x_shape:?} k {k:?}: output size");
        for (name, got) in ["im2col3d_f16", "im2col3d_f16x8"].iter().zip(out.chunks(want.len())) {
            let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "{name}, x {x_shape:?} k {k:?} s {s:?} p {p:?}: {bad} of {} columns' values differ", want.len());
        }
    }
}

/// MViT pooling of `heads` token sets (`x` at `hd * head_stride + tok * row_stride + c`, token 0 the class
/// token) by a 3x3x3 depthwise kernel `w [d, 27]`, stride 1, padding 1, the bias added to every input token
/// first: `[heads, 1 + t*h*w, d]`, the class token copied (+ bias).
#[allow(clippy::too_many_arguments)]
fn pool_reference(x: &[f32], w: &[f32], bias: Option<&[f32]>, heads: usize, d: usize, [t, h, wd]: [usize; 3], rs: usize, hs: usize) -> Vec<f32> {
    let np = t * h * wd;
    let mut y = vec![0.0f32; heads * (np + 1) * d];
    let b = |hd: usize, c: usize| bias.map_or(0.0, |b| b[hd * d + c]);
    for hd in 0..heads {
        for c in 0..d {
            y[hd * (np + 1) * d + c] = x[hd * hs + c] + b(hd, c);
            for p in 0..np {
                let (oz, oy, ox) = ((p / (h * wd)) as isize, ((p / wd) % h) as isize, (p % wd) as isize);
                let mut acc = 0.0f64;
                for tap in 0..27 {
                    let (iz, iy, ix) = (oz + (tap / 9) as isize - 1, oy + ((tap / 3) % 3) as isize - 1, ox + (tap % 3) as isize - 1);
                    if (0..t as isize).contains(&iz) && (0..h as isize).contains(&iy) && (0..wd as isize).contains(&ix) {
                        let j = 1 + ((iz as usize * h + iy as usize) * wd + ix as usize);
                        acc += w[c * 27 + tap] as f64 * (x[hd * hs + j * rs + c] + b(hd, c)) as f64;
                    }
                }
                y[(hd * (np + 1) + 1 + p) * d + c] = acc as f32;
            }
        }
    }
    y
}

/// pool_tokens4_smem (the kernel the GPU runs checked) and the candidate pool_tokens4_tiled against the
/// formula: tokens read from a qkv-like matrix (row stride 3 * heads * d, heads d apart), with and without
/// the bias, grids whose 8x8 tiles are partial in both directions, one and several frames, two 32-channel
/// chunks per head.
#[test]
fn pooling_kernels_match_the_formula() {
    let Some(bin) = build(&["common.cuh", "conv.cu"], "pool_main.cpp") else { return };
    let mut rng = Rng(9);
    for (thw, heads, d, with_bias) in [([3, 10, 13], 2, 64, true), ([1, 5, 9], 1, 32, false), ([4, 8, 8], 1, 96, true)] {
        let (rs, hs) = (3 * heads * d, d);
        let np: usize = thw.iter().product();
        let x = rng.vec((heads - 1) * hs + np * rs + d, 1.0);
        let w = rng.vec(d * 27, 0.3);
        let b = rng.vec(heads * d, 0.5);
        let g = [d, thw[0], thw[1], thw[2], 3, 3, 3, 1, 1, 1, 1, 1, 1, thw[0], thw[1], thw[2]];
        let mut input: Vec<u8> = g.iter().chain(&[heads, rs, hs, with_bias as usize]).flat_map(|&v| (v as i32).to_le_bytes()).collect();
        for v in [&x, &w, &b] {
            input.extend(v.iter().flat_map(|f| f.to_le_bytes()));
        }
        let out: Vec<f32> = run_driver(&bin, &input).chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let want = pool_reference(&x, &w, with_bias.then_some(b.as_slice()), heads, d, thw, rs, hs);
        assert_eq!(out.len(), 2 * want.len());
        for (name, got) in ["pool_tokens4_smem", "pool_tokens4_tiled"].iter().zip(out.chunks(want.len())) {
            let err = rel_err(got, &want);
            eprintln!("{name}, grid {thw:?}, {heads} heads of {d}, bias {with_bias}: rel err {err:.2e}");
            assert!(err <= 1e-5, "{name}, grid {thw:?}: rel err {err:.3e}");
        }
    }
}

/// `x [c, t, h, w]` resampled to `[to, ho, wo]` with PyTorch's `align_corners=False` trilinear
/// (`src = max((dst + 0.5) * in / out - 0.5, 0)`, edge-replicated), in f64.
fn trilinear_reference(x: &[f32], [c, t, h, w]: [usize; 4], [to, ho, wo]: [usize; 3]) -> Vec<f32> {
    let taps = |d: usize, n_in: usize, n_out: usize| -> (usize, usize, f64) {
        let src = ((d as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
        let a = (src as usize).min(n_in - 1);
        (a, (a + 1).min(n_in - 1), src - a as f64)
    };
    let mut y = Vec::with_capacity(c * to * ho * wo);
    for ci in 0..c {
        for oz in 0..to {
            let (z0, z1, lz) = taps(oz, t, to);
            for oy in 0..ho {
                let (y0, y1, ly) = taps(oy, h, ho);
                for ox in 0..wo {
                    let (x0, x1, lx) = taps(ox, w, wo);
                    let v = |z: usize, yy: usize, xx: usize| x[((ci * t + z) * h + yy) * w + xx] as f64;
                    let plane = |z: usize| (1.0 - ly) * ((1.0 - lx) * v(z, y0, x0) + lx * v(z, y0, x1)) + ly * ((1.0 - lx) * v(z, y1, x0) + lx * v(z, y1, x1));
                    y.push(((1.0 - lz) * plane(z0) + lz * plane(z1)) as f32);
                }
            }
        }
    }
    y
}

/// trilinear and trilinear3d (which share `trilinear_at` since 2cb51fb, a change no GPU has run) against the
/// formula: the decoders' x2 spatial upsampling, the neck's temporal and spatial resizes, a downsampling, and
/// rows wider than one block of trilinear3d.
#[test]
fn trilinear_kernels_match_the_formula() {
    let Some(bin) = build(&["common.cuh", "resize.cu"], "resize_main.cpp") else { return };
    let mut rng = Rng(17);
    for (shape, out) in [([3, 2, 5, 7], [2, 10, 14]), ([2, 4, 3, 4], [8, 6, 8]), ([1, 3, 9, 11], [2, 4, 5]), ([1, 1, 2, 150], [1, 3, 300])] {
        let x = rng.vec(shape.iter().product(), 2.0);
        let mut input: Vec<u8> = shape.iter().chain(&out).flat_map(|&v| (v as i32).to_le_bytes()).collect();
        input.extend(x.iter().flat_map(|v| v.to_le_bytes()));
        let got: Vec<f32> = run_driver(&bin, &input).chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let want = trilinear_reference(&x, shape, out);
        assert_eq!(got.len(), 2 * want.len());
        for (name, g) in ["trilinear", "trilinear3d"].iter().zip(got.chunks(want.len())) {
            let err = rel_err(g, &want);
            assert!(err <= 1e-6, "{name} {shape:?} -> {out:?}: rel err {err:.3e}");
        }
    }
}

/// Deformable im2col (3x3, stride 1, pad 1, one offset group), torchvision semantics: tap k of position
/// (y, x) samples `x` bilinearly at (y - 1 + k / 3 + dy, x - 1 + k % 3 + dx), corners outside are 0 and a
/// sample at or beyond -1 / the size is 0; `col [c*9, t*h*w]`, in f64.
fn deform_reference(x: &[f32], off: &[f32], [c, t, h, w]: [usize; 4]) -> Vec<f32> {
    let (hw, n) = (h * w, t * h * w);
    let mut col = vec![0.0f32; c * 9 * n];
    for k in 0..9 {
        for sp in 0..n {
            let (s, p) = (sp / hw, sp % hw);
            let (oy, ox) = (p / w, p % w);
            let y = (oy + k / 3) as f64 - 1.0 + off[((2 * k) * t + s) * hw + p] as f64;
            let xx = (ox + k % 3) as f64 - 1.0 + off[((2 * k + 1) * t + s) * hw + p] as f64;
            if y <= -1.0 || y >= h as f64 || xx <= -1.0 || xx >= w as f64 {
                continue;
            }
            let (y0, x0) = (y.floor(), xx.floor());
            let (ly, lx) = (y - y0, xx - x0);
            for ci in 0..c {
                let img = &x[(ci * t + s) * hw..(ci * t + s + 1) * hw];
                let at = |yy: f64, xc: f64| if yy >= 0.0 && xc >= 0.0 && yy < h as f64 && xc < w as f64 { img[yy as usize * w + xc as usize] as f64 } else { 0.0 };
                let v = (1.0 - ly) * (1.0 - lx) * at(y0, x0) + (1.0 - ly) * lx * at(y0, x0 + 1.0) + ly * (1.0 - lx) * at(y0 + 1.0, x0) + ly * lx * at(y0 + 1.0, x0 + 1.0);
                col[(ci * 9 + k) * n + sp] = v as f32;
            }
        }
    }
    col
}

/// deform_im2col_f32 with its channels split over the grid's y dimension (the candidate
/// `DTFSAL_CUDA_DEFORM_SPLIT`) equals the one-group launch bit for bit, and both match the formula;
/// offsets of a few pixels push samples across and beyond the borders.
#[test]
fn deformable_im2col_split_matches_the_formula() {
    let Some(bin) = build(&["common.cuh", "deform.cu"], "deform_main.cpp") else { return };
    let mut rng = Rng(23);
    for (dims, split) in [([5, 2, 4, 6], 3), ([7, 1, 3, 5], 7), ([2, 3, 5, 4], 4)] {
        let sp = dims[1] * dims[2] * dims[3];
        let (x, off) = (rng.vec(dims[0] * sp, 1.0), rng.vec(18 * sp, 2.5));
        let mut input: Vec<u8> = dims.iter().chain(&[split]).flat_map(|&v| (v as i32).to_le_bytes()).collect();
        input.extend(x.iter().chain(&off).flat_map(|v| v.to_le_bytes()));
        let got: Vec<f32> = run_driver(&bin, &input).chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let (one, many) = got.split_at(got.len() / 2);
        assert!(one.iter().zip(many).all(|(a, b)| a.to_bits() == b.to_bits()), "{dims:?}: split over {split} groups differs from one group");
        let err = rel_err(one, &deform_reference(&x, &off, dims));
        assert!(err <= 1e-5, "{dims:?}: rel err {err:.3e}");
    }
}
