//! The CUDA backend. Without a GPU (CI, this machine): it must fall back to the CPU engine, never panic;
//! the GPU parity tests skip with a message. With one: every kernel and the whole tiny model must match
//! the CPU engine (fp32 rel err <= 1e-4, fp16 GEMM operands <= 1e-2).
use dtfsal_engine::model::cuda::check::{kernel_parity, random_clip};
use dtfsal_engine::model::{Backend, Model};

fn gpu() -> bool {
    if dtfsal_kernels::cuda_available() {
        return true;
    }
    eprintln!("skipped: no CUDA device ({})", dtfsal_kernels::device_count().err().map(|e| e.to_string()).unwrap_or_default());
    false
}

#[test]
fn without_a_gpu_the_cuda_backend_falls_back_to_the_cpu_engine() {
    if dtfsal_kernels::cuda_available() {
        eprintln!("skipped: a GPU is present (the parity tests cover it)");
        return;
    }
    let cpu = Model::load_default(Backend::Cpu, 2).unwrap();
    let cuda = Model::load_default(Backend::Cuda { device: 0, fp16: true }, 2).unwrap();
    assert_eq!(cuda.backend(), "cpu");
    let clip = random_clip(cpu.config(), 3);
    assert_eq!(cpu.predict(&clip).unwrap(), cuda.predict(&clip).unwrap());
    // asking for CUDA graphs changes nothing there either
    let file = dtfsal_engine::default_model::weight_file().unwrap();
    let graphs = Model::from_weight_file_with_graphs(file, Backend::Cuda { device: 0, fp16: false }, 2, true).unwrap();
    assert_eq!(graphs.backend(), "cpu");
    assert!(graphs.cuda_net().is_none());
    assert_eq!(cpu.predict(&clip).unwrap(), graphs.predict(&clip).unwrap());
    // and a batch is the clips one by one, in order
    let clips = [random_clip(cpu.config(), 4), clip.clone()];
    let one_by_one: Vec<_> = clips.iter().map(|c| cpu.predict(c).unwrap()).collect();
    assert_eq!(graphs.predict_batch(&clips).unwrap(), one_by_one);
    let mut bad = clips[0].clone();
    bad.audio = None;
    assert!(graphs.predict_batch(&[clips[1].clone(), bad]).unwrap_err().to_string().contains("input/audio"));
}

#[test]
fn every_kernel_matches_its_cpu_twin() {
    if !gpu() {
        return;
    }
    for fp16 in [false, true] {
        for p in kernel_parity(0, fp16).unwrap() {
            assert!(p.ok(), "{}: rel err {:.3e} > {:.0e}", p.name, p.rel_err, p.tol);
        }
    }
}

#[test]
fn tiny_model_matches_the_cpu_engine() {
    if !gpu() {
        return;
    }
    let cpu = Model::load_default(Backend::Cpu, 0).unwrap();
    let clip = random_clip(cpu.config(), 5);
    let want = cpu.predict(&clip).unwrap().data;
    for (fp16, tol) in [(false, 1e-4f32), (true, 1e-2)] {
        let gpu = Model::load_default(Backend::Cuda { device: 0, fp16 }, 0).unwrap();
        assert!(gpu.backend().starts_with("cuda"));
        let got = gpu.predict(&clip).unwrap().data;
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err <= tol, "fp16={fp16}: max |diff| {err}");
    }
}

/// With graphs on, the first clip runs eagerly and is captured; later clips are replays, which must give
/// the eager model's maps on their own inputs (a stale input or output buffer would not).
#[test]
fn cuda_graph_replays_match_eager_launches() {
    if !gpu() {
        return;
    }
    for fp16 in [false, true] {
        let backend = Backend::Cuda { device: 0, fp16 };
        let eager = Model::from_weight_file_with_graphs(dtfsal_engine::default_model::weight_file().unwrap(), backend, 0, false).unwrap();
        let graphs = Model::from_weight_file_with_graphs(dtfsal_engine::default_model::weight_file().unwrap(), backend, 0, true).unwrap();
        for seed in [11, 12, 13, 11] {
            let clip = random_clip(eager.config(), seed);
            let (want, got) = (eager.predict(&clip).unwrap().data, graphs.predict(&clip).unwrap().data);
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(err <= 1e-5, "fp16={fp16} seed {seed}: max |diff| {err}");
        }
        assert!(graphs.cuda_net().unwrap().graphs(), "fp16={fp16}: the capture failed");
    }
}

/// A batch runs its clips on several streams at once (each lane with its own graph when graphs are on):
/// its maps must be the clip-by-clip maps, in order, also over more clips than lanes.
#[test]
fn cuda_batches_match_clip_by_clip() {
    if !gpu() {
        return;
    }
    for graphs in [false, true] {
        let m = Model::from_weight_file_with_graphs(dtfsal_engine::default_model::weight_file().unwrap(), Backend::Cuda { device: 0, fp16: true }, 0, graphs).unwrap();
        let clips: Vec<_> = (0..11).map(|i| random_clip(m.config(), 30 + i)).collect();
        let want: Vec<_> = clips.iter().map(|c| m.predict(c).unwrap().data).collect();
        for _ in 0..2 {
            let got = m.predict_batch(&clips).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let err = g.data.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(err <= 1e-5, "graphs={graphs} clip {i}: max |diff| {err}");
            }
        }
    }
}
