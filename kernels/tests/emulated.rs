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
        let dir = bin.parent().unwrap();
        let tag = format!("{}-{}-{}", std::process::id(), self.d, residual as u8);
        let (input, output) = (dir.join(format!("in-{tag}")), dir.join(format!("out-{tag}")));
        std::fs::write(&input, bytes).unwrap();
        let run = Command::new(bin).arg(&input).arg(&output).output().unwrap();
        assert!(run.status.success(), "emulated kernel failed: {}", String::from_utf8_lossy(&run.stderr));
        let raw = std::fs::read(&output).unwrap();
        let _ = (std::fs::remove_file(&input), std::fs::remove_file(&output));
        raw.chunks(2).map(|c| f32_of(u16::from_le_bytes([c[0], c[1]]))).collect()
    }
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
