//! The kernel code: the fatbin nvcc built at compile time (empty without nvcc) and the CUDA C sources,
//! concatenated in the build script's order, for NVRTC at run time.

/// nvcc's fatbin (sm_80 + sm_90 SASS, compute_90 PTX); empty when the build had no nvcc 13.0.
pub static FATBIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dtfsal_kernels.fatbin"));

/// The nvcc the fatbin was built with (empty when none).
pub const FATBIN_NVCC: &str = env!("DTFSAL_FATBIN_NVCC");

/// Every source file, helpers first (the build script's `SOURCES` order).
pub const SOURCES: [(&str, &str); 13] = [
    ("common.cuh", include_str!("../cuda/common.cuh")),
    ("elementwise.cu", include_str!("../cuda/elementwise.cu")),
    ("layernorm.cu", include_str!("../cuda/layernorm.cu")),
    ("shift.cu", include_str!("../cuda/shift.cu")),
    ("conv.cu", include_str!("../cuda/conv.cu")),
    ("deform.cu", include_str!("../cuda/deform.cu")),
    ("attention.cu", include_str!("../cuda/attention.cu")),
    ("flash_attention.cu", include_str!("../cuda/flash_attention.cu")),
    ("resize.cu", include_str!("../cuda/resize.cu")),
    ("amfb.cu", include_str!("../cuda/amfb.cu")),
    ("tokens.cu", include_str!("../cuda/tokens.cu")),
    ("preprocess.cu", include_str!("../cuda/preprocess.cu")),
    ("postprocess.cu", include_str!("../cuda/postprocess.cu")),
];

/// One translation unit of all sources (what nvcc compiled, and what NVRTC compiles).
pub fn concatenated() -> String {
    SOURCES.iter().flat_map(|(_, s)| [*s, "\n"]).collect()
}

/// True when the fatbin starts with the CUDA fat binary magic (0xBA55ED50, little-endian).
pub fn fatbin_embedded() -> bool {
    FATBIN.len() > 16 && FATBIN[..4] == [0x50, 0xED, 0x55, 0xBA]
}

/// Every kernel entry point (`extern "C" __global__`) in the sources.
pub fn kernel_names() -> Vec<&'static str> {
    let mut names = vec![];
    for (_, src) in SOURCES {
        for (i, _) in src.match_indices("extern \"C\" __global__ void ") {
            let rest = &src[i + "extern \"C\" __global__ void ".len()..];
            names.push(&rest[..rest.find('(').unwrap_or(0)]);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU-side check of the build: with nvcc the fatbin is embedded and well formed, and the kernel list
    /// the loader resolves is complete.
    #[test]
    fn fatbin_is_embedded_when_nvcc_was_available() {
        if FATBIN_NVCC.is_empty() {
            assert!(FATBIN.is_empty());
            eprintln!("skipped: the build had no nvcc 13.0 (set DTFSAL_NVCC or run scripts/setup.sh); NVRTC path only");
            return;
        }
        assert!(fatbin_embedded(), "built with {FATBIN_NVCC} but the fatbin is missing or malformed");
        let names = kernel_names();
        assert!(names.len() >= 30, "{names:?}");
        assert!(names.contains(&"softmax_relpos") && names.contains(&"amfb_fuse") && names.contains(&"axial_shift"));
    }

    /// The run-time path: NVRTC compiles the same sources (no GPU needed). Runs where libnvrtc loads
    /// (scripts/test.sh puts the venv's CUDA libraries on LD_LIBRARY_PATH), skips elsewhere.
    #[test]
    fn nvrtc_compiles_every_kernel() {
        let opts = cudarc::nvrtc::CompileOptions { arch: Some("compute_80"), options: vec!["-std=c++17".into()], ..Default::default() };
        let compiled = std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(concatenated(), opts));
        let Ok(result) = compiled else {
            eprintln!("skipped: libnvrtc could not be loaded (put the CUDA libraries on LD_LIBRARY_PATH)");
            return;
        };
        let ptx = result.unwrap_or_else(|e| panic!("NVRTC rejected the kernels: {e:?}")).to_src();
        for name in kernel_names() {
            assert!(ptx.contains(&format!(".entry {name}(")), "kernel {name} missing from the NVRTC PTX");
        }
    }

    #[test]
    fn sources_list_matches_the_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cuda");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        on_disk.sort();
        let mut listed: Vec<String> = SOURCES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "kernels/cuda and source::SOURCES (and build.rs SOURCES) must list the same files");
    }
}
