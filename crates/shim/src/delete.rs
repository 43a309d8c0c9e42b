//! `containerd-shim-lcow-v1 delete`: containerd's cleanup after a shim that died. Runs in the
//! bundle; unmounts the container's host mounts and, when the container owned the VM, kills
//! the VMM and removes the VM's state directory (mounts, sockets, logs).

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use containerd_shim::api::DeleteResponse;
use containerd_shim::Flags;
use protobuf::Message;

use crate::process::timestamp;
use crate::{mounts, record, vm};

/// The exit status reported for a container whose shim died (as SIGKILL).
const DEAD_STATUS: u32 = 128 + 9;

/// Whether `pid` is an lcow-vmm process (so a recycled pid is never killed).
fn is_vmm(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end().starts_with("lcow-vmm"))
}

/// Cleans up what the record in `bundle` names for container `id`.
pub fn cleanup(bundle: &Path, id: &str) {
    let Some(r) = record::read(bundle) else {
        tracing::info!(
            container_id = id,
            "no shim record: nothing of ours to clean up"
        );
        return;
    };
    let shared = r.state.join("shared");
    mounts::unmount_all(&mounts::container_dir(&shared, id));
    if r.owner {
        if is_vmm(r.vmm_pid) {
            vm::kill_pid(r.vmm_pid);
        }
        mounts::unmount_all(&shared);
        if let Err(e) = std::fs::remove_dir_all(&r.state) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(state = %r.state.display(), error = %e, "cannot remove the vm state");
            }
        }
    }
    record::remove(bundle);
}

/// The `delete` action.
pub fn run(flags: &Flags) -> anyhow::Result<()> {
    let bundle = std::env::current_dir().context("cannot read the working directory")?;
    cleanup(&bundle, &flags.id);
    let resp = DeleteResponse {
        exit_status: DEAD_STATUS,
        exited_at: Some(timestamp(SystemTime::now())).into(),
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_cleanup_removes_owned_state_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b");
        let state = dir.path().join("s");
        std::fs::create_dir_all(bundle.clone()).unwrap();
        std::fs::create_dir_all(state.join("shared/c1/rootfs")).unwrap();
        std::fs::write(state.join("v.sock"), "").unwrap();
        // pid 1 is never lcow-vmm here: it must not be killed.
        record::write(&bundle, &state, true, 1);
        cleanup(&bundle, "c1");
        assert!(!state.exists());
        assert!(record::read(&bundle).is_none());
    }

    #[test]
    fn test_cleanup_keeps_shared_vm_of_non_owner() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        std::fs::create_dir_all(state.join("shared/c2")).unwrap();
        std::fs::create_dir_all(state.join("shared/c3")).unwrap();
        record::write(dir.path(), &state, false, 1);
        cleanup(dir.path(), "c2");
        assert!(!state.join("shared/c2").exists());
        assert!(state.join("shared/c3").exists());
    }
}
