//! One module per subcommand.
pub mod bench;
pub mod bench_triton;
pub mod contact_sheet;
pub mod eval;
pub mod eval_figure;
pub mod forward;
pub mod info;
pub mod mel;
pub mod onnx_meta;
pub mod predict;
pub mod triton_repo;
