//! One module per subcommand.
pub mod forward;
pub mod info;
pub mod mel;
