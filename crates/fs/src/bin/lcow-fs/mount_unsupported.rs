//! `lcow-fs mount` where the host has no `/dev/fuse` (Windows): a clear error.

use anyhow::{bail, Result};

use crate::args::MountArgs;

/// Refuses: the FUSE mount is Linux's `/dev/fuse`.
pub fn run(args: &MountArgs) -> Result<()> {
    bail!(
        "lcow-fs mount serves {} through Linux's /dev/fuse, which this host does not have; \
         on Windows the file server runs inside lcow-vmm (docs/windows.md)",
        args.src.display()
    )
}
