//! GEMM throughput on this machine: `cargo run --release --example gemm_peak -- [threads]`.
use dtfsal_engine::ops::gemm::{MatRef, matmul};

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(2, |s| s.parse().unwrap());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    for &(m, k, n) in &[(1024usize, 1024usize, 1024usize), (192, 4800, 8192), (8192, 96, 1345)] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        pool.install(|| matmul(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, n, false));
        let reps = 5;
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            pool.install(|| matmul(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, n, false));
        }
        let s = t0.elapsed().as_secs_f64() / reps as f64;
        println!("{m}x{k}x{n}: {:.1} GMAC/s ({threads} threads)", (m * k * n) as f64 / s / 1e9);
    }
}
