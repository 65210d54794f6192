//! GEMM throughput for the conv shapes of the tiny model, both output orientations:
//! `cargo run --release --example gemm_shapes -- [threads]`.
use dtfsal_engine::ops::gemm::{MatRef, matmul};

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // (cout, cin*k, positions)
    for &(m, k, n) in &[(32usize, 288usize, 12096usize), (24, 441, 15360), (32, 800, 3840), (64, 576, 3024), (8, 72, 9 * 5376), (18, 288, 3840), (128, 96, 1345), (128, 1345, 96), (256, 96, 1345), (128, 96, 5377), (128, 5377, 96), (86017, 96, 288), (86017, 96, 384), (86017, 384, 96)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
        let bt: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
        let mut c = vec![0.0f32; m * n];
        let time = |f: &mut dyn FnMut()| {
            f();
            let reps = 10;
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                f();
            }
            t0.elapsed().as_secs_f64() / reps as f64
        };
        // c [m, n] = a [m, k] b [k, n]
        let s1 = time(&mut || pool.install(|| matmul(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, n, false)));
        // c^T [n, m] = b^T [n, k] a^T [k, m], with bt laid out [n, k]
        let s2 = time(&mut || pool.install(|| matmul(MatRef::new(&bt, n, k), MatRef::new(&a, m, k).t(), &mut c, m, false)));
        // [m, n] in column blocks of `nb` (B block read from cache): the im2col blocking
        let mut blocked = |nb: usize| {
            time(&mut || {
                pool.install(|| {
                    let mut p0 = 0;
                    while p0 < n {
                        let w = nb.min(n - p0);
                        matmul(MatRef::new(&a, m, k), MatRef { data: &b[p0..], rows: k, cols: w, rs: n, cs: 1 }, &mut c[p0..], n, false);
                        p0 += w;
                    }
                })
            })
        };
        let sb: Vec<(usize, f64)> = [256usize, 512, 1024, 2048].iter().map(|&nb| (nb, blocked(nb))).collect();
        let g = |s: f64| (m * k * n) as f64 / s / 1e9;
        print!("{m}x{k}x{n}: [m,n] {:.1} GMAC/s  [n,m] {:.1} GMAC/s", g(s1), g(s2));
        for (nb, s) in sb {
            print!("  nb={nb} {:.1}", g(s));
        }
        println!(" ({threads} threads)");
    }
}
