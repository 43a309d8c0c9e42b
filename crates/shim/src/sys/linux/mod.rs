//! The shim on Linux (see `crate::sys`).

mod listen;
mod mounts;
mod paths;
mod process;
mod remove;

pub use listen::*;
pub use mounts::*;
pub use paths::*;
pub use process::*;
pub use remove::remove_tree;
