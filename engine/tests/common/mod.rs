//! Parity comparison shared by the tiny (committed) and full (generated) cases.

use std::path::Path;

use dtfsal_engine::model::{Backend, Clip, Model, Trace};
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::read_tensors;

fn squeeze_batch(t: &Tensor) -> Tensor {
    t.clone().reshape(&t.shape()[1..])
}

/// Worst violation of `|a - b| <= atol + rtol * |b|`: (excess, index, |a - b|).
fn worst(a: &Tensor, b: &Tensor, rtol: f32, atol: f32) -> (f32, usize, f32) {
    let mut w = (0.0f32, 0usize, 0.0f32);
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        let err = (x - y).abs();
        let excess = if x.is_finite() { err - (atol + rtol * y.abs()) } else { f32::INFINITY };
        if excess > w.0 {
            w = (excess, i, err);
        }
    }
    w
}

/// Runs the engine on a case and checks every intermediate (rtol 1e-4 / atol 1e-5) and the map (atol
/// `map_atol`); returns the number of tensors compared.
pub fn check_case(weights: &Path, case: &Path, map_atol: f32) -> usize {
    let model = Model::load(weights, Backend::Cpu).expect("load model");
    let case = read_tensors(case).expect("read case");
    let audio = case.get("input/audio").map(squeeze_batch);
    let clip = Clip { video: squeeze_batch(&case["input/video"]), audio };
    let mut trace = Trace::new();
    let t0 = std::time::Instant::now();
    let map = model.predict_traced(&clip, &mut trace).expect("predict");
    eprintln!("forward: {:.2} s", t0.elapsed().as_secs_f64());
    let mut failures = vec![];
    let mut checked = 0;
    for (name, want) in case.iter().filter(|(k, _)| !k.starts_with("input/")) {
        let Some(got) = trace.get(name) else {
            failures.push(format!("{name}: not produced by the engine"));
            continue;
        };
        if got.shape() != want.shape() {
            failures.push(format!("{name}: shape {:?} vs reference {:?}", got.shape(), want.shape()));
            continue;
        }
        let (rtol, atol) = if name == "output/sal" { (0.0, map_atol) } else { (1e-4, 1e-5) };
        let (excess, idx, err) = worst(got, want, rtol, atol);
        let max_abs = got.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("{name:<16} {:?} max |diff| {max_abs:.2e}", want.shape());
        if excess > 0.0 {
            failures.push(format!("{name}: |diff| {err:.3e} at {idx} (got {}, want {})", got.data()[idx], want.data()[idx]));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{} of {} tensors differ:\n{}", failures.len(), checked + failures.len(), failures.join("\n"));
    assert_eq!(map.data, trace["output/sal"].data());
    // the untraced pass (audio and video branches concurrently) gives the same map
    let plain = model.predict(&clip).expect("predict");
    let want = &case["output/sal"];
    let (excess, idx, err) = worst(&Tensor::from_vec(want.shape(), plain.data.clone()), want, 0.0, map_atol);
    assert!(excess <= 0.0, "untraced map: |diff| {err:.3e} at {idx}");
    checked
}
