//! Conv throughput for the tiny model's costliest conv shapes (min of N runs, GFLOP/s):
//! `cargo run --release --example conv_shapes -- [threads] [runs] [only: index of one shape]`.
use dtfsal_engine::ops::conv::Conv3d;
use dtfsal_engine::tensor::Tensor;

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| ((i as f32) * 0.7311).sin()).collect())
}

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(1, |s| s.parse().unwrap());
    let runs: usize = std::env::args().nth(2).map_or(20, |s| s.parse().unwrap());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // (input [C, T, H, W], C_out, kernel, stride, pad): tiny patch embed, AMFB global / local / offset, VGGish,
    // LTEB-style temporal (2,3,3), decoders
    let shapes: &[([usize; 4], usize, [usize; 3], [usize; 3], [usize; 3])] = &[
        ([3, 32, 96, 160], 24, [3, 7, 7], [2, 4, 4], [1, 3, 3]),
        ([32, 8, 24, 40], 32, [1, 5, 5], [1, 1, 1], [0, 2, 2]),
        ([32, 8, 24, 40], 32, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([32, 8, 24, 40], 18, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([32, 9, 28, 48], 32, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([64, 9, 14, 24], 64, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([8, 9, 56, 96], 16, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([1, 9, 112, 192], 8, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        ([32, 8, 24, 40], 16, [2, 3, 3], [2, 1, 1], [0, 1, 1]),
        ([32, 8, 3, 5], 32, [1, 5, 5], [1, 1, 1], [0, 2, 2]),
        // decoder convs (few output channels)
        ([16, 4, 48, 80], 8, [2, 3, 3], [2, 1, 1], [0, 1, 1]),
        ([8, 2, 96, 160], 4, [2, 3, 3], [2, 1, 1], [0, 1, 1]),
        ([4, 1, 96, 160], 1, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
        // the full model's patch embedding and a neck-width conv
        ([3, 32, 224, 384], 96, [3, 7, 7], [2, 4, 4], [1, 3, 3]),
        ([192, 8, 14, 24], 192, [1, 3, 3], [1, 1, 1], [0, 1, 1]),
    ];
    let only: Option<usize> = std::env::args().nth(3).map(|s| s.parse().unwrap());
    let mut total = 0.0;
    for (i, &(dims, cout, k, stride, pad)) in shapes.iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let x = filled(&dims);
        let conv = Conv3d::new(filled(&[cout, dims[0], k[0], k[1], k[2]]), Some(vec![0.1; cout]), stride, pad, 1);
        let y = pool.install(|| conv.forward(&x));
        let best = (0..runs)
            .map(|_| {
                let t0 = std::time::Instant::now();
                std::hint::black_box(pool.install(|| conv.forward(&x)));
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        let flops = 2.0 * y.data().len() as f64 * (dims[0] * k.iter().product::<usize>()) as f64;
        total += best;
        println!("{dims:?} -> {:?} k{k:?} s{stride:?}: {:7.3} ms {:6.1} GFLOP/s", y.shape(), best * 1e3, flops / best / 1e9);
    }
    println!("sum {:.3} ms ({threads} threads)", total * 1e3);
}
