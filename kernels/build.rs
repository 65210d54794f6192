//! Compiles `cuda/*.cu` with nvcc 13.0 into one fatbin (sm_80 + sm_90 SASS, compute_90 PTX) that
//! `src/source.rs` embeds with `include_bytes!`. Without a usable nvcc the build still succeeds with an
//! empty fatbin, and the backend compiles the same sources at run time with NVRTC.
//!
//! nvcc is looked up in `$DTFSAL_NVCC`, then in the project venv: `python/.venv/cuda-nvcc-13.0/` (where
//! `scripts/setup.sh` pip-installs it), then `python/.venv/lib/python3*/site-packages/nvidia/{cu13,cuda_nvcc}/bin/nvcc`. It must be release 13.0: newer PTX does not load on the 580 driver.
//! `DTFSAL_REQUIRE_NVCC=1` turns a missing or failing nvcc into a build error (CI).
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel sources in concatenation order (helpers first); `src/source.rs` lists the same files.
const SOURCES: [&str; 13] = [
    "common.cuh",
    "elementwise.cu",
    "layernorm.cu",
    "shift.cu",
    "conv.cu",
    "deform.cu",
    "attention.cu",
    "flash_attention.cu",
    "resize.cu",
    "amfb.cu",
    "tokens.cu",
    "preprocess.cu",
    "postprocess.cu",
];

fn venv_nvcc(manifest: &Path) -> Option<PathBuf> {
    let venv = manifest.parent()?.join("python/.venv");
    // scripts/setup.sh installs the pinned nvcc into its own --target folder of the venv
    for sub in ["cuda-nvcc-13.0/nvidia/cu13/bin/nvcc", "cuda-nvcc-13.0/nvidia/cuda_nvcc/bin/nvcc"] {
        if venv.join(sub).is_file() {
            return Some(venv.join(sub));
        }
    }
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(lib).ok()?.flatten() {
        for sub in ["nvidia/cu13/bin/nvcc", "nvidia/cuda_nvcc/bin/nvcc"] {
            let p = entry.path().join("site-packages").join(sub);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn find_nvcc(manifest: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DTFSAL_NVCC") {
        return Some(PathBuf::from(p));
    }
    venv_nvcc(manifest)
}

fn compile(nvcc: &Path, src: &Path, out: &Path) -> Result<(), String> {
    let version = Command::new(nvcc).arg("--version").output().map_err(|e| format!("{}: {e}", nvcc.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    if !version.contains("release 13.0") {
        return Err(format!("{} is not CUDA 13.0 (pinned: newer PTX does not load on the 580 driver): {}", nvcc.display(), version.trim()));
    }
    let status = Command::new(nvcc)
        .args(["-fatbin", "-O3", "-std=c++17"])
        .args(["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90"])
        .arg("-o")
        .arg(out)
        .arg(src)
        .status()
        .map_err(|e| format!("{}: {e}", nvcc.display()))?;
    if status.success() { Ok(()) } else { Err(format!("nvcc failed ({status})")) }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=cuda");
    println!("cargo:rerun-if-env-changed=DTFSAL_NVCC");
    println!("cargo:rerun-if-env-changed=DTFSAL_REQUIRE_NVCC");
    let mut text = String::new();
    for name in SOURCES {
        let path = manifest.join("cuda").join(name);
        text.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        text.push('\n');
    }
    let src = out_dir.join("dtfsal_kernels.cu");
    std::fs::write(&src, text).expect("write the concatenated kernel source");
    let fatbin = out_dir.join("dtfsal_kernels.fatbin");
    let required = std::env::var_os("DTFSAL_REQUIRE_NVCC").is_some_and(|v| v != "0" && !v.is_empty());
    let result = match find_nvcc(&manifest) {
        Some(nvcc) => {
            println!("cargo:rerun-if-changed={}", nvcc.display());
            compile(&nvcc, &src, &fatbin).map(|()| nvcc)
        }
        None => Err("no nvcc (set DTFSAL_NVCC or run scripts/setup.sh)".into()),
    };
    match result {
        Ok(nvcc) => println!("cargo:rustc-env=DTFSAL_FATBIN_NVCC={}", nvcc.display()),
        Err(why) => {
            if required {
                panic!("DTFSAL_REQUIRE_NVCC is set: {why}");
            }
            println!("cargo:warning=CUDA kernels not precompiled ({why}); the cuda backend will compile them with NVRTC at run time");
            println!("cargo:rustc-env=DTFSAL_FATBIN_NVCC=");
            std::fs::write(&fatbin, []).expect("write the empty fatbin");
        }
    }
}
