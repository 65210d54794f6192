//! One module per subcommand.
pub mod bench;
pub mod eval;
pub mod forward;
pub mod info;
pub mod mel;
pub mod predict;
