//! `<bundle>/lcow-shim.json`: what `delete` needs to clean up after a shim that died: the VM's
//! state directory, whether this container owns the VM, and the VMM's pid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The record's file name in the bundle.
pub const RECORD_FILE: &str = "lcow-shim.json";

/// What a container's bundle remembers about its VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The VM's state directory.
    pub state: PathBuf,
    /// Whether the VM was booted for this container (deleting it stops the VM).
    pub owner: bool,
    /// The VMM's pid.
    pub vmm_pid: u32,
}

/// Writes the record; a failure is logged (it only matters if the shim later dies).
pub fn write(bundle: &Path, state: &Path, owner: bool, vmm_pid: u32) {
    let r = Record {
        state: state.to_owned(),
        owner,
        vmm_pid,
    };
    let path = bundle.join(RECORD_FILE);
    let result = serde_json::to_vec(&r)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&path, b));
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the shim record");
    }
}

/// Reads the record, if the bundle has a valid one.
pub fn read(bundle: &Path) -> Option<Record> {
    let bytes = std::fs::read(bundle.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the record.
pub fn remove(bundle: &Path) {
    let _ = std::fs::remove_file(bundle.join(RECORD_FILE));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_record_round_trip_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Path::new("/run/lcow/x"), true, 42);
        let r = read(dir.path()).unwrap();
        assert_eq!(r.state, Path::new("/run/lcow/x"));
        assert!(r.owner);
        assert_eq!(r.vmm_pid, 42);
        remove(dir.path());
        assert!(read(dir.path()).is_none());
    }
}
