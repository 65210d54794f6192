//! The element's ONNX Runtime settings (`backend=onnx`, `onnx-provider`, `trt-*`); the backend itself
//! is checked against the CPU engine in engine/tests/onnx_backend.rs.
use gst::prelude::*;

mod common;
use common::{init, start_error};

#[test]
fn onnx_properties_round_trip() {
    init();
    let e = gst::ElementFactory::make("dtfsal").build().unwrap();
    e.set_property_from_str("backend", "onnx");
    e.set_property_from_str("onnx-provider", "tensorrt");
    e.set_property("trt-fp16", true);
    e.set_property("trt-cache-dir", "/tmp/trt-cache");
    e.set_property("trt-workspace-mb", 2048u32);
    assert_eq!(e.property_value("backend").serialize().unwrap().as_str(), "onnx");
    assert_eq!(e.property_value("onnx-provider").serialize().unwrap().as_str(), "tensorrt");
    assert!(e.property::<bool>("trt-fp16"));
    assert_eq!(e.property::<String>("trt-cache-dir"), "/tmp/trt-cache");
    assert_eq!(e.property::<u32>("trt-workspace-mb"), 2048);
}

#[test]
fn onnx_backend_errors_name_the_model() {
    init();
    let err = start_error("backend=onnx");
    assert!(err.contains(".onnx"), "{err}");
    let missing = "/nonexistent/dir/model.onnx";
    let err = start_error(&format!("backend=onnx model={missing}"));
    assert!(err.contains(missing), "{err}");
    let weights = format!("{}/../tests/data/tiny-av.weights.safetensors", env!("CARGO_MANIFEST_DIR"));
    let err = start_error(&format!("backend=onnx model={weights}"));
    assert!(err.contains("export_onnx"), "{err}");
}
