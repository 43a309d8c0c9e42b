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

use crate::cleanup::{self, CleanupError};
use crate::mounts::{self, HostMounts};
use crate::process::timestamp;
use crate::record;
use crate::sys;

/// The exit status reported for a container whose shim died (as SIGKILL).
const DEAD_STATUS: u32 = 128 + 9;

/// Cleans up what the record in `bundle` names for container `id`: its directory beneath the
/// share and, when it owned the VM, the VMM and the VM's state directory. Fails closed (see
/// [`cleanup`]); the record stays until everything is gone, so a later `delete` tries again.
pub fn cleanup(bundle: &Path, id: &str, host: &dyn HostMounts) -> Result<(), CleanupError> {
    let Some(r) = record::read(bundle) else {
        tracing::info!(
            container_id = id,
            "no shim record: nothing of ours to clean up"
        );
        return Ok(());
    };
    let shared = r.state.join("shared");
    cleanup::remove_unmounted(&mounts::container_dir(&shared, id), host)?;
    if r.owner {
        if sys::is_vmm(r.vmm_pid) {
            sys::kill_pid(r.vmm_pid);
        }
        cleanup::remove_state_dir(&r.state, host)?;
    }
    record::remove(bundle);
    Ok(())
}

/// The `delete` action.
pub fn run(flags: &Flags) -> anyhow::Result<()> {
    let bundle = std::env::current_dir().context("cannot read the working directory")?;
    cleanup(&bundle, &flags.id, &sys::Mounts::default())
        .with_context(|| format!("cannot clean up after container {}", flags.id))?;
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
    use crate::mounts::fake::FakeMounts;

    fn state_with_marker(dir: &Path) -> std::path::PathBuf {
        let state = dir.join("s");
        std::fs::create_dir_all(state.join("shared/c1/rootfs")).unwrap();
        std::fs::write(state.join(cleanup::STATE_MARKER), "c1\n").unwrap();
        std::fs::write(state.join("v.sock"), "").unwrap();
        state
    }

    #[test]
    fn test_cleanup_removes_owned_state_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b");
        std::fs::create_dir_all(&bundle).unwrap();
        let state = state_with_marker(dir.path());
        // pid 1 is never lcow-vmm here: it must not be killed.
        record::write(&bundle, &state, true, 1);
        cleanup(&bundle, "c1", &FakeMounts::default()).unwrap();
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
        cleanup(dir.path(), "c2", &FakeMounts::default()).unwrap();
        assert!(!state.join("shared/c2").exists());
        assert!(state.join("shared/c3").exists());
    }

    #[test]
    fn test_cleanup_failed_unmount_keeps_state_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b");
        std::fs::create_dir_all(&bundle).unwrap();
        let state = state_with_marker(dir.path());
        let rootfs = state.join("shared/c1/rootfs");
        std::fs::write(rootfs.join("sentinel"), "user data").unwrap();
        record::write(&bundle, &state, true, 1);
        let host = FakeMounts::default();
        host.add_mount_point(&rootfs);
        host.fail_unmount(&rootfs);

        let e = cleanup(&bundle, "c1", &host).unwrap_err();

        assert!(matches!(e, CleanupError::Unmount { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("sentinel")).unwrap(),
            "user data"
        );
        assert!(
            record::read(&bundle).is_some(),
            "a later delete can try again"
        );
    }

    #[test]
    fn test_cleanup_state_dir_without_marker_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        std::fs::create_dir_all(state.join("shared")).unwrap();
        std::fs::write(state.join("precious"), "").unwrap();
        record::write(dir.path(), &state, true, 1);
        let e = cleanup(dir.path(), "c1", &FakeMounts::default()).unwrap_err();
        assert!(matches!(e, CleanupError::NotOurs { .. }), "{e}");
        assert!(state.join("precious").exists());
    }
}
