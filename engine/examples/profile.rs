//! Times one forward pass per stage: `DTFSAL_PROFILE=1 cargo run --release --example profile -- W CASE [threads] [runs]`.
use dtfsal_engine::model::{Backend, Clip, Model};
use dtfsal_engine::tensor_file::read_tensors;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.get(3).map_or(2, |s| s.parse().unwrap());
    let runs = args.get(4).map_or(1, |s| s.parse().unwrap());
    let model = Model::load_with_threads(&args[1], Backend::Cpu, threads).expect("load");
    let case = read_tensors(&args[2]).expect("case");
    let sq = |t: &dtfsal_engine::tensor::Tensor| t.clone().reshape(&t.shape()[1..]);
    let clip = Clip { video: sq(&case["input/video"]), audio: case.get("input/audio").map(sq) };
    for _ in 0..runs {
        let t0 = std::time::Instant::now();
        model.predict(&clip).expect("predict");
        println!("forward {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
}
